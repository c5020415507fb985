import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import mysql, { type RowDataPacket } from 'mysql2/promise'
import t, { type Test } from 'tap'
import { decodeRefreshToken } from '../src/accounts/refresh-token.js'
import { hashToken } from '../src/accounts/email-tokens.js'
import { build, freshDatabase, onDialects, PASSWORD } from './helper.js'

/**
 * Real faults between the service and MariaDB: a TCP proxy the test controls sits in front of
 * the database, and is cut (every connection destroyed, new ones refused) or turned into a
 * black hole (connections stay open, nothing goes through) in the middle of live traffic.
 */

const REQUEST_BOUND_MS = 10_000
const RECOVERY_BOUND_MS = 20_000

interface Pair { client: Socket, upstream?: Socket, flowing: boolean }

class FaultProxy {
  private mode: 'open' | 'cut' | 'blackhole' = 'open'
  private readonly pairs = new Set<Pair>()
  private readonly server: Server
  port = 0

  constructor (private readonly target: { host: string, port: number }) {
    this.server = createServer(client => this.accept(client))
  }

  async listen () {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject)
      this.server.listen(this.port, '127.0.0.1', () => {
        this.server.off('error', reject)
        resolve()
      })
    })
    this.port = (this.server.address() as AddressInfo).port
  }

  private accept (client: Socket) {
    const pair: Pair = { client, flowing: false }
    this.pairs.add(pair)
    client.on('error', () => {})
    client.on('close', () => this.drop(pair))
    client.pause()
    if (this.mode === 'open') this.flow(pair)
  }

  private flow (pair: Pair) {
    if (pair.upstream === undefined) {
      const upstream = connect(this.target)
      pair.upstream = upstream
      upstream.on('error', () => {})
      upstream.on('close', () => this.drop(pair))
    }
    pair.client.pipe(pair.upstream)
    pair.upstream.pipe(pair.client)
    pair.flowing = true
  }

  /** Stops both directions: bytes wait in the kernel buffers, as on a network that drops packets. */
  private stall (pair: Pair) {
    pair.client.unpipe()
    pair.client.pause()
    pair.upstream?.unpipe()
    pair.upstream?.pause()
    pair.flowing = false
  }

  private drop (pair: Pair) {
    pair.client.destroy()
    pair.upstream?.destroy()
    this.pairs.delete(pair)
  }

  /** Every open connection dies at once, and new ones are refused (the port is closed). */
  async cut () {
    this.mode = 'cut'
    const closed = new Promise(resolve => this.server.close(resolve))
    for (const pair of this.pairs) this.drop(pair)
    await closed
  }

  /** Connections, old and new, stay open and silent: nothing fails, nothing answers. */
  blackhole () {
    this.mode = 'blackhole'
    for (const pair of this.pairs) this.stall(pair)
  }

  async restore () {
    if (this.mode === 'cut') await this.listen()
    this.mode = 'open'
    for (const pair of this.pairs) if (!pair.flowing) this.flow(pair)
  }

  async close () {
    this.mode = 'cut'
    for (const pair of this.pairs) this.drop(pair)
    if (this.server.listening) await new Promise(resolve => this.server.close(resolve))
  }

  get connections () {
    return this.pairs.size
  }
}

type Phase = 'healthy' | 'cut' | 'restored' | 'blackhole' | 'recovered'
type Op = 'signup' | 'login' | 'me' | 'refresh' | 'status' | 'health' | 'ready'

interface Outcome {
  op: Op
  /** The phase when the request started and when its answer arrived. */
  started: Phase
  ended: Phase
  status: number
  ms: number
  contentType: string
  retryAfter: string | null
  body: string
  error?: string
}

interface Account {
  email: string
  id?: number
  accessToken?: string
  refreshToken?: string
  busy: boolean
}

const NEEDS_DATABASE: ReadonlySet<Op> = new Set(['signup', 'login', 'me', 'refresh', 'status', 'ready'])

function until (condition: () => boolean, boundMs: number, what: string) {
  return (async () => {
    const deadline = Date.now() + boundMs
    while (!condition()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
      await sleep(20)
    }
  })()
}

async function faults (t: Test) {
  const directUrl = await freshDatabase(t, 'mysql')
  const direct = new URL(directUrl)
  const proxy = new FaultProxy({ host: direct.hostname, port: Number(direct.port || 3306) })
  await proxy.listen()
  t.teardown(() => proxy.close())
  const proxied = new URL(directUrl)
  proxied.host = `127.0.0.1:${proxy.port}`

  const app = await build(t, 'mysql', { databaseUrl: proxied.toString(), env: { LOGIN_LIMIT_PER_ADDRESS: '1000000' } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const db = await mysql.createConnection({ uri: directUrl })
  t.teardown(() => db.end())

  let phase: Phase = 'healthy'
  const outcomes: Outcome[] = []
  const signups = new Map<string, number>()
  const issuedRefreshTokens: string[] = []
  const accounts: Account[] = []

  async function call (op: Op, path: string, init: RequestInit = {}): Promise<Outcome> {
    const started = phase
    const t0 = performance.now()
    let outcome: Outcome
    try {
      const res = await fetch(base + path, { ...init, signal: AbortSignal.timeout(REQUEST_BOUND_MS) })
      const body = await res.text()
      const contentType = res.headers.get('content-type') ?? ''
      outcome = { op, started, ended: phase, status: res.status, ms: performance.now() - t0, body, contentType, retryAfter: res.headers.get('retry-after') }
    } catch (err) {
      outcome = { op, started, ended: phase, status: 0, ms: performance.now() - t0, body: '', contentType: '', retryAfter: null, error: String(err) }
    }
    outcomes.push(outcome)
    return outcome
  }

  const tokenForm = (params: Record<string, string>) => ({
    method: 'POST', body: new URLSearchParams(params).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' }
  })
  let serial = 0

  async function signup () {
    const email = `user${serial++}@example.com`
    const res = await call('signup', '/users', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD }) })
    signups.set(email, res.status)
    const account: Account = { email, busy: false }
    if (res.status === 201) account.id = (JSON.parse(res.body) as { id: number }).id
    accounts.push(account)
  }

  function takeTokens (account: Account, res: Outcome) {
    if (res.status === 200) {
      const body = JSON.parse(res.body) as { access_token: string, refresh_token: string }
      account.accessToken = body.access_token
      account.refreshToken = body.refresh_token
      issuedRefreshTokens.push(body.refresh_token)
    } else if (res.op === 'refresh') {
      // A refresh that failed may still have rotated (a lost answer): log in again instead.
      account.refreshToken = undefined
    }
  }

  async function step () {
    const pick = Math.random()
    const account = accounts[Math.floor(Math.random() * accounts.length)]
    if (accounts.length < 8 || pick < 0.12 || account === undefined) return signup()
    if (account.busy) return call('health', '/health')
    account.busy = true
    try {
      const auth = { headers: { authorization: `Bearer ${account.accessToken ?? ''}` } }
      if (pick < 0.3 || account.accessToken === undefined) {
        takeTokens(account, await call('login', '/token', tokenForm({ grant_type: 'password', username: account.email, password: PASSWORD })))
      } else if (pick < 0.55) {
        await call('me', '/users/me', auth)
      } else if (pick < 0.7 && account.refreshToken !== undefined) {
        takeTokens(account, await call('refresh', '/token', tokenForm({ grant_type: 'refresh_token', refresh_token: account.refreshToken })))
      } else if (pick < 0.8) {
        await call('status', '/auth/status', auth)
      } else if (pick < 0.9) {
        await call('health', '/health')
      } else {
        await call('ready', '/ready')
      }
    } finally {
      account.busy = false
    }
  }

  // Steady traffic from 8 clients until told to stop, bounded in count whatever happens.
  const traffic = { running: true }
  const workers = Array.from({ length: 8 }, async () => {
    while (traffic.running && outcomes.length < 20_000) await step()
  })
  /** One call of each kind the moment a fault starts, besides the workers' random ones. */
  const probe = () => {
    const account = accounts.find(a => a.accessToken !== undefined)!
    return Promise.all([
      call('ready', '/ready'), call('health', '/health'),
      call('me', '/users/me', { headers: { authorization: `Bearer ${account.accessToken}` } })
    ])
  }
  const inPhase = (p: Phase) => outcomes.filter(o => o.started === p && o.ended === p)
  const databaseCalls = (p: Phase) => inPhase(p).filter(o => NEEDS_DATABASE.has(o.op))

  async function recoveryTime (): Promise<{ me: number, ready: number }> {
    const account = accounts.find(a => a.accessToken !== undefined && a.id !== undefined)!
    const t0 = performance.now()
    const firstOk = async (path: string, headers: Record<string, string> = {}) => {
      for (;;) {
        if (performance.now() - t0 > RECOVERY_BOUND_MS) return Number.POSITIVE_INFINITY
        const res = await fetch(base + path, { headers, signal: AbortSignal.timeout(REQUEST_BOUND_MS) }).catch(() => undefined)
        await res?.arrayBuffer()
        if (res?.status === 200) return performance.now() - t0
        await sleep(10)
      }
    }
    const [me, ready] = await Promise.all([firstOk('/users/me', { authorization: `Bearer ${account.accessToken}` }), firstOk('/ready')])
    return { me, ready }
  }

  try {
    await until(() => databaseCalls('healthy').length >= 150, 30_000, 'healthy traffic')

    await proxy.cut()
    phase = 'cut'
    await probe()
    await until(() => databaseCalls('cut').length >= 150, 20_000, 'traffic during the cut')
    await proxy.restore()
    phase = 'restored'
    const afterCut = await recoveryTime()
    await until(() => databaseCalls('restored').filter(o => o.status === 200 || o.status === 201).length >= 100, 30_000, 'traffic after the cut')

    proxy.blackhole()
    phase = 'blackhole'
    await probe()
    await until(() => databaseCalls('blackhole').length >= 8, 30_000, 'traffic into the black hole')
    const stalled = proxy.connections
    await proxy.restore()
    phase = 'recovered'
    const afterBlackhole = await recoveryTime()
    await until(() => databaseCalls('recovered').filter(o => o.status === 200 || o.status === 201).length >= 100, 30_000, 'traffic after the black hole')

    traffic.running = false
    await Promise.all(workers)

    // -----------------------------------------------------------------------------------------
    const serverErrors = outcomes.filter(o => o.status >= 500 && o.status !== 503)
    const unavailable = outcomes.filter(o => o.status === 503)
    const failed = outcomes.filter(o => o.status === 0)
    const slowest = Math.max(...outcomes.map(o => o.ms))
    const holeLatency = databaseCalls('blackhole').map(o => o.ms)
    t.comment(`${outcomes.length} requests: ${serverErrors.length} 5xx other than 503, ${unavailable.length} 503, ${failed.length} without an answer; slowest ${slowest.toFixed(0)} ms`)
    t.comment(`cut: ${databaseCalls('cut').length} database calls; recovery after restore: /users/me ${afterCut.me.toFixed(0)} ms, /ready ${afterCut.ready.toFixed(0)} ms`)
    t.comment(`black hole: ${stalled} stalled connections, ${databaseCalls('blackhole').length} database calls answered in ${Math.min(...holeLatency).toFixed(0)}–${Math.max(...holeLatency).toFixed(0)} ms; recovery: /users/me ${afterBlackhole.me.toFixed(0)} ms, /ready ${afterBlackhole.ready.toFixed(0)} ms`)

    t.same(serverErrors.map(o => `${o.op} ${o.status} ${o.body}`), [], 'never a 5xx other than 503')
    t.same(failed.map(o => `${o.op} in ${o.started}: ${o.error}`), [], `every request answered within ${REQUEST_BOUND_MS} ms`)

    for (const o of unavailable) {
      if (o.retryAfter === null) t.fail(`${o.op}: 503 without Retry-After`)
      if (o.op === 'login' || o.op === 'refresh') {
        if (!/^application\/json/.test(o.contentType) || (JSON.parse(o.body) as { error?: string }).error !== 'temporarily_unavailable') {
          t.fail(`${o.op}: 503 is not the RFC 6749 temporarily_unavailable body: ${o.contentType} ${o.body}`)
        }
      } else {
        const problem = JSON.parse(o.body) as { status?: number, title?: string }
        if (!/^application\/problem\+json/.test(o.contentType) || problem.status !== 503) t.fail(`${o.op}: 503 is not a problem: ${o.contentType} ${o.body}`)
      }
      if (/\bat |ECONN|PROTOCOL_|SELECT|INSERT|timeout/i.test(o.body)) t.fail(`${o.op}: 503 leaks internals: ${o.body}`)
    }
    t.pass(`${unavailable.length} answers of 503 checked: Retry-After, problem or RFC 6749 body, nothing internal`)

    for (const p of ['cut', 'blackhole'] as const) {
      const calls = databaseCalls(p)
      t.same(calls.filter(o => o.status !== 503).map(o => `${o.op} ${o.status}`), [], `while ${p}: every call needing the database is 503 (${calls.length})`)
      t.ok(inPhase(p).some(o => o.op === 'ready' && o.status === 503), `while ${p}: /ready is 503`)
      t.same(inPhase(p).filter(o => o.op === 'health' && o.status !== 200).map(o => o.status), [], `while ${p}: /health stays 200`)
    }
    t.ok(Math.max(...holeLatency) < REQUEST_BOUND_MS, 'the black hole never makes a request hang')
    t.ok(afterCut.me < RECOVERY_BOUND_MS && afterCut.ready < RECOVERY_BOUND_MS, 'service resumes by itself after the cut')
    t.ok(afterBlackhole.me < RECOVERY_BOUND_MS && afterBlackhole.ready < RECOVERY_BOUND_MS, 'service resumes by itself after the black hole')
    for (const p of ['restored', 'recovered'] as const) {
      t.ok(databaseCalls(p).filter(o => o.status === 200 || o.status === 201).length >= 100, `${p}: the service answers again`)
    }

    // -----------------------------------------------------------------------------------------
    // All or nothing: what the database holds matches the answers, and nothing is half-written.
    const [users] = await db.query<RowDataPacket[]>('SELECT id, email, password_hash FROM users')
    const byEmail = new Map(users.map(u => [u.email as string, u]))
    const created = [...signups].filter(([, status]) => status === 201)
    const refused = [...signups].filter(([, status]) => status === 503)
    t.same(created.filter(([email]) => !byEmail.has(email)).map(([email]) => email), [], `each of the ${created.length} signups answered 201 exists`)
    const createdIds = new Map(accounts.filter(a => a.id !== undefined).map(a => [a.email, a.id]))
    t.same(created.filter(([email]) => Number(byEmail.get(email)?.id) !== createdIds.get(email)).map(([email]) => email), [], 'with the id it was given')
    t.same(users.filter(u => !signups.has(u.email as string)).map(u => u.email), [], 'no account nobody asked for')
    t.same(users.filter(u => !/^\$argon2id\$/.test(u.password_hash as string)).map(u => u.email), [], 'every account has its password hash')
    const maybe = refused.filter(([email]) => byEmail.has(email)).length
    t.equal(users.length, created.length + maybe, `${users.length} accounts: ${created.length} answered 201, ${maybe} of ${refused.length} answered 503 and committed anyway`)

    // A session's chain is one row: each token answered 200 is its session's current one, or an
    // older one of a session that moved on; none is ahead of what the database holds.
    const [chains] = await db.query<RowDataPacket[]>('SELECT id, refresh_generation, refresh_hash FROM sessions')
    const chainOf = new Map(chains.map(r => [(r.id as Buffer).toString('hex'), r]))
    const lost = issuedRefreshTokens.filter(token => {
      const presented = decodeRefreshToken(token)!
      const chain = chainOf.get(presented.sessionId.toString('hex'))
      if (chain === undefined) return true
      const stored = Number(chain.refresh_generation)
      return presented.generation > stored || (presented.generation === stored && !hashToken(presented.secret).equals(chain.refresh_hash as Buffer))
    })
    t.equal(lost.length, 0, `each of the ${issuedRefreshTokens.length} refresh tokens answered 200 is stored`)
  } finally {
    traffic.running = false
    await proxy.restore().catch(() => {})
    await Promise.all(workers)
  }
}

// MySQL only: SQLite is embedded, there is no connection to cut.
onDialects(t, 'database faults through a TCP proxy', ['mysql'], async t => {
  await faults(t)
})

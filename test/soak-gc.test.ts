import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { PASSWORD } from './helper.js'

/**
 * The server on the embedded SQLite, in a child process with the garbage collector under
 * pressure, serving mixed traffic for SOAK_SECONDS (60 by default). better-sqlite3 12 aborted the
 * process on Node 24 when V8 freed a statement; this is the check that nothing in the SQLite
 * path does so on the Node it runs on. The load comes in bursts with quiet gaps between them,
 * because V8 collects on its own when the process goes idle, not only when it is forced to.
 */

const SECONDS = Number(process.env.SOAK_SECONDS ?? 60)
/** Garbage every 20 ms in a 1 MiB young generation: V8 collects several times a second. */
const CHURN_INTERVAL_MS = 20
const CLIENTS = 8
const BURST_MS = 4000
const QUIET_MS = 2000

t.setTimeout((SECONDS + 90) * 1000)

type Kind = 'signup' | 'login' | 'me' | 'status' | 'refresh'

t.test(`the server survives ${SECONDS} s of mixed load and constant garbage collection`, async t => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-soak-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const child = spawn(process.execPath, ['--max-semi-space-size=1', '--import', './test/soak/gc-pressure.mjs', '--import', 'tsx', 'src/server.ts'], {
    env: {
      PATH: process.env.PATH,
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'info',
      DATABASE_URL: `sqlite:${join(dir, 'auth.db')}`,
      ARGON2_MEMORY_KIB: '1024',
      ARGON2_ITERATIONS: '1',
      GC_CHURN_INTERVAL_MS: String(CHURN_INTERVAL_MS)
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  // The request log is long: only its tail is kept, for the failure message and the GC count.
  let output = ''
  const keep = (chunk: Buffer) => { output = (output + chunk).slice(-65_536) }
  child.stderr.on('data', keep)
  child.stdout.on('data', keep)
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => child.on('exit', (code, signal) => resolve({ code, signal })))

  const base = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', () => {
      const match = /"msg":"Server listening at (http:\/\/127\.0\.0\.1:\d+)"/.exec(output)
      if (match) resolve(match[1]!)
    })
    exited.then(({ code, signal }) => reject(new Error(`server exited (${code ?? signal}) before listening: ${output}`)))
  })

  const counts: Record<Kind, number> = { signup: 0, login: 0, me: 0, status: 0, refresh: 0 }
  const unexpected: string[] = []
  const alive = () => child.exitCode === null && child.signalCode === null

  async function call (kind: Kind, path: string, expected: number, init: RequestInit = {}): Promise<any> {
    let res: Response
    try {
      res = await fetch(base + path, { ...init, signal: AbortSignal.timeout(10_000) })
    } catch (err) {
      unexpected.push(`${kind}: ${(err as Error).cause ?? (err as Error).message}`)
      return undefined
    }
    counts[kind]++
    const body = await res.json().catch(() => undefined)
    if (res.status !== expected) unexpected.push(`${kind}: ${res.status} ${JSON.stringify(body)}`)
    return res.status === expected ? body : undefined
  }

  const form = (params: Record<string, string>) => ({ method: 'POST', body: new URLSearchParams(params) })
  const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } })

  async function session (client: number, n: number) {
    const email = `soak-${client}-${n}@example.com`
    if (await call('signup', '/users', 201, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD }) }) === undefined) return
    let tokens = await call('login', '/token', 200, form({ grant_type: 'password', username: email, password: PASSWORD }))
    for (let round = 0; round < 3 && tokens !== undefined; round++) {
      const me = await call('me', '/users/me', 200, bearer(tokens.access_token))
      if (me !== undefined && me.email !== email) unexpected.push(`me: ${me.email} for ${email}`)
      const status = await call('status', '/auth/status', 200, bearer(tokens.access_token))
      if (status !== undefined && status.logged_in !== true) unexpected.push(`status: ${JSON.stringify(status)} with a valid token`)
      const anonymous = await call('status', '/auth/status', 200)
      if (anonymous !== undefined && anonymous.logged_in !== false) unexpected.push(`status: ${JSON.stringify(anonymous)} without a token`)
      tokens = await call('refresh', '/token', 200, form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token }))
    }
  }

  const started = performance.now()
  const deadline = started + SECONDS * 1000
  let bursts = 0
  while (performance.now() < deadline && alive()) {
    const burstEnd = Math.min(deadline, performance.now() + BURST_MS)
    bursts++
    await Promise.all(Array.from({ length: CLIENTS }, async (_, client) => {
      for (let n = 0; performance.now() < burstEnd && alive(); n++) await session(client, bursts * 100_000 + n)
    }))
    if (performance.now() < deadline) await sleep(Math.min(QUIET_MS, deadline - performance.now()))
  }
  const seconds = (performance.now() - started) / 1000

  t.ok(alive(), `the server is still running after ${seconds.toFixed(0)} s`)
  t.same(unexpected.slice(0, 20), [], 'every request got its expected status and body')
  for (const kind of Object.keys(counts) as Kind[]) t.ok(counts[kind] > 0, `${kind}: ${counts[kind]} answered`)

  child.kill('SIGTERM')
  const { code, signal } = await exited
  t.equal(code, 0, `exits cleanly on SIGTERM (${code ?? signal})`)
  const gc = /gc-pressure: (\d+) minor, (\d+) major, (\d+) in all/.exec(output)
  const [minor, major] = [Number(gc?.[1] ?? 0), Number(gc?.[2] ?? 0)]
  t.ok(minor >= seconds * 5, `${minor} minor collections, at least 5 a second`)
  t.ok(major >= seconds / 10, `${major} major collections, at least one each 10 s`)
  const total = Object.values(counts).reduce((a, b) => a + b, 0)
  t.comment(`soak: ${seconds.toFixed(1)} s on Node ${process.versions.node}, ${bursts} bursts, ${total} requests ${JSON.stringify(counts)}, ` +
    `${minor} minor and ${major} major collections, ${gc?.[3] ?? '?'} in all`)
  if (!alive() && code !== 0) t.comment(output.slice(-3000))
})

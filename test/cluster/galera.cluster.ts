/**
 * `npm run test:cluster`: the service on a three-node MariaDB Galera cluster on loopback, with
 * HAProxy in front (test/cluster/cluster.sh). Not part of `npm test`: it installs Debian
 * packages when missing and needs root, and it takes minutes.
 */
import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { decodeRefreshToken } from '../../src/accounts/refresh-token.js'
import { hashToken } from '../../src/accounts/email-tokens.js'
import {
  call, cluster, freshDatabase, HAPROXY_PORT, login, LOGIN_LIMIT, logout, me, NODE_PORTS, nodeUrl, ready, refresh,
  schemaOf, signup, sql, startInstance, stopClusterNow, type Answer, type Instance
} from './cluster.js'

t.setTimeout(900_000)

const instances: Instance[] = []
function instance (databaseUrl: string, env?: Record<string, string>): Instance {
  const started = startInstance(databaseUrl, env)
  instances.push(started)
  return started
}
async function stopAll () {
  await Promise.all(instances.splice(0).map(i => i.stop()))
}

t.before(async () => {
  await cluster('start')
})
// Should the runner end this file early (its timeout), leave no instance and no node behind.
process.once('SIGTERM', () => {
  for (const i of instances) i.process.kill('SIGKILL')
  stopClusterNow()
  process.exit(143)
})
t.teardown(async () => {
  await stopAll()
  await cluster('stop')
})

const unique = () => randomBytes(5).toString('hex')

t.test('three instances starting at once on an empty cluster make the schema one instance makes', async t => {
  await freshDatabase('auth_alone')
  const alone = instance(nodeUrl(NODE_PORTS[0], 'auth_alone'))
  await ready(alone)
  await stopAll()
  const expected = await schemaOf(NODE_PORTS[0], 'auth_alone')
  t.match(expected.at(-1), /migrations: 0001-users, 0002-sessions, 0003-login-failures/)
  t.ok(expected.some(definition => /`refresh_key`/.test(definition)), 'sessions keep their refresh-token chains')
  t.ok(expected.some(definition => /PROCEDURE `rotate_refresh_chains`/.test(definition)), 'the rotation procedure is part of it')

  for (let round = 1; round <= 3; round++) {
    await freshDatabase('auth')
    const three = NODE_PORTS.map(port => instance(nodeUrl(port)))
    const started = await Promise.allSettled(three.map(i => ready(i)))
    t.same(started.map(s => s.status === 'fulfilled' ? 'ready' : (s.reason as Error).message), ['ready', 'ready', 'ready'],
      `round ${round}: every instance started`)
    for (const port of NODE_PORTS) t.same(await schemaOf(port, 'auth'), expected, `round ${round}: the schema on node ${port}`)
    const lock = await sql(NODE_PORTS[0], 'SELECT * FROM auth.schema_migrations_lock')
    t.same(lock, [], `round ${round}: the migration lock is free`)
    if (round < 3) await stopAll()
  }
})

t.test('across the nodes, one instance on each', async t => {
  const [a, b, c] = instances.map(i => i.url) as [string, string, string]
  t.ok(a !== undefined && instances.length === 3, 'the three instances of the last round still run')
  const all = [a, b, c]

  t.test('signup races for one email: exactly one account', async t => {
    for (let round = 0; round < 5; round++) {
      const email = `race-${unique()}@example.com`
      const answers = await Promise.all([...all, ...all].map(base => signup(base, email)))
      const statuses = answers.map(r => r.status).sort()
      t.same(statuses, [201, 409, 409, 409, 409, 409], `round ${round}: one 201, the rest 409`)
      for (const port of NODE_PORTS) {
        const rows = await sql(port, 'SET STATEMENT wsrep_sync_wait = 1 FOR SELECT id FROM auth.users WHERE email = ?', [email])
        t.equal(rows.length, 1, `round ${round}: one account on node ${port}`)
      }
    }
  })

  t.test('20 concurrent refreshes of one token over three instances: one success, family revoked as for reuse', async t => {
    // Each round makes nodes abort rotations that lost certification to another node's:
    // rounds enough that a rotation lost yet reported done would show.
    for (let round = 0; round < 10; round++) {
      const email = `refresh-${unique()}@example.com`
      t.equal((await signup(a, email)).status, 201)
      const tokens = (await login(b, email)).body
      const token = tokens.refresh_token as string
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => refresh(all[i % 3]!, token)))
      const ok = answers.filter(r => r.status === 200)
      t.equal(ok.length, 1, `round ${round}: exactly one 200`)
      t.same(answers.filter(r => r.status !== 200).map(r => `${r.status} ${String(r.body.error)}`),
        Array(19).fill('400 invalid_grant'), `round ${round}: the other 19 are invalid_grant`)
      const successor = ok[0]?.body.refresh_token as string
      const stored = await sql(NODE_PORTS[0], `SET STATEMENT wsrep_sync_wait = 1 FOR
        SELECT id FROM auth.sessions WHERE refresh_hash = ?`, [hashToken(decodeRefreshToken(successor)!.secret)])
      t.equal(stored.length, 1, `round ${round}: the rotation that answered 200 was committed: its successor is stored`)
      t.equal((await refresh(c, successor)).status, 400, `round ${round}: the winner's successor is revoked with its family`)
      const live = await sql(NODE_PORTS[2], `SET STATEMENT wsrep_sync_wait = 1 FOR
        SELECT s.id FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id WHERE u.email = ? AND s.ended_at IS NULL`, [email])
      t.same(live, [], `round ${round}: the session is ended`)
    }
  })

  t.test('a logout on instance A is refused on instance C at once', async t => {
    const email = `logout-${unique()}@example.com`
    t.equal((await signup(a, email)).status, 201)
    let stale = 0
    for (let round = 0; round < 20; round++) {
      const access = (await login(b, email)).body.access_token as string
      t.equal((await me(c, access)).status, 200)
      t.equal((await logout(a, access)).status, 204)
      const after = await me(c, access)
      if (after.status !== 401) stale++
      // A new token must not be issued in the very millisecond the logout took.
      await sleep(2)
    }
    t.equal(stale, 0, 'no read on C saw the session still open')
  })

  t.test('failed logins spread over the nodes lock the account at the configured count', async t => {
    const email = `guess-${unique()}@example.com`
    t.equal((await signup(a, email)).status, 201)
    for (let i = 0; i < LOGIN_LIMIT; i++) {
      const answer = await login(all[i % 3]!, email, `wrong password ${i}`)
      t.equal(answer.status, 400, `failure ${i + 1} on instance ${'ABC'[i % 3]}`)
    }
    for (const [i, base] of all.entries()) {
      const answer = await login(base, email)
      t.equal(answer.status, 429, `locked on instance ${'ABC'[i]}, the right password included`)
    }
  })
})

interface LoadReport {
  requests: number
  byStatus: Record<string, number>
  maxMs: number
  /** Requests that did not answer within 5 s, or whose connection failed. */
  hung: number
  signedUp: string[]
  /** Time (ms since start) of the last answer that was not a success. */
  lastFailureAt: number
  after: (ms: number) => Answer[]
}

/**
 * Workers that each sign up, log in, read /users/me, refresh twice and log out, again and
 * again through two instances, until `durationMs` ran out.
 */
async function mixedLoad (bases: string[], workers: number, durationMs: number): Promise<LoadReport> {
  const started = performance.now()
  const answers: Array<Answer & { at: number }> = []
  const report: LoadReport = {
    requests: 0,
    byStatus: {},
    maxMs: 0,
    hung: 0,
    signedUp: [],
    lastFailureAt: 0,
    after: ms => answers.filter(a => a.at >= ms)
  }
  const record = async (request: () => Promise<Answer>, expect: number): Promise<Answer | undefined> => {
    const at = performance.now() - started
    let answer: Answer
    try {
      answer = await request()
    } catch {
      report.hung++
      report.requests++
      report.lastFailureAt = at
      return undefined
    }
    report.requests++
    report.byStatus[answer.status] = (report.byStatus[answer.status] ?? 0) + 1
    report.maxMs = Math.max(report.maxMs, answer.ms)
    answers.push({ ...answer, at })
    if (answer.status !== expect) report.lastFailureAt = at
    return answer.status === expect ? answer : undefined
  }
  const opts = { timeoutMs: 5_000 }
  await Promise.all(Array.from({ length: workers }, async (_, w) => {
    let n = 0
    while (performance.now() - started < durationMs) {
      const base = bases[(w + n++) % bases.length]!
      const email = `load-${w}-${unique()}@example.com`
      const created = await record(() => call(base, 'POST', '/users', { json: { email, password: 'correct horse battery staple' }, ...opts }), 201)
      if (created === undefined) continue
      report.signedUp.push(email)
      const tokens = await record(() => call(base, 'POST', '/token', { form: { grant_type: 'password', username: email, password: 'correct horse battery staple' }, ...opts }), 200)
      if (tokens === undefined) continue
      await record(() => call(base, 'GET', '/users/me', { token: tokens.body.access_token as string, ...opts }), 200)
      let refreshToken = tokens.body.refresh_token as string
      for (let r = 0; r < 2; r++) {
        const next = await record(() => call(bases[(w + n + r) % bases.length]!, 'POST', '/token', { form: { grant_type: 'refresh_token', refresh_token: refreshToken }, ...opts }), 200)
        if (next === undefined) break
        refreshToken = next.body.refresh_token as string
      }
      await record(() => call(base, 'GET', '/users/me', { token: tokens.body.access_token as string, ...opts }), 200)
    }
  }))
  return report
}

async function checkData (t: Test, ports: readonly number[], emails: string[], label: string) {
  for (const port of ports) {
    const rows = await sql<Array<{ email: string }>>(port,
      'SET STATEMENT wsrep_sync_wait = 1 FOR SELECT email FROM auth.users WHERE email IN (?)', [emails])
    t.equal(rows.length, emails.length, `${label}: every 201 signup is on node ${port}`)
  }
  // Each session's chain (generation and current secret's hash) is the same on every node.
  const chains = await Promise.all(ports.map(port => sql<Array<{ id: string, chain: string }>>(port,
    `SET STATEMENT wsrep_sync_wait = 1 FOR SELECT HEX(s.id) AS id, CONCAT(s.refresh_generation, ':', HEX(s.refresh_hash), ':', COALESCE(s.ended_at, '')) AS chain
      FROM auth.sessions s JOIN auth.users u ON u.id = s.user_id WHERE u.email IN (?) ORDER BY s.id`, [emails])))
  for (const [i, port] of ports.entries()) {
    t.same(chains[i], chains[0], `${label}: every session's refresh-token chain on node ${port} is the one on node ${ports[0]}`)
  }
}

t.test('a node killed under load through HAProxy', async t => {
  await stopAll()
  const viaProxy = nodeUrl(HAPROXY_PORT)
  const pair = [instance(viaProxy), instance(viaProxy)]
  await Promise.all(pair.map(i => ready(i)))
  const bases = pair.map(i => i.url)

  const KILL_AT = 4_000
  const DURATION = 16_000
  const killer = (async () => {
    await sleep(KILL_AT)
    await cluster('kill', '2')
  })()
  const load = await mixedLoad(bases, 8, DURATION)
  await killer
  t.comment(`under the fault: ${load.requests} requests, by status ${JSON.stringify(load.byStatus)}, ` +
    `max ${Math.round(load.maxMs)} ms, ${load.hung} without an answer in 5 s, last failure ${Math.round(load.lastFailureAt)} ms after the start`)
  const unexpected = Object.keys(load.byStatus).map(Number).filter(s => s >= 500 && s !== 503)
  t.same(unexpected, [], 'no 5xx but 503')
  t.same(Object.keys(load.byStatus).filter(s => s.startsWith('4')), [], 'no 4xx: no write was missed by a read on another node')
  t.equal(load.hung, 0, 'every request answered within 5 s')
  t.ok(load.requests > 200, 'the load ran')
  const tail = load.after(KILL_AT + 6_000)
  t.ok(tail.length > 50, 'requests ran after the failover')
  t.same(tail.filter(a => a.status >= 500).length, 0, 'the service recovered by itself: no 5xx from 6 s after the kill on')
  for (const i of pair) t.equal(i.exited(), null, 'the instance still runs')

  // What the instances logged (warnings and errors) says which database error each 503 was.
  for (const [n, i] of pair.entries()) {
    const logged = i.output().trim()
    if (logged !== '') t.comment(`instance ${n + 1} logged:\n${logged.slice(-4000)}`)
  }
  await checkData(t, [NODE_PORTS[0], NODE_PORTS[2]], load.signedUp, 'two nodes left')

  const rejoinStarted = performance.now()
  await cluster('restart', '2')
  const rejoinMs = performance.now() - rejoinStarted
  const log = await sql(NODE_PORTS[1], "SHOW STATUS LIKE 'wsrep_cluster_size'")
  t.same(log, [{ Variable_name: 'wsrep_cluster_size', Value: '3' }], 'node 2 is back in a cluster of three')
  const transfer = (await cluster('transfer', '2')).trim()
  t.comment(`node 2 rejoined in ${Math.round(rejoinMs)} ms by ${transfer}`)
  t.match(transfer, /^(IST|SST)$/, 'node 2 caught up by a state transfer')
  await checkData(t, NODE_PORTS, load.signedUp, 'after the rejoin')

  // HAProxy counts node 2 up again after three good checks; then the checks pass on all three.
  await sleep(2_500)
  const again = await mixedLoad(bases, 6, 5_000)
  t.comment(`after the rejoin: ${again.requests} requests, by status ${JSON.stringify(again.byStatus)}, max ${Math.round(again.maxMs)} ms`)
  t.same(Object.keys(again.byStatus).filter(s => !s.startsWith('2')), [], 'every answer a success')
  t.equal(again.hung, 0)
  await checkData(t, NODE_PORTS, [...load.signedUp, ...again.signedUp], 'after the second load')
})

import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import t from 'tap'
import { build, CLOCK_SHIFT_MS, eachDialect, freshDatabase, onDialects } from '../helper.js'

const PASSING = {
  database: { status: 'pass', detail: 'The database answers' },
  migrations: { status: 'pass', detail: 'Every migration is applied' },
  outbox: { status: 'pass', detail: 'The outbox is empty' }
}

eachDialect(t, 'GET /health and GET /ready', async (t, dialect) => {
  t.test('both answer 200 on a migrated database, /ready with what it checked', async t => {
    const app = await build(t, dialect)
    const health = await app.inject({ method: 'GET', url: '/health' })
    t.equal(health.statusCode, 200)
    t.same(health.json(), { status: 'ok' })
    const ready = await app.inject({ method: 'GET', url: '/ready' })
    t.equal(ready.statusCode, 200)
    t.same(ready.json(), { status: 'ok', checks: PASSING })
  })

  t.test('with migrations pending, /ready is 503 naming them, and /health stays 200', async t => {
    const databaseUrl = await freshDatabase(t, dialect)
    const app = await build(t, dialect, { databaseUrl, env: { MIGRATE_ON_START: 'false' } })
    t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200)
    const pending = await app.migrator.pending()
    t.ok(pending.length >= 3)
    const ready = await app.inject({ method: 'GET', url: '/ready' })
    t.equal(ready.statusCode, 503)
    t.equal(ready.headers['retry-after'], '5')
    t.equal(ready.headers['content-type'], 'application/problem+json; charset=utf-8')
    const detail = `${pending.length} database migration(s) not applied: ${pending.join(', ')}`
    t.same(ready.json(), {
      type: 'about:blank',
      title: 'Service Unavailable',
      status: 503,
      detail,
      checks: { database: PASSING.database, migrations: { status: 'fail', detail }, outbox: { status: 'fail', detail: 'Unknown while migrations are pending' } }
    })
    await app.migrator.up()
    const after = await app.inject({ method: 'GET', url: '/ready' })
    t.equal(after.statusCode, 200)
    t.same(after.json(), { status: 'ok', checks: PASSING })
  })
})

/** A TCP relay to MariaDB that the test can cut: open connections die and new ones are refused. */
async function relay (target: URL) {
  const sockets = new Set<Socket>()
  const server = createServer(client => {
    const upstream = connect({ host: target.hostname, port: Number(target.port || 3306) })
    for (const socket of [client, upstream]) {
      sockets.add(socket)
      socket.on('error', () => {}).on('close', () => { client.destroy(); upstream.destroy() })
    }
    client.pipe(upstream).pipe(client)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const cut = async () => {
    const closed = new Promise(resolve => server.close(resolve))
    for (const socket of sockets) socket.destroy()
    await closed
  }
  return { port: (server.address() as AddressInfo).port, cut }
}

onDialects(t, 'GET /ready while the database does not answer', ['mysql'], async t => {
  // SQLite, a file the process holds open, cannot be made to stop answering from outside.
  const direct = new URL(await freshDatabase(t, 'mysql'))
  const proxy = await relay(direct)
  t.teardown(proxy.cut)
  const relayed = new URL(direct)
  relayed.host = `127.0.0.1:${proxy.port}`
  const app = await build(t, 'mysql', { databaseUrl: relayed.href })
  t.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200)

  await proxy.cut()
  t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200)
  const ready = await app.inject({ method: 'GET', url: '/ready' })
  t.equal(ready.statusCode, 503)
  t.same(ready.json(), {
    type: 'about:blank',
    title: 'Service Unavailable',
    status: 503,
    detail: 'The database is not answering',
    checks: {
      database: { status: 'fail', detail: 'The database is not answering' },
      migrations: { status: 'fail', detail: 'Unknown while the database is not answering' },
      outbox: { status: 'fail', detail: 'Unknown while the database is not answering' }
    }
  })
})

eachDialect(t, 'GET /ready and the metrics while mail cannot go out', async (t, dialect) => {
  // Nothing listens on port 9: every attempt fails and the message stays, to be tried again.
  const app = await build(t, dialect, { env: { SMTP_URL: 'smtp://127.0.0.1:9', METRICS_PORT: '0', READY_OUTBOX_MAX_AGE: '3600' } })
  const now = Date.now() + CLOCK_SHIFT_MS
  const queue = (minutesAgo: number) => app.store.enqueueEmail({
    recipient: 'ada@example.com', subject: 'Hello', text: 'Hello', html: '<p>Hello</p>', expiresAt: now + 86_400_000
  }, now - minutesAgo * 60_000)
  const scrape = async () => (await fetch(`http://127.0.0.1:${app.metrics.address()!.port}/metrics`)).text()
  const value = (text: string, line: string) => Number(new RegExp(`^${line.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1])

  await queue(30)
  const young = await app.inject({ method: 'GET', url: '/ready' })
  t.equal(young.statusCode, 200)
  t.match(young.json().checks.outbox, { status: 'pass', detail: /^1 message\(s\) waiting, the oldest for 180\d s$/ })

  const before = await scrape()
  await app.mail.flush()
  const after = await scrape()
  t.equal(value(after, 'auth_emails_total{outcome="retried"}') - value(before, 'auth_emails_total{outcome="retried"}'), 1, 'the failed attempt is counted')
  t.equal(value(after, 'auth_emails_total{outcome="sent"}'), 0)
  t.equal(value(after, 'auth_outbox_pending'), 1)

  await queue(120)
  const stuck = await app.inject({ method: 'GET', url: '/ready' })
  t.equal(stuck.statusCode, 503)
  const body = stuck.json()
  t.match(body.detail, /^The outbox is stuck: the oldest of 2 message\(s\) has waited 720\d s, more than READY_OUTBOX_MAX_AGE \(3600 s\)$/)
  t.same(body.checks, { database: PASSING.database, migrations: PASSING.migrations, outbox: { status: 'fail', detail: body.detail } })
  t.equal(value(await scrape(), 'auth_outbox_pending'), 2)
})

import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import t from 'tap'
import { build, eachDialect, freshDatabase, onDialects } from '../helper.js'

const PASSING = {
  database: { status: 'pass', detail: 'The database answers' },
  migrations: { status: 'pass', detail: 'Every migration is applied' }
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
      checks: { database: PASSING.database, migrations: { status: 'fail', detail } }
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
      migrations: { status: 'fail', detail: 'Unknown while the database is not answering' }
    }
  })
})

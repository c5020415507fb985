import t from 'tap'
import { build, eachDialect, freshDatabase } from '../helper.js'

eachDialect(t, 'GET /health and GET /ready', async (t, dialect) => {
  t.test('both answer 200 on a migrated database', async t => {
    const app = await build(t, dialect)
    const health = await app.inject({ method: 'GET', url: '/health' })
    t.equal(health.statusCode, 200)
    t.same(health.json(), { status: 'ok' })
    const ready = await app.inject({ method: 'GET', url: '/ready' })
    t.equal(ready.statusCode, 200)
    t.same(ready.json(), { status: 'ok' })
  })

  t.test('with migrations pending, /ready is 503 and /health stays 200', async t => {
    const databaseUrl = await freshDatabase(t, dialect)
    const app = await build(t, dialect, { databaseUrl, env: { MIGRATE_ON_START: 'false' } })
    t.equal((await app.inject({ method: 'GET', url: '/health' })).statusCode, 200)
    const ready = await app.inject({ method: 'GET', url: '/ready' })
    t.equal(ready.statusCode, 503)
    t.equal(ready.headers['retry-after'], '5')
    t.match(ready.json(), { status: 503, title: 'Service Unavailable', detail: /migration/ })
    await app.migrator.up()
    t.equal((await app.inject({ method: 'GET', url: '/ready' })).statusCode, 200)
  })
})

import t from 'tap'
import type { FastifyRequest } from 'fastify'
import { build, createUser, eachDialect, testNow } from '../helper.js'

const DAY = 86_400_000

eachDialect(t, 'security events', async (t, dialect) => {
  let clock = testNow()
  const app = await build(t, dialect, { now: () => clock, env: { AUDIT_RETENTION_DAYS: '7' } })

  t.test('signup is recorded with the address and user agent of its request', async t => {
    const res = await app.inject({
      method: 'POST', url: '/users', payload: { email: 'ada@example.com', password: 'correct horse battery staple' }, headers: { 'user-agent': 'curl/8.5.0' }
    })
    t.equal(res.statusCode, 201)
    t.same(await app.securityEvents.recent(res.json().id), [{ type: 'signup', at: clock, ip: '127.0.0.1', userAgent: 'curl/8.5.0' }])
  })

  t.test('a 10 KiB user agent is kept cut to 256 characters; no request, no client', async t => {
    const { id } = await createUser(app, 'long@example.com')
    const userAgent = 'Mozilla/5.0 ' + 'x'.repeat(10 * 1024)
    clock += 1
    await app.securityEvents.record(id, 'logout', { ip: '2001:db8::1', headers: { 'user-agent': userAgent } } as unknown as FastifyRequest)
    clock += 1
    await app.securityEvents.record(id, 'login')
    const [latest, logout] = await app.securityEvents.recent(id)
    t.same(latest, { type: 'login', at: clock, ip: null, userAgent: null }, 'newest first')
    t.equal(logout!.userAgent, userAgent.slice(0, 256))
    t.equal(logout!.ip, '2001:db8::1')
  })

  t.test('a character is never cut in half', async t => {
    const { id } = await createUser(app, 'emoji@example.com')
    const userAgent = 'a' + '\u{1F600}'.repeat(300)
    await app.securityEvents.record(id, 'login', { ip: '127.0.0.1', headers: { 'user-agent': userAgent } } as unknown as FastifyRequest)
    const [event] = await app.securityEvents.recent(id)
    t.equal(Array.from(event!.userAgent!).length, 256)
    t.equal(event!.userAgent, Array.from(userAgent).slice(0, 256).join(''))
  })

  t.test('at most 50, newest first', async t => {
    const { id } = await createUser(app, 'many@example.com')
    for (let i = 0; i < 60; i++) {
      clock += 1
      await app.securityEvents.record(id, i % 2 === 0 ? 'login' : 'logout')
    }
    const events = await app.securityEvents.recent(id)
    t.equal(events.length, 50)
    t.same(events.map(e => e.at), Array.from({ length: 50 }, (_, i) => clock - i))
  })

  t.test('for a user that no longer exists nothing is recorded and nothing fails', async t => {
    await t.resolves(app.securityEvents.record(987_654, 'login'))
    t.same(await app.store.listSecurityEvents(987_654, 50), [])
  })

  t.test('events older than AUDIT_RETENTION_DAYS are pruned on the app\'s clock', async t => {
    const { id } = await createUser(app, 'old@example.com')
    clock += 1
    await app.securityEvents.record(id, 'login')
    clock += 7 * DAY
    await app.store.pruneSecurityEvents(clock - 7 * DAY, 5000)
    t.same((await app.securityEvents.recent(id)).map(e => e.type), ['login'], 'the login, exactly 7 days old, is kept; the signup, 1 ms older, is not')
    clock += 1
    await app.securityEvents.record(id, 'logout')
    t.ok(await app.store.pruneSecurityEvents(clock - 7 * DAY, 5000) >= 1)
    t.same((await app.securityEvents.recent(id)).map(e => e.type), ['logout'])
  })
})

eachDialect(t, 'the pruning loop runs at start on the app\'s clock', async (t, dialect) => {
  const { freshDatabase } = await import('../helper.js')
  const databaseUrl = await freshDatabase(t, dialect)
  let clock = testNow()
  const first = await build(t, dialect, { databaseUrl, now: () => clock })
  const { id } = await createUser(first)
  t.equal((await first.securityEvents.recent(id)).length, 1)
  await first.close()
  clock += 91 * DAY
  const later = await build(t, dialect, { databaseUrl, now: () => clock })
  t.same(await later.securityEvents.recent(id), [], 'the default 90 days have passed')
})

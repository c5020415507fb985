import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { softDelay } from '../../plugins/login-limits.js'
import { build, createUser, eachDialect, form, freshDatabase, PASSWORD, testNow } from '../helper.js'

const LIMITS = { LOGIN_LIMIT_PER_ACCOUNT: '4', LOGIN_LIMIT_PER_ADDRESS: '6', LOGIN_LIMIT_WINDOW: '60' }

function attempt (app: FastifyInstance, username: string, password: string, remoteAddress = '127.0.0.1') {
  return app.inject({ method: 'POST', url: '/token', remoteAddress, ...form({ grant_type: 'password', username, password }) })
}

t.test('the soft delay doubles from half the limit and is capped', async t => {
  t.same([0, 1, 4, 5, 6, 7, 8, 9, 20].map(n => softDelay(n, 10)), [0, 0, 0, 250, 500, 1000, 2000, 4000, 4000])
})

eachDialect(t, 'failed logins are limited per account across instances', async (t, dialect) => {
  let clock = testNow()
  const databaseUrl = await freshDatabase(t, dialect)
  const one = await build(t, dialect, { databaseUrl, env: LIMITS, now: () => clock })
  const two = await build(t, dialect, { databaseUrl, env: LIMITS, now: () => clock })
  await createUser(one)
  await createUser(one, 'grace@example.com')

  // Four failures, alternating between the two instances, use up the shared account limit.
  for (let i = 0; i < 4; i++) {
    const res = await attempt(i % 2 === 0 ? one : two, 'ada@example.com', 'wrong password', `10.0.0.${i + 1}`)
    t.equal(res.statusCode, 400)
    t.equal(res.json().error, 'invalid_grant')
  }

  for (const app of [one, two]) {
    const res = await attempt(app, 'ada@example.com', PASSWORD, '10.0.0.9')
    t.equal(res.statusCode, 429, 'refused on either instance, the right password included')
    t.match(res.headers['content-type'], /^application\/json/)
    t.same(res.json(), { error: 'invalid_request', error_description: 'Too many failed logins; try again in 60 seconds' })
    t.equal(res.headers['retry-after'], '60')
  }

  const other = await attempt(two, 'grace@example.com', PASSWORD, '10.9.9.9')
  t.equal(other.statusCode, 200, 'another account from another address is unaffected')

  clock += 30_000
  t.equal((await attempt(one, 'ada@example.com', PASSWORD, '10.0.0.9')).headers['retry-after'], '30', 'Retry-After counts down')
  clock += 30_001
  const lifted = await attempt(one, 'ada@example.com', PASSWORD, '10.0.0.9')
  t.equal(lifted.statusCode, 200, 'the limit lifts when the window has slid past the failures')

  t.test('a success forgets the account\'s failures', async t => {
    for (let i = 0; i < 3; i++) t.equal((await attempt(one, 'ada@example.com', 'wrong', '10.1.0.1')).statusCode, 400)
    t.equal((await attempt(one, 'ada@example.com', PASSWORD, '10.1.0.1')).statusCode, 200)
    t.equal((await attempt(one, 'ada@example.com', 'wrong', '10.1.0.2')).statusCode, 400, 'three more may fail before the limit')
    t.equal((await attempt(one, 'ada@example.com', PASSWORD, '10.1.0.2')).statusCode, 200)
  })
})

eachDialect(t, 'failed logins are limited per address', async (t, dialect) => {
  const clock = testNow()
  const app = await build(t, dialect, { env: LIMITS, now: () => clock })
  await createUser(app)
  // Credential stuffing: one address, six different unknown accounts.
  for (let i = 0; i < 6; i++) t.equal((await attempt(app, `user${i}@example.com`, 'guess-guess', '192.0.2.7')).statusCode, 400)
  const blocked = await attempt(app, 'ada@example.com', PASSWORD, '192.0.2.7')
  t.equal(blocked.statusCode, 429)
  t.ok(Number(blocked.headers['retry-after']) > 0)
  t.equal((await attempt(app, 'ada@example.com', PASSWORD, '192.0.2.8')).statusCode, 200, 'another address is unaffected')
})

eachDialect(t, 'an unknown account is limited like a known one', async (t, dialect) => {
  const app = await build(t, dialect, { env: LIMITS })
  for (let i = 0; i < 4; i++) t.equal((await attempt(app, 'ghost@example.com', 'wrong', `10.2.0.${i}`)).statusCode, 400)
  t.equal((await attempt(app, 'ghost@example.com', 'wrong', '10.2.0.9')).statusCode, 429, 'the 429 does not reveal whether the account exists')
})

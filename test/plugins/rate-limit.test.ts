import { randomInt } from 'node:crypto'
import t from 'tap'
import { Redis } from 'ioredis'
import { build, eachDialect, form, freshDatabase } from '../helper.js'

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

async function redisProblem (): Promise<string | undefined> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, connectTimeout: 2000, maxRetriesPerRequest: 0, retryStrategy: () => null })
  try {
    await redis.connect()
    await redis.ping()
    return undefined
  } catch (err) {
    return (err as Error).message
  } finally {
    redis.disconnect()
  }
}

/** A fresh client address per test, so parallel runs never share a counter. */
const address = () => `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`

t.test('the general limit is off by default', async t => {
  const app = await build(t, 'sqlite')
  const ip = address()
  for (let i = 0; i < 30; i++) t.equal((await app.inject({ method: 'GET', url: '/health', remoteAddress: ip })).statusCode, 200)
})

eachDialect(t, 'RATE_LIMIT_PER_MINUTE in memory', async (t, dialect) => {
  const app = await build(t, dialect, { env: { RATE_LIMIT_PER_MINUTE: '3' } })
  const ip = address()
  for (let i = 0; i < 3; i++) t.equal((await app.inject({ method: 'GET', url: '/auth/status', remoteAddress: ip })).statusCode, 200)
  const limited = await app.inject({ method: 'GET', url: '/auth/status', remoteAddress: ip })
  t.equal(limited.statusCode, 429)
  t.match(limited.headers['content-type'], /^application\/problem\+json/)
  t.match(limited.json(), { status: 429, title: 'Too Many Requests' })
  t.ok(Number(limited.headers['retry-after']) > 0)
  const token = await app.inject({ method: 'POST', url: '/token', remoteAddress: ip, ...form({ grant_type: 'password' }) })
  t.equal(token.statusCode, 429, 'the OAuth endpoints keep the 429 status')
  t.same(Object.keys(token.json()).sort(), ['error', 'error_description'])
  t.equal(token.json().error, 'invalid_request')
  t.equal((await app.inject({ method: 'GET', url: '/auth/status', remoteAddress: address() })).statusCode, 200, 'other addresses are unaffected')
})

t.test('two instances share one limit through Redis', async t => {
  const problem = await redisProblem()
  if (problem !== undefined) {
    if (process.env.CI === 'true') throw new Error(`Redis is required in CI but ${REDIS_URL} is unreachable: ${problem}`)
    t.test('Redis tests', { skip: `Redis at ${REDIS_URL} is unreachable (${problem}); set TEST_REDIS_URL to run them` }, async () => {})
    return
  }
  const databaseUrl = await freshDatabase(t, 'sqlite')
  const env = { RATE_LIMIT_PER_MINUTE: '4', REDIS_URL }
  const one = await build(t, 'sqlite', { databaseUrl, env })
  const two = await build(t, 'sqlite', { databaseUrl, env })
  const ip = address()
  const codes = []
  for (let i = 0; i < 6; i++) codes.push((await (i % 2 === 0 ? one : two).inject({ method: 'GET', url: '/health', remoteAddress: ip })).statusCode)
  t.same(codes, [200, 200, 200, 200, 429, 429])
})

import t from 'tap'
import { build } from '../helper.js'

t.test('security headers on every response', async t => {
  const app = await build(t, 'sqlite')
  for (const url of ['/health', '/users/me', '/nowhere']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.headers['x-content-type-options'], 'nosniff', url)
    t.equal(res.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'", url)
    t.match(res.headers['strict-transport-security'], /max-age=/, url)
    t.equal(res.headers['referrer-policy'], 'no-referrer', url)
    t.equal(res.headers['cross-origin-resource-policy'], 'same-origin', url)
  }
})

t.test('CORS is off by default', async t => {
  const app = await build(t, 'sqlite')
  const res = await app.inject({ method: 'OPTIONS', url: '/users/me', headers: { origin: 'https://app.example', 'access-control-request-method': 'GET' } })
  t.equal(res.headers['access-control-allow-origin'], undefined)
  const get = await app.inject({ method: 'GET', url: '/health', headers: { origin: 'https://app.example' } })
  t.equal(get.headers['access-control-allow-origin'], undefined)
})

t.test('CORS_ORIGINS allows exactly the listed origins', async t => {
  const app = await build(t, 'sqlite', { env: { CORS_ORIGINS: 'https://app.example,https://admin.example' } })
  const preflight = await app.inject({
    method: 'OPTIONS',
    url: '/users/me',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' }
  })
  t.equal(preflight.statusCode, 204)
  t.equal(preflight.headers['access-control-allow-origin'], 'https://app.example')
  t.match(preflight.headers['access-control-allow-headers'], /Authorization/)
  const other = await app.inject({ method: 'GET', url: '/health', headers: { origin: 'https://evil.example' } })
  t.equal(other.headers['access-control-allow-origin'], undefined)
  const allowed = await app.inject({ method: 'GET', url: '/health', headers: { origin: 'https://admin.example' } })
  t.equal(allowed.headers['access-control-allow-origin'], 'https://admin.example')
  t.match(allowed.headers['access-control-expose-headers'], /X-Request-Id/)
})

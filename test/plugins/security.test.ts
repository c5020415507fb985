import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import t from 'tap'
import { DOCS_CSP, SWAGGER_LOGO_STYLE } from '../../plugins/swagger.js'
import { build } from '../helper.js'

t.test('security headers on every response', async t => {
  const app = await build(t, 'sqlite')
  for (const url of ['/health', '/users/me', '/nowhere']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.headers['x-content-type-options'], 'nosniff', url)
    t.equal(res.headers['content-security-policy'], "default-src 'none';frame-ancestors 'none'", url)
    t.equal(res.headers['cross-origin-resource-policy'], undefined, `${url}: no cookies, so nothing for another site to embed but what it can fetch`)
    t.equal(res.headers['strict-transport-security'], undefined, `${url}: no HSTS over plain HTTP (RFC 6797 §7.2)`)
    t.equal(res.headers['referrer-policy'], undefined, `${url}: a JSON response makes no request a referrer policy could govern`)
  }
})

t.test('Strict-Transport-Security on HTTPS requests, behind a trusted proxy too', async t => {
  const forwarded = { 'x-forwarded-proto': 'https' }
  const trusting = await build(t, 'sqlite', { env: { TRUST_PROXY: 'true' } })
  for (const url of ['/health', '/users/me', '/nowhere']) {
    const res = await trusting.inject({ method: 'GET', url, headers: forwarded })
    t.equal(res.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains', url)
  }
  const plain = await trusting.inject({ method: 'GET', url: '/health', headers: { 'x-forwarded-proto': 'http' } })
  t.equal(plain.headers['strict-transport-security'], undefined, 'the proxy says the client spoke plain HTTP')

  const untrusting = await build(t, 'sqlite')
  const spoofed = await untrusting.inject({ method: 'GET', url: '/health', headers: forwarded })
  t.equal(spoofed.headers['strict-transport-security'], undefined, 'X-Forwarded-Proto from a proxy not trusted is ignored')
})

t.test('the HTML documents (pages and /docs) send no referrer', async t => {
  const app = await build(t, 'sqlite')
  for (const url of ['/reset-password?token=abc', '/verify-email?token=abc', '/docs', '/docs/']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 200, url)
    t.match(res.headers['content-type'], /^text\/html/, url)
    t.equal(res.headers['referrer-policy'], 'no-referrer', url)
  }
})

t.test('/docs has its own CSP: same-origin assets, one inline style allowed by its hash', async t => {
  const app = await build(t, 'sqlite')
  for (const url of ['/docs', '/docs/', '/docs/static/swagger-initializer.js', '/docs/static/swagger-ui.css', '/docs/json']) {
    const res = await app.inject({ method: 'GET', url })
    t.equal(res.statusCode, 200, url)
    t.equal(res.headers['content-security-policy'], DOCS_CSP, url)
  }
  t.notMatch(DOCS_CSP, /unsafe-inline|unsafe-eval|https:|\*/, 'nothing from elsewhere, nothing inline but the hashed style')
  t.match(DOCS_CSP, /style-src 'self' 'sha256-RL3ie0nH\+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='$/, 'the hash Chromium computes for the logo style')

  // Without a browser at hand, an upgrade of Swagger UI whose logo style changed still fails here.
  const swaggerUi = dirname(createRequire(import.meta.url).resolve('@fastify/swagger-ui'))
  const preset = readFileSync(join(swaggerUi, 'static', 'swagger-ui-standalone-preset.js'), 'utf8')
  t.ok(preset.includes(`createElement("style",null,${JSON.stringify(SWAGGER_LOGO_STYLE)})`), 'the logo style is the one Swagger UI renders')
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

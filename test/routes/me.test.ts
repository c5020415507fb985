import { request as httpRequest } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, createUser, eachDialect, login, testNow } from '../helper.js'

const REALM = 'Bearer realm="auth-service"'

function b64 (value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

async function me (app: FastifyInstance, authorization?: string) {
  return app.inject({ method: 'GET', url: '/users/me', headers: authorization === undefined ? {} : { authorization } })
}

async function loggedIn (app: FastifyInstance, authorization?: string): Promise<boolean> {
  const res = await app.inject({ method: 'GET', url: '/auth/status', headers: authorization === undefined ? {} : { authorization } })
  if (res.statusCode !== 200) throw new Error(`/auth/status answered ${res.statusCode}`)
  return res.json().logged_in
}

eachDialect(t, 'GET /users/me and GET /auth/status', async (t, dialect) => {
  const app = await build(t, dialect)
  const user = await createUser(app)
  const bob = await createUser(app, 'bob@example.com')
  const { access_token: token } = await login(app)
  const nowSeconds = Math.floor(testNow() / 1000)
  const sid = (app.jwt.decode(token) as { sid: string }).sid
  const claims = { iss: 'http://auth.test', aud: 'http://auth.test', sub: String(user.id), iat: nowSeconds, exp: nowSeconds + 600, jti: 'test', sid }
  const sign = (payload: object, options: Record<string, unknown> = {}) =>
    app.jwt.sign(payload as never, Object.keys(options).length === 0 ? undefined : options)

  t.test('a valid token reaches the user', async t => {
    const res = await me(app, `Bearer ${token}`)
    t.equal(res.statusCode, 200)
    t.same(res.json(), { ...user, email_verified: false })
    t.equal(await loggedIn(app, `Bearer ${token}`), true)
  })

  t.test('the scheme name is case-insensitive', async t => {
    t.equal((await me(app, `bearer ${token}`)).statusCode, 200)
    t.equal((await me(app, `BEARER ${token}`)).statusCode, 200)
    t.equal(await loggedIn(app, `bEaReR ${token}`), true)
  })

  t.test('no bearer token: 401 with the bare challenge (RFC 6750 §3.1)', async t => {
    for (const authorization of [undefined, 'Basic YWRhOnB3', 'Token abc', 'Bearertoken']) {
      const res = await me(app, authorization)
      t.equal(res.statusCode, 401, String(authorization))
      t.equal(res.headers['www-authenticate'], REALM, String(authorization))
      t.match(res.headers['content-type'], /^application\/problem\+json/)
      t.same(res.json(), { type: 'about:blank', title: 'Unauthorized', status: 401, detail: 'An access token is required' })
      t.equal(await loggedIn(app, authorization), false)
    }
  })

  const refused: Record<string, () => string> = {
    'an empty token': () => '',
    garbage: () => 'garbage',
    'three garbage segments': () => 'a.b.c',
    'alg none': () => `${b64({ alg: 'none', typ: 'at+jwt' })}.${b64(claims)}.`,
    'another key': () => sign(claims, { key: 'another-secret-that-is-long-enough-0123456789' }),
    'another algorithm (HS512)': () => sign(claims, { algorithm: 'HS512' }),
    'a tampered payload': () => {
      const [header, , signature] = token.split('.')
      return `${header}.${b64({ ...claims, sub: '999' })}.${signature}`
    },
    'an expired token': () => sign({ ...claims, iat: nowSeconds - 7200, exp: nowSeconds - 3600 }),
    'a token not valid yet (nbf)': () => sign({ ...claims, nbf: nowSeconds + 3600 }),
    'a token issued in the future': () => sign({ ...claims, iat: nowSeconds + 3600, exp: nowSeconds + 7200 }),
    'another issuer': () => sign({ ...claims, iss: 'http://evil.test' }),
    'another audience': () => sign({ ...claims, aud: 'http://other.test' }),
    'no exp': () => sign({ ...claims, exp: undefined }, { noTimestamp: false }),
    'no sub': () => sign({ ...claims, sub: undefined }),
    'a non-numeric sub': () => sign({ ...claims, sub: 'ada' }),
    'typ JWT instead of at+jwt': () => sign(claims, { typ: 'JWT' }),
    'a user that does not exist': () => sign({ ...claims, sub: '424242' }),
    'no sid': () => sign({ ...claims, sid: undefined }),
    'a sid that is not a session': () => sign({ ...claims, sid: 'AAAAAAAAAAAAAAAAAAAAAA' }),
    'a malformed sid': () => sign({ ...claims, sid: 'x' }),
    'a sid that is not a string': () => sign({ ...claims, sid: 42 }),
    'another user\'s session': () => sign({ ...claims, sub: String(bob.id) })
  }

  for (const [name, make] of Object.entries(refused)) {
    t.test(`${name}: 401 invalid_token`, async t => {
      const authorization = `Bearer ${make()}`
      const res = await me(app, authorization)
      t.equal(res.statusCode, 401)
      t.match(res.headers['www-authenticate'], /^Bearer realm="auth-service", error="invalid_token", error_description="[^"\\]+"$/)
      t.equal(res.json().status, 401)
      t.equal(await loggedIn(app, authorization), false)
    })
  }

  t.test('an expired token says so', async t => {
    const res = await me(app, `Bearer ${refused['an expired token']!()}`)
    t.match(res.headers['www-authenticate'], /error_description="The access token expired"/)
  })

  t.test('clock skew: a token expired 10 s ago still passes with the default 30 s', async t => {
    const res = await me(app, `Bearer ${sign({ ...claims, exp: nowSeconds - 10 })}`)
    t.equal(res.statusCode, 200)
  })

  t.test('more than one Authorization header: 400 invalid_request (RFC 6750 §3.1)', async t => {
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as AddressInfo
    const raw = (path: string) => new Promise<{ status: number, headers: Record<string, unknown>, body: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, path, headers: ['Host', `127.0.0.1:${port}`, 'Authorization', `Bearer ${token}`, 'Authorization', `Bearer ${token}`] as unknown as Record<string, string> }, res => {
        let body = ''
        res.on('data', chunk => { body += chunk })
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
      })
      req.on('error', reject)
      req.end()
    })
    const res = await raw('/users/me')
    t.equal(res.status, 400)
    t.match(res.headers['www-authenticate'], /^Bearer realm="auth-service", error="invalid_request"/)
    t.equal(JSON.parse(res.body).status, 400)
    const status = await raw('/auth/status')
    t.equal(status.status, 200)
    t.same(JSON.parse(status.body), { logged_in: false })
  })
})

eachDialect(t, 'access tokens live by the app\'s clock, not the wall clock', async (t, dialect) => {
  let clock = Math.floor(testNow() / 1000) * 1000 // a whole second: iat is clock / 1000
  const app = await build(t, dialect, { now: () => clock })
  await createUser(app)
  const { access_token: token, expires_in: ttl } = await login(app)
  const authorization = `Bearer ${token}`
  t.equal((await me(app, authorization)).statusCode, 200, 'verified once, and so remembered')

  clock += (ttl + 30) * 1000
  t.equal((await me(app, authorization)).statusCode, 200, 'within the 30 s skew after exp')
  clock += 1000
  const expired = await me(app, authorization)
  t.equal(expired.statusCode, 401, 'past exp and the skew, though the signature check is remembered')
  t.match(expired.headers['www-authenticate'], /error_description="The access token expired"/)
  t.equal(await loggedIn(app, authorization), false)

  clock -= (ttl + 31) * 1000 + 31_000
  const early = await me(app, authorization)
  t.equal(early.statusCode, 401, 'issued more than the skew ahead of the clock')
  t.match(early.headers['www-authenticate'], /error_description="The access token is not valid yet"/)
  clock += 1000
  t.equal((await me(app, authorization)).statusCode, 200, 'within the skew before iat')
})

import { createHmac, createPublicKey } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import type { FastifyInstance } from 'fastify'
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import t from 'tap'
import { ASYMMETRIC_ALGORITHMS, generatePemKeyPair, type AsymmetricAlgorithm } from '../../src/signing-keys.js'
import { build, createUser, eachDialect, freshDatabase, login, testNow } from '../helper.js'

const ISSUER = 'http://auth.test'

async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

/** What a resource server does: verify with nothing but the service's published keys. */
async function verifyWithJwks (base: string, token: string, alg: AsymmetricAlgorithm) {
  const jwks = createRemoteJWKSet(new URL(`${base}/.well-known/jwks.json`))
  return jwtVerify(token, jwks, { issuer: ISSUER, audience: ISSUER, typ: 'at+jwt', algorithms: [alg], requiredClaims: ['sub', 'iat', 'exp'], currentDate: new Date(testNow()) })
}

async function me (app: FastifyInstance, token: string) {
  return app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${token}` } })
}

function b64 (value: object | string): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url')
}

const keys = Object.fromEntries(ASYMMETRIC_ALGORITHMS.map(alg => [alg, generatePemKeyPair(alg)])) as
  Record<AsymmetricAlgorithm, { privateKey: string, publicKey: string }>
const signingEnv = (alg: AsymmetricAlgorithm, previous: AsymmetricAlgorithm[] = []) => ({
  JWT_ALGORITHM: alg,
  JWT_PRIVATE_KEY: keys[alg].privateKey,
  ...(previous.length === 0 ? {} : { JWT_PREVIOUS_PUBLIC_KEYS: previous.map(p => keys[p].publicKey).join('') })
})

t.test('RFC 8414 metadata and the JWKS with HS256', async t => {
  const app = await build(t, 'sqlite')
  const res = await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['cache-control'], /^public, max-age=\d+$/)
  t.same(res.json(), {
    issuer: ISSUER,
    token_endpoint: `${ISSUER}/token`,
    revocation_endpoint: `${ISSUER}/revoke`,
    grant_types_supported: ['password', 'refresh_token'],
    response_types_supported: [],
    token_endpoint_auth_methods_supported: ['none'],
    revocation_endpoint_auth_methods_supported: ['none'],
    scopes_supported: [],
    service_documentation: `${ISSUER}/docs`
  }, 'no jwks_uri: there is no public key')

  const jwks = await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })
  t.equal(jwks.statusCode, 404)
  t.match(jwks.headers['content-type'], /^application\/problem\+json/)
  t.match(jwks.json(), { type: 'about:blank', title: 'Not Found', status: 404, detail: /HS256/ })
})

t.test('metadata URLs derive from PUBLIC_URL, the issuer from JWT_ISSUER', async t => {
  const app = await build(t, 'sqlite', { env: { PUBLIC_URL: 'https://login.example.com/', JWT_ISSUER: 'https://login.example.com/tenant', ...signingEnv('EdDSA') } })
  t.match((await app.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' })).json(), {
    issuer: 'https://login.example.com/tenant',
    token_endpoint: 'https://login.example.com/token',
    revocation_endpoint: 'https://login.example.com/revoke',
    jwks_uri: 'https://login.example.com/.well-known/jwks.json'
  })
})

for (const alg of ASYMMETRIC_ALGORITHMS) {
  t.test(`${alg}: tokens verify with jose against the served JWKS alone`, async t => {
    const app = await build(t, 'sqlite', { env: signingEnv(alg) })
    const base = await listen(app)
    const metadata = await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json() as Record<string, unknown>
    t.equal(metadata.jwks_uri, `${ISSUER}/.well-known/jwks.json`)

    const res = await fetch(`${base}/.well-known/jwks.json`)
    t.equal(res.status, 200)
    t.equal(res.headers.get('cache-control'), 'public, max-age=300')
    const { keys: published } = await res.json() as { keys: Array<Record<string, string>> }
    t.equal(published.length, 1)
    const [jwk] = published
    t.match(jwk, { alg, use: 'sig', kid: /^[\w-]{43}$/ })
    for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) t.notOk(member in jwk!, `no private member ${member}`)

    const user = await createUser(app)
    const { access_token: token } = await login(app)
    t.same(decodeProtectedHeader(token), { alg, kid: jwk!.kid, typ: 'at+jwt' })
    const { payload, protectedHeader } = await verifyWithJwks(base, token, alg)
    t.equal(payload.sub, String(user.id))
    t.equal(protectedHeader.kid, jwk!.kid)
    t.equal((await me(app, token)).statusCode, 200)
  })
}

eachDialect(t, 'key rotation', async (t, dialect) => {
  const databaseUrl = await freshDatabase(t, dialect)
  const before = await build(t, dialect, { databaseUrl, env: signingEnv('ES256') })
  await createUser(before)
  const { access_token: oldToken } = await login(before)
  const oldKid = decodeProtectedHeader(oldToken).kid

  // The new key signs; the old public key moves to JWT_PREVIOUS_PUBLIC_KEYS. The algorithm may change too.
  const during = await build(t, dialect, { databaseUrl, env: signingEnv('EdDSA', ['ES256']) })
  const base = await listen(during)

  t.test('old tokens still verify, and new ones carry the new kid', async t => {
    t.equal((await me(during, oldToken)).statusCode, 200)
    const { access_token: newToken } = await login(during)
    const { kid: newKid, alg } = decodeProtectedHeader(newToken)
    t.equal(alg, 'EdDSA')
    t.not(newKid, oldKid)
    t.equal((await me(during, newToken)).statusCode, 200)

    const { keys: published } = await (await fetch(`${base}/.well-known/jwks.json`)).json() as { keys: Array<{ kid: string, alg: string }> }
    t.same(published.map(k => [k.kid, k.alg]), [[newKid, 'EdDSA'], [oldKid, 'ES256']], 'the current key first, then the retired one')
    await t.resolves(verifyWithJwks(base, oldToken, 'ES256'))
    await t.resolves(verifyWithJwks(base, newToken, 'EdDSA'))
  })

  t.test('a retired key verifies only its own algorithm', async t => {
    // An EdDSA signature by the current key, under the retired ES256 key's kid.
    const { access_token: newToken } = await login(during)
    const [, payload, signature] = newToken.split('.')
    const relabelled = `${b64({ alg: 'EdDSA', typ: 'at+jwt', kid: oldKid })}.${payload}.${signature}`
    t.equal((await me(during, relabelled)).statusCode, 401)
    const unknown = `${b64({ alg: 'EdDSA', typ: 'at+jwt', kid: 'not-a-key' })}.${payload}.${signature}`
    t.equal((await me(during, unknown)).statusCode, 401)
    const noKid = `${b64({ alg: 'EdDSA', typ: 'at+jwt' })}.${payload}.${signature}`
    t.equal((await me(during, noKid)).statusCode, 401)
  })

  t.test('once the old key is removed, its tokens are refused and it leaves the JWKS', async t => {
    const after = await build(t, dialect, { databaseUrl, env: signingEnv('EdDSA') })
    const res = await me(after, oldToken)
    t.equal(res.statusCode, 401)
    t.match(res.headers['www-authenticate'], /error="invalid_token"/)
    const { keys: published } = (await after.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json() as { keys: Array<{ kid: string }> }
    t.same(published.map(k => k.kid), [decodeProtectedHeader((await login(after)).access_token).kid])
  })
})

eachDialect(t, 'algorithm confusion: an RS256 service refuses an HS256 token keyed with its public key', async (t, dialect) => {
  const app = await build(t, dialect, { env: signingEnv('RS256') })
  const user = await createUser(app)
  const { access_token: genuine } = await login(app)
  const { kid } = decodeProtectedHeader(genuine)
  const { keys: [jwk] } = (await app.inject({ method: 'GET', url: '/.well-known/jwks.json' })).json()
  const now = Math.floor(testNow() / 1000)
  const claims = b64({ iss: ISSUER, aud: ISSUER, sub: String(user.id), iat: now, exp: now + 600, jti: 'forged' })

  // The classic attack: the public key, which anyone can fetch, used as an HMAC secret.
  const secrets = {
    'the PEM public key': keys.RS256.publicKey,
    'the PEM from the JWKS': createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' }).toString()
  }
  for (const [name, secret] of Object.entries(secrets)) {
    const header = b64({ alg: 'HS256', typ: 'at+jwt', kid })
    const signature = createHmac('sha256', secret).update(`${header}.${claims}`).digest('base64url')
    const forged = `${header}.${claims}.${signature}`
    const res = await me(app, forged)
    t.equal(res.statusCode, 401, name)
    t.match(res.headers['www-authenticate'], /error="invalid_token"/)
    const status = await app.inject({ method: 'GET', url: '/auth/status', headers: { authorization: `Bearer ${forged}` } })
    t.same(status.json(), { logged_in: false })
  }

  const unsigned = `${b64({ alg: 'none', typ: 'at+jwt', kid })}.${claims}.`
  t.equal((await me(app, unsigned)).statusCode, 401, 'alg none')
  t.equal((await me(app, genuine)).statusCode, 200, 'the genuine token passes')
})

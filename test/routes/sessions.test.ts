import { randomBytes } from 'node:crypto'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { decodeRefreshToken, encodeRefreshToken } from '../../src/accounts/refresh-token.js'
import { hashToken } from '../../src/accounts/email-tokens.js'
import { build, createUser, eachDialect, form, freshDatabase, login, testNow } from '../helper.js'

function refresh (app: FastifyInstance, refreshToken: string) {
  return app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'refresh_token', refresh_token: refreshToken }) })
}

function revoke (app: FastifyInstance, params: Record<string, string>) {
  return app.inject({ method: 'POST', url: '/revoke', ...form(params) })
}

async function meStatus (app: FastifyInstance, accessToken: string) {
  const res = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${accessToken}` } })
  return res.statusCode
}

async function loggedIn (app: FastifyInstance, accessToken: string) {
  const res = await app.inject({ method: 'GET', url: '/auth/status', headers: { authorization: `Bearer ${accessToken}` } })
  return res.json().logged_in as boolean
}

const INVALID = { error: 'invalid_grant', error_description: 'The refresh token is invalid, expired or revoked' }

eachDialect(t, 'sessions', async (t, dialect) => {
  let clock = testNow()
  const app = await build(t, dialect, { now: () => clock })
  await createUser(app)

  t.test('the password grant returns an opaque refresh token: its session, its generation, 256 random bits and a tag', async t => {
    const tokens = await login(app)
    t.match(tokens.refresh_token, /^[A-Za-z0-9_-]{91}$/)
    t.not(tokens.refresh_token, (await login(app)).refresh_token)
  })

  t.test('a refresh rotates: new tokens, and the old refresh token is retired', async t => {
    const first = await login(app)
    clock += 1000
    const res = await refresh(app, first.refresh_token!)
    t.equal(res.statusCode, 200)
    t.equal(res.headers['cache-control'], 'no-store')
    t.equal(res.headers.pragma, 'no-cache')
    const second = res.json()
    t.equal(second.token_type, 'Bearer')
    t.equal(second.expires_in, 900)
    t.not(second.refresh_token, first.refresh_token)
    t.not(second.access_token, first.access_token)
    t.equal(await meStatus(app, second.access_token), 200)

    t.test('presenting the retired token again revokes the family, the newest token included', async t => {
      const reuse = await refresh(app, first.refresh_token!)
      t.equal(reuse.statusCode, 400)
      t.same(reuse.json(), INVALID)
      t.same((await refresh(app, second.refresh_token)).json(), INVALID, 'the legitimate holder\'s newer token stops working too')
    })
  })

  t.test('twenty concurrent refreshes with one token: exactly one 200', async t => {
    const { refresh_token: token } = await login(app)
    const responses = await Promise.all(Array.from({ length: 20 }, () => refresh(app, token!)))
    const codes = responses.map(r => r.statusCode).sort()
    t.same(codes, [200, ...Array(19).fill(400)])
    for (const res of responses.filter(r => r.statusCode === 400)) t.same(res.json(), INVALID)
  })

  t.test('an expired refresh token is invalid_grant (injected clock, no sleeping)', async t => {
    const { refresh_token: token } = await login(app)
    clock += 30 * 86_400_000 - 1
    const almost = await refresh(app, token!)
    t.equal(almost.statusCode, 200, 'still valid one millisecond before expiry')
    clock += 30 * 86_400_000
    t.same((await refresh(app, almost.json().refresh_token)).json(), INVALID)
  })

  t.test('bad refresh requests', async t => {
    t.same((await refresh(app, 'not-a-token')).json(), INVALID)
    t.same((await refresh(app, '')).json(), { error: 'invalid_request', error_description: 'The refresh_token parameter is missing' })
    const missing = await app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'refresh_token' }) })
    t.same(missing.json(), { error: 'invalid_request', error_description: 'The refresh_token parameter is missing' })
  })

  t.test('what the tag and the secret decide: a guess at a session is refused, and ends nothing', async t => {
    const first = await login(app)
    const second = (await refresh(app, first.refresh_token!)).json()
    const third = (await refresh(app, second.refresh_token)).json()
    const issued = decodeRefreshToken(first.refresh_token!)!
    const forge = (generation: number, change: (bytes: Buffer) => void = () => {}) => {
      const bytes = Buffer.from(encodeRefreshToken(issued.sessionId, generation, randomBytes(32), randomBytes(32)), 'base64url')
      change(bytes)
      return bytes.toString('base64url')
    }
    // Someone who knows the session id (it is the access token's `sid`) but holds no token of it.
    for (const token of [forge(0), forge(1), forge(2), forge(3), forge(0xffffffff)]) {
      t.same((await refresh(app, token)).json(), INVALID)
      t.equal((await revoke(app, { token })).statusCode, 200)
    }
    const flipped = Buffer.from(third.refresh_token, 'base64url')
    flipped[30]! ^= 1
    t.same((await refresh(app, flipped.toString('base64url'))).json(), INVALID, 'a changed secret')
    t.equal(await meStatus(app, third.access_token), 200, 'none of them ended the session')
    const fourth = await refresh(app, third.refresh_token)
    t.equal(fourth.statusCode, 200, 'the holder of the current token refreshes as before')

    t.test('a token two rotations old is still a reuse: the session ends', async t => {
      t.same((await refresh(app, second.refresh_token)).json(), INVALID)
      t.equal(await meStatus(app, fourth.json().access_token), 401)
      t.same((await refresh(app, fourth.json().refresh_token)).json(), INVALID)
    })
  })

  t.test('a token of the format before migration 0008 rotates once into its session\'s chain', async t => {
    const tokens = await login(app)
    const sessionId = decodeRefreshToken(tokens.refresh_token!)!.sessionId
    const legacy = randomBytes(32).toString('base64url')
    await app.store.createRefreshToken({ hash: hashToken(legacy), userId: (await app.store.findUserByEmail('ada@example.com'))!.id, familyId: sessionId, createdAt: clock, expiresAt: clock + 86_400_000 })
    const rotated = await refresh(app, legacy)
    t.equal(rotated.statusCode, 200)
    const next = rotated.json()
    t.match(next.refresh_token, /^[A-Za-z0-9_-]{91}$/)
    t.same(decodeRefreshToken(next.refresh_token)!.sessionId, sessionId, 'in the same session')
    t.equal((await refresh(app, next.refresh_token)).statusCode, 200, 'its successor rotates')
    t.same((await refresh(app, legacy)).json(), INVALID, 'presented again: a reuse')
    t.equal(await meStatus(app, next.access_token), 401, 'which ends the session')
  })

  t.test('POST /revoke (RFC 7009)', async t => {
    const tokens = await login(app)
    const revoked = await revoke(app, { token: tokens.refresh_token!, token_type_hint: 'refresh_token' })
    t.equal(revoked.statusCode, 200)
    t.equal(revoked.body, '')
    t.same((await refresh(app, tokens.refresh_token!)).json(), INVALID)

    t.test('revoking a rotated token revokes its family', async t => {
      const first = await login(app)
      const second = (await refresh(app, first.refresh_token!)).json()
      t.equal((await revoke(app, { token: first.refresh_token! })).statusCode, 200)
      t.same((await refresh(app, second.refresh_token)).json(), INVALID)
    })

    t.test('any other token gets the same empty 200', async t => {
      const { access_token: accessToken } = await login(app)
      const cases: Array<Record<string, string>> = [
        { token: accessToken, token_type_hint: 'access_token' },
        { token: accessToken },
        { token: 'unknown-token' },
        { token: '%%%\u0000 malformed', token_type_hint: 'banana' }
      ]
      for (const params of cases) {
        const res = await revoke(app, params)
        t.equal(res.statusCode, 200, JSON.stringify(params))
        t.equal(res.body, '')
      }
    })

    t.test('without a token: invalid_request', async t => {
      const cases: Array<Record<string, string>> = [{}, { token: '' }, { token_type_hint: 'refresh_token' }]
      for (const params of cases) {
        const res = await revoke(app, params)
        t.equal(res.statusCode, 400)
        t.same(res.json(), { error: 'invalid_request', error_description: 'The token parameter is missing' })
      }
      const json = await app.inject({ method: 'POST', url: '/revoke', payload: { token: 'x' } })
      t.equal(json.statusCode, 415)
      t.equal(json.json().error, 'invalid_request')
    })
  })

  t.test('POST /logout ends every session; a login right after works', async t => {
    const a = await login(app)
    const b = await login(app)
    const res = await app.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${a.access_token}` } })
    t.equal(res.statusCode, 204)
    t.equal(res.body, '')
    for (const tokens of [a, b]) {
      t.equal(await meStatus(app, tokens.access_token), 401)
      t.equal(await loggedIn(app, tokens.access_token), false)
      t.same((await refresh(app, tokens.refresh_token!)).json(), INVALID)
    }
    const after = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${a.access_token}` } })
    t.match(after.headers['www-authenticate'], /error="invalid_token", error_description="The session has ended"/)

    // Same millisecond as the logout (the clock has not moved): the new token must work.
    const fresh = await login(app)
    t.equal(await meStatus(app, fresh.access_token), 200)
    t.equal(await loggedIn(app, fresh.access_token), true)
    t.equal((await refresh(app, fresh.refresh_token!)).statusCode, 200)
  })

  t.test('POST /logout needs a login', async t => {
    const res = await app.inject({ method: 'POST', url: '/logout' })
    t.equal(res.statusCode, 401)
    t.equal(res.headers['www-authenticate'], 'Bearer realm="auth-service"')
  })
})

eachDialect(t, 'two instances on one database see a logout at once', async (t, dialect) => {
  const databaseUrl = await freshDatabase(t, dialect)
  const one = await build(t, dialect, { databaseUrl })
  const two = await build(t, dialect, { databaseUrl })
  await createUser(one)
  const tokens = await login(two)
  t.equal(await meStatus(one, tokens.access_token), 200)
  t.equal(await meStatus(two, tokens.access_token), 200)

  const res = await one.inject({ method: 'POST', url: '/logout', headers: { authorization: `Bearer ${tokens.access_token}` } })
  t.equal(res.statusCode, 204)
  t.equal(await meStatus(two, tokens.access_token), 401)
  t.equal(await loggedIn(two, tokens.access_token), false)
  t.same((await refresh(two, tokens.refresh_token!)).json(), INVALID)
  const again = await login(two)
  t.equal(await meStatus(one, again.access_token), 200)
})

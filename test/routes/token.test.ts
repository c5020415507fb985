import t from 'tap'
import { build, createUser, eachDialect, form, freshDatabase, login, PASSWORD, testNow } from '../helper.js'

function decode (token: string) {
  const [header, payload] = token.split('.').slice(0, 2).map(part => JSON.parse(Buffer.from(part, 'base64url').toString()))
  return { header, payload }
}

eachDialect(t, 'POST /token', async (t, dialect) => {
  const now = Math.floor(testNow() / 1000) * 1000 + 250
  const app = await build(t, dialect, { now: () => now })
  const user = await createUser(app)

  t.test('the password grant returns a bearer token (RFC 6749 §5.1)', async t => {
    const res = await app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'password', username: ' ADA@example.com', password: PASSWORD }) })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['cache-control'], 'no-store')
    t.equal(res.headers.pragma, 'no-cache')
    t.match(res.headers['content-type'], /^application\/json/)
    const body = res.json()
    t.equal(body.token_type, 'Bearer')
    t.equal(body.expires_in, 900)
    t.notOk('scope' in body)

    const { header, payload } = decode(body.access_token)
    t.same(Object.keys(header).sort(), ['alg', 'kid', 'typ'])
    t.equal(header.alg, 'HS256')
    t.equal(header.typ, 'at+jwt')
    t.type(header.kid, 'string')
    t.same(Object.keys(payload).sort(), ['aud', 'exp', 'iat', 'iss', 'jti', 'sid', 'sub'])
    t.equal(payload.iss, 'http://auth.test')
    t.equal(payload.aud, 'http://auth.test')
    t.equal(payload.sub, String(user.id))
    t.equal(payload.iat, Math.floor(now / 1000), 'iat comes from the injected clock')
    t.equal(payload.exp, payload.iat + 900)
    t.match(payload.jti, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
    t.match(payload.sid, /^[A-Za-z0-9_-]{22}$/, 'the session, as GET /users/me/sessions names it')
  })

  t.test('each token has its own jti', async t => {
    const a = decode((await login(app)).access_token).payload.jti
    const b = decode((await login(app)).access_token).payload.jti
    t.not(a, b)
  })

  t.test('an unknown email and a wrong password get the same answer', async t => {
    const wrong = await app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'password', username: 'ada@example.com', password: 'wrong password' }) })
    const unknown = await app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'password', username: 'nobody@example.com', password: 'wrong password' }) })
    for (const res of [wrong, unknown]) {
      t.equal(res.statusCode, 400)
      t.match(res.headers['content-type'], /^application\/json/)
      t.same(res.json(), { error: 'invalid_grant', error_description: 'The username or password is incorrect' })
    }
    t.equal(wrong.body, unknown.body)
  })

  t.test('a password longer than the policy allows is refused without hashing', async t => {
    const res = await app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'password', username: 'ada@example.com', password: 'x'.repeat(129) }) })
    t.same(res.json(), { error: 'invalid_grant', error_description: 'The username or password is incorrect' })
  })

  t.test('missing, empty and repeated parameters are invalid_request', async t => {
    const cases: Array<[string, string]> = [
      ['', 'The grant_type parameter is missing'],
      ['grant_type=', 'The grant_type parameter is missing'],
      ['grant_type=password&password=x', 'The username parameter is missing'],
      ['grant_type=password&username=&password=x', 'The username parameter is missing'],
      ['grant_type=password&username=ada%40example.com', 'The password parameter is missing'],
      ['grant_type=password&username=ada%40example.com&password=', 'The password parameter is missing'],
      ['grant_type=password&grant_type=password&username=ada%40example.com&password=x', 'The grant_type parameter is repeated'],
      ['grant_type=password&username=a%40b.io&username=ada%40example.com&password=x', 'The username parameter is repeated']
    ]
    for (const [payload, description] of cases) {
      const res = await app.inject({ method: 'POST', url: '/token', payload, headers: { 'content-type': 'application/x-www-form-urlencoded' } })
      t.equal(res.statusCode, 400, payload)
      t.same(res.json(), { error: 'invalid_request', error_description: description }, payload)
    }
  })

  t.test('an unknown grant type is unsupported_grant_type', async t => {
    for (const grant of ['client_credentials', 'authorization_code', 'PASSWORD']) {
      const res = await app.inject({ method: 'POST', url: '/token', ...form({ grant_type: grant }) })
      t.equal(res.statusCode, 400)
      t.equal(res.json().error, 'unsupported_grant_type')
    }
  })

  t.test('scope: empty counts as absent, anything else is invalid_scope', async t => {
    const empty = await app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'password', username: 'ada@example.com', password: PASSWORD, scope: '' }) })
    t.equal(empty.statusCode, 200)
    t.notOk('scope' in empty.json())
    const some = await app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'password', username: 'ada@example.com', password: PASSWORD, scope: 'admin' }) })
    t.equal(some.statusCode, 400)
    t.equal(some.json().error, 'invalid_scope')
  })

  t.test('client_id and unknown parameters are ignored', async t => {
    const res = await app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'password', username: 'ada@example.com', password: PASSWORD, client_id: 'cli', extra: '1' }) })
    t.equal(res.statusCode, 200)
  })

  t.test('other content types and oversized bodies keep their status with an OAuth body', async t => {
    const json = await app.inject({ method: 'POST', url: '/token', payload: { grant_type: 'password' } })
    t.equal(json.statusCode, 415)
    t.match(json.headers['content-type'], /^application\/json/)
    t.equal(json.json().error, 'invalid_request')
    const big = await app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'password', username: 'ada@example.com', password: 'x'.repeat(17 * 1024) }) })
    t.equal(big.statusCode, 413)
    t.same(Object.keys(big.json()).sort(), ['error', 'error_description'])
    t.equal(big.json().error, 'invalid_request')
  })

  t.test('a composed and a decomposed password are the same password', async t => {
    await createUser(app, 'jose@example.com', 'Jos\u00e9 Jos\u00e9 Jos\u00e9')
    const res = await app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'password', username: 'jose@example.com', password: 'Jose\u0301 Jose\u0301 Jose\u0301' }) })
    t.equal(res.statusCode, 200)
  })
})

eachDialect(t, 'a disabled account: the password grant says so after the right password only, and its sessions are over', async (t, dialect) => {
  const app = await build(t, dialect)
  const { id } = await createUser(app)
  const tokens = await login(app)
  const attempt = (password: string) => app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'password', username: 'ada@example.com', password }) })

  t.equal(await app.store.disableUser(id, app.now()), true)
  t.equal(await app.store.disableUser(id, app.now()), false, 'once')
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${tokens.access_token}` } })).statusCode, 401)
  t.equal((await app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token! }) })).statusCode, 400)
  t.same((await attempt(PASSWORD)).json(), { error: 'invalid_grant', error_description: 'The account is disabled' })
  t.same((await attempt('wrong')).json(), { error: 'invalid_grant', error_description: 'The username or password is incorrect' })
  t.same((await app.store.listSessions(id, app.now())).length, 0, 'no session was started')

  t.equal(await app.store.enableUser(id), true)
  t.equal(await app.store.enableUser(id), false, 'once')
  t.equal((await login(app)).token_type, 'Bearer')
})

eachDialect(t, 'a hash made at an older cost is upgraded at login', async (t, dialect) => {
  const databaseUrl = await freshDatabase(t, dialect)
  const cheap = await build(t, dialect, { databaseUrl })
  await createUser(cheap)
  const before = (await cheap.store.findUserByEmail('ada@example.com'))!.passwordHash
  t.match(before, /^\$argon2id\$v=19\$m=1024,p=1,t=1\$/)

  const dearer = await build(t, dialect, { databaseUrl, env: { ARGON2_MEMORY_KIB: '2048', ARGON2_ITERATIONS: '2' } })
  await login(dearer)
  const after = (await dearer.store.findUserByEmail('ada@example.com'))!.passwordHash
  t.match(after, /^\$argon2id\$v=19\$m=2048,p=1,t=2\$/)
  t.not(after, before)
  await login(dearer)
  t.equal((await dearer.store.findUserByEmail('ada@example.com'))!.passwordHash, after, 'a current hash is left alone')
  await login(cheap)
})

eachDialect(t, 'a login that read the account before it was disabled starts no session', async (t, dialect) => {
  const app = await build(t, dialect)
  const { id } = await createUser(app)
  const user = (await app.store.findUserById(id))!
  await app.store.disableUser(id, app.now())
  // What the password grant does next with the user it read: the session is refused.
  await t.rejects(app.sessions.start(user, { ip: '127.0.0.1', headers: {} } as never), { message: 'The username or password is incorrect' })
  t.same(await app.store.listSessions(id, app.now()), [])
})

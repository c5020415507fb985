import t from 'tap'
import { build, createUser, eachDialect, PASSWORD } from '../helper.js'

eachDialect(t, 'POST /users', async (t, dialect) => {
  const app = await build(t, dialect)

  t.test('creates an account with a normalised email', async t => {
    const res = await app.inject({ method: 'POST', url: '/users', payload: { email: '  Ada.Lovelace@Example.COM ', password: PASSWORD } })
    t.equal(res.statusCode, 201)
    t.equal(res.headers.location, '/users/me')
    t.match(res.headers['content-type'], /^application\/json/)
    const body = res.json()
    t.same(Object.keys(body).sort(), ['created_at', 'email', 'id'])
    t.equal(body.email, 'ada.lovelace@example.com')
    t.ok(Number.isInteger(body.id) && body.id > 0)
    t.match(body.created_at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
  })

  t.test('the same address in another case is the same account', async t => {
    const res = await app.inject({ method: 'POST', url: '/users', payload: { email: 'ADA.LOVELACE@example.com', password: PASSWORD } })
    t.equal(res.statusCode, 409)
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    t.same(res.json(), { type: 'about:blank', title: 'Conflict', status: 409, detail: 'An account with this email already exists' })
  })

  t.test('refuses bad input with a problem listing each field', async t => {
    const cases: Array<[unknown, string[]]> = [
      [{ email: 'not-an-email', password: PASSWORD }, ['email']],
      [{ email: 'a@b.io', password: 'short' }, ['password']],
      [{ email: 'a@b.io', password: 'x'.repeat(129) }, ['password']],
      [{ email: `${'a'.repeat(250)}@b.io`, password: PASSWORD }, ['email']],
      [{ email: 'a@b.io' }, ['password']],
      [{ password: PASSWORD }, ['email']],
      [{ email: 'a@b.io', password: PASSWORD, admin: true }, ['admin']],
      [{ email: 42, password: 12345678 }, ['email', 'password']],
      [[], ['body']],
      ['"a string"', ['body']]
    ]
    for (const [payload, fields] of cases) {
      const res = await app.inject({ method: 'POST', url: '/users', payload: typeof payload === 'string' ? payload : payload as object, headers: { 'content-type': 'application/json' } })
      t.equal(res.statusCode, 400, JSON.stringify(payload))
      const body = res.json()
      t.equal(body.status, 400)
      t.equal(body.title, 'Bad Request')
      t.same(body.errors.map((e: { field: string }) => e.field).sort(), fields, JSON.stringify(payload))
      for (const e of body.errors) t.type(e.message, 'string')
    }
  })

  t.test('counts password length in code points after NFC normalisation', async t => {
    // Eight decomposed "é" (e + combining accent) are 16 code units but 8 code points after NFC.
    const decomposed = 'e\u0301'.repeat(8)
    const ok = await app.inject({ method: 'POST', url: '/users', payload: { email: 'nfc@example.com', password: decomposed } })
    t.equal(ok.statusCode, 201)
    // 128 astral characters are 256 UTF-16 code units and still within the limit.
    const astral = '😀'.repeat(128)
    t.equal((await app.inject({ method: 'POST', url: '/users', payload: { email: 'astral@example.com', password: astral } })).statusCode, 201)
    t.equal((await app.inject({ method: 'POST', url: '/users', payload: { email: 'astral2@example.com', password: astral + 'x' } })).statusCode, 400)
    // Spaces are part of the password, never trimmed: seven letters and a space are eight.
    t.equal((await app.inject({ method: 'POST', url: '/users', payload: { email: 'space@example.com', password: ' abcdefg' } })).statusCode, 201)
  })

  t.test('takes JSON only', async t => {
    const res = await app.inject({ method: 'POST', url: '/users', payload: 'email=a%40b.io&password=12345678', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
    t.equal(res.statusCode, 415)
    t.equal(res.json().status, 415)
    const text = await app.inject({ method: 'POST', url: '/users', payload: 'hello', headers: { 'content-type': 'text/plain' } })
    t.equal(text.statusCode, 415)
    t.match(text.headers['content-type'], /^application\/problem\+json/)
  })

  t.test('refuses malformed JSON and bodies over 16 KiB', async t => {
    const bad = await app.inject({ method: 'POST', url: '/users', payload: '{"email": ', headers: { 'content-type': 'application/json' } })
    t.equal(bad.statusCode, 400)
    t.same(bad.json(), { type: 'about:blank', title: 'Bad Request', status: 400, detail: 'The request body is not valid JSON' })
    const big = await app.inject({ method: 'POST', url: '/users', payload: { email: 'a@b.io', password: 'x'.repeat(17 * 1024) } })
    t.equal(big.statusCode, 413)
    t.equal(big.json().status, 413)
  })

  t.test('twenty concurrent signups for one email create exactly one account', async t => {
    const responses = await Promise.all(Array.from({ length: 20 }, () =>
      app.inject({ method: 'POST', url: '/users', payload: { email: 'race@example.com', password: PASSWORD } })))
    const codes = responses.map(r => r.statusCode).sort()
    t.same(codes, [201, ...Array(19).fill(409)])
  })

  t.test('never returns the password or its hash', async t => {
    const user = await createUser(app, 'secret@example.com')
    t.notOk(JSON.stringify(user).includes('argon2'))
    t.notOk(JSON.stringify(user).includes(PASSWORD))
  })
})

eachDialect(t, 'common passwords are refused at signup', async (t, dialect) => {
  const app = await build(t, dialect)
  for (const password of ['password', '12345678', 'Password1', 'qwertyuiop', 'FOOTBALL']) {
    const res = await app.inject({ method: 'POST', url: '/users', payload: { email: 'ada@example.com', password } })
    t.equal(res.statusCode, 400, password)
    t.same(res.json().errors, [{ field: 'password', message: 'is too common: it appears on lists of breached passwords' }])
  }
  const res = await app.inject({ method: 'POST', url: '/users', payload: { email: 'ada@example.com', password: 'plumbing-otter-42' } })
  t.equal(res.statusCode, 201, 'a password off the list passes')
})

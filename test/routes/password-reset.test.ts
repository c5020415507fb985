import { createHash } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../../src/app.js'
import { openSqlite } from '../../src/store/sqlite.js'
import type { SqliteValue } from '../../src/store/sqlite-driver.js'
import { build, createUser, eachDialect, form, freshDatabase, login, PASSWORD, testConfig, testNow } from '../helper.js'
import { linkIn, smtpServer, subjectIs, type Inbox } from '../smtp.js'

const NEW_PASSWORD = 'a brand new passphrase 42'
const INVALID_TOKEN = 'The reset token is invalid, expired or already used; ask for a new one'
const RESET = subjectIs('Reset your password')

function requestReset (app: FastifyInstance, email: string, remoteAddress = '127.0.0.1') {
  return app.inject({ method: 'POST', url: '/password-reset', payload: { email }, remoteAddress })
}

function confirm (app: FastifyInstance, token: string, newPassword = NEW_PASSWORD) {
  return app.inject({ method: 'POST', url: '/password-reset/confirm', payload: { token, new_password: newPassword } })
}

/** Asks for a reset and reads the token from the link in the email that arrives. */
async function resetToken (app: FastifyInstance, inbox: Inbox, email = 'ada@example.com') {
  const res = await requestReset(app, email)
  if (res.statusCode !== 202) throw new Error(`reset request: ${res.statusCode} ${res.body}`)
  await app.mail.flush()
  return linkIn(await inbox.next(mail => RESET(mail) && mail.to !== undefined && JSON.stringify(mail.to).includes(email))).token
}

function refresh (app: FastifyInstance, refreshToken: string) {
  return app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'refresh_token', refresh_token: refreshToken }) })
}

eachDialect(t, 'forgot password, through a real SMTP server', async (t, dialect) => {
  const clock = testNow()
  const inbox = await smtpServer(t)
  const app = await build(t, dialect, { env: { SMTP_URL: inbox.url }, now: () => clock })
  const user = await createUser(app)
  const session = await login(app)

  const res = await requestReset(app, ' Ada@Example.com ')
  t.equal(res.statusCode, 202)
  t.equal(res.body, '', 'an empty body')
  await app.mail.flush()
  const mail = await inbox.next(RESET)
  t.match(mail.to, { text: 'ada@example.com' })
  t.match(mail.from, { text: 'auth@localhost' })
  const { link, token } = linkIn(mail)
  t.match(link, /^http:\/\/auth\.test\/reset-password\?token=[A-Za-z0-9_-]{43}$/, 'the default link: PUBLIC_URL/reset-password, 256 bits')
  t.ok(typeof mail.html === 'string' && mail.html.includes(`href="${link}"`), 'the HTML part carries the same link')
  t.notMatch(mail.html, /<script/i)

  t.test('the token is kept only as its SHA-256, and the sent email is gone from the outbox', async t => {
    const hash = createHash('sha256').update(token).digest()
    const [found] = await tokensWithHash(app, hash)
    t.equal(found, 1, 'the hash is stored')
    t.equal(await outboxSize(app), 0, 'no message waits with the link')
  })

  const done = await confirm(app, token)
  t.equal(done.statusCode, 204)
  t.equal(done.body, '')

  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${session.access_token}` } })).statusCode, 401,
    'the access token from before the reset is refused')
  const refreshed = await refresh(app, session.refresh_token!)
  t.equal(refreshed.statusCode, 400, 'the refresh token from before the reset is revoked')
  t.equal(refreshed.json().error, 'invalid_grant')
  await t.rejects(login(app), 'the old password no longer works')
  const fresh = await login(app, 'ada@example.com', NEW_PASSWORD)
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${fresh.access_token}` } })).statusCode, 200,
    'the new password logs in')

  const again = await confirm(app, token, 'yet another passphrase 7')
  t.equal(again.statusCode, 400, 'the token is spent')
  t.equal(again.json().detail, INVALID_TOKEN)

  const types = (await app.securityEvents.recent(user.id)).map(e => e.type)
  t.ok(types.includes('password_reset_requested'), 'the request is in the account\'s security events')
  t.ok(types.includes('password_reset'), 'and so is the reset')
})

async function tokensWithHash (app: FastifyInstance, hash: Buffer): Promise<number[]> {
  if (app.store.dialect === 'mysql') {
    const [rows] = await app.mysql.query('SELECT COUNT(*) AS n FROM account_tokens WHERE token_hash = ?', [hash])
    return [Number((rows as Array<{ n: number }>)[0]!.n)]
  }
  return [await sqliteCount(app, 'SELECT COUNT(*) AS n FROM account_tokens WHERE token_hash = ?', hash)]
}

async function outboxSize (app: FastifyInstance): Promise<number> {
  if (app.store.dialect === 'mysql') {
    const [rows] = await app.mysql.query('SELECT COUNT(*) AS n FROM outbox')
    return Number((rows as Array<{ n: number }>)[0]!.n)
  }
  return sqliteCount(app, 'SELECT COUNT(*) AS n FROM outbox')
}

async function sqliteCount (app: FastifyInstance, sql: string, ...params: SqliteValue[]): Promise<number> {
  // The project's own driver: better-sqlite3 aborts on Node 24 when a statement is collected.
  const db = openSqlite(app.config.database.kind === 'sqlite' ? app.config.database.path : '')
  try {
    return (db.prepare(sql).get(...params) as { n: number }).n
  } finally {
    db.close()
  }
}

eachDialect(t, 'a bad token gets one answer: unknown, expired, spent or superseded', async (t, dialect) => {
  let clock = testNow()
  const inbox = await smtpServer(t)
  const app = await build(t, dialect, { env: { SMTP_URL: inbox.url }, now: () => clock })
  await createUser(app)
  const answers: Array<{ status: number, body: unknown }> = []
  const record = async (token: string) => {
    const res = await confirm(app, token)
    answers.push({ status: res.statusCode, body: res.json() })
  }

  await record('an-unknown-token-that-was-never-issued-0000000')

  const expired = await resetToken(app, inbox)
  clock += 1800 * 1000 + 1
  await record(expired)

  const spent = await resetToken(app, inbox)
  t.equal((await confirm(app, spent)).statusCode, 204)
  await record(spent)

  clock += 3600 * 1000 // past the hourly limit
  const superseded = await resetToken(app, inbox)
  const newer = await resetToken(app, inbox)
  await record(superseded)

  t.equal(answers.length, 4)
  for (const answer of answers) {
    t.same(answer, { status: 400, body: { type: 'about:blank', title: 'Bad Request', status: 400, detail: INVALID_TOKEN } })
  }

  t.test('a token that is not live costs no password hash', async t => {
    const { passwords } = app
    const hash = passwords.hash
    let hashed = 0
    passwords.hash = async password => { hashed++; return hash(password) }
    t.teardown(() => { passwords.hash = hash })
    for (const token of ['an-unknown-token-that-was-never-issued-0000000', expired, spent, superseded]) await record(token)
    t.equal(hashed, 0)
  })

  t.test('a new password outside the policy: 400 with errors, and the token stays usable', async t => {
    const short = await confirm(app, newer, 'short')
    t.equal(short.statusCode, 400)
    t.match(short.json().errors, [{ field: 'new_password' }])
    const common = await confirm(app, newer, 'password1234')
    t.equal(common.statusCode, 400)
    t.match(common.json().errors, [{ field: 'new_password', message: /too common/ }])
    t.equal((await confirm(app, newer)).statusCode, 204, 'the newest token still works')
  })

  t.test('malformed requests', async t => {
    const bad = await requestReset(app, 'not-an-email')
    t.equal(bad.statusCode, 400)
    t.match(bad.json(), { status: 400, errors: [{ field: 'email', message: 'must be an email address' }] })
    t.equal((await app.inject({ method: 'POST', url: '/password-reset', payload: {} })).statusCode, 400)
    t.equal((await app.inject({ method: 'POST', url: '/password-reset/confirm', payload: { token: 'x' } })).statusCode, 400)
    const form415 = await app.inject({ method: 'POST', url: '/password-reset', ...form({ email: 'ada@example.com' }) })
    t.equal(form415.statusCode, 415)
  })
})

eachDialect(t, 'two concurrent confirmations of one token: exactly one 204', async (t, dialect) => {
  const inbox = await smtpServer(t)
  const databaseUrl = await freshDatabase(t, dialect)
  const one = await build(t, dialect, { databaseUrl, env: { SMTP_URL: inbox.url } })
  const two = await build(t, dialect, { databaseUrl, env: { SMTP_URL: inbox.url } })
  await createUser(one)
  const token = await resetToken(one, inbox)
  const results = await Promise.all([
    confirm(one, token, 'first concurrent passphrase'),
    confirm(two, token, 'second concurrent passphrase'),
    confirm(one, token, 'third concurrent passphrase')
  ])
  t.same(results.map(r => r.statusCode).sort(), [204, 400, 400])
  const winner = ['first', 'second', 'third'][results.findIndex(r => r.statusCode === 204)]!
  t.ok(await login(one, 'ada@example.com', `${winner} concurrent passphrase`), 'the password is the one of the 204')
})

eachDialect(t, 'a reset clears the lockout', async (t, dialect) => {
  const inbox = await smtpServer(t)
  const app = await build(t, dialect, { env: { SMTP_URL: inbox.url, LOGIN_LIMIT_PER_ACCOUNT: '3' } })
  await createUser(app)
  for (let i = 0; i < 3; i++) {
    await app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'password', username: 'ada@example.com', password: 'wrong guess' }) })
  }
  const locked = await app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'password', username: 'ada@example.com', password: PASSWORD }) })
  t.equal(locked.statusCode, 429, 'locked, the right password included')

  t.equal((await confirm(app, await resetToken(app, inbox))).statusCode, 204, 'a locked-out person can reset')
  t.ok(await login(app, 'ada@example.com', NEW_PASSWORD), 'and log in at once')
})

eachDialect(t, 'the hourly limit: at most PASSWORD_RESET_LIMIT emails, every request 202', async (t, dialect) => {
  let clock = testNow()
  const inbox = await smtpServer(t)
  const app = await build(t, dialect, { env: { SMTP_URL: inbox.url, PASSWORD_RESET_LIMIT: '3' }, now: () => clock })
  await createUser(app)
  for (let i = 0; i < 6; i++) {
    const res = await requestReset(app, 'ada@example.com')
    t.equal(res.statusCode, 202)
    t.equal(res.body, '')
    clock += 60_000
  }
  await app.mail.flush()
  await inbox.next(subjectIs('Verify your email address'))
  const resets = () => inbox.messages.filter(RESET).length
  t.equal(resets(), 3, 'three emails, not six')

  clock += 3600 * 1000
  t.equal((await requestReset(app, 'ada@example.com')).statusCode, 202)
  await app.mail.flush()
  t.equal(resets(), 4, 'an hour later the account may get another')
})

eachDialect(t, 'the address limit applies: 429 past LOGIN_LIMIT_PER_ADDRESS requests', async (t, dialect) => {
  const inbox = await smtpServer(t)
  const app = await build(t, dialect, { env: { SMTP_URL: inbox.url, LOGIN_LIMIT_PER_ADDRESS: '3', LOGIN_LIMIT_WINDOW: '600' } })
  for (let i = 0; i < 3; i++) t.equal((await requestReset(app, `user${i}@example.com`, '10.0.0.7')).statusCode, 202)
  const refused = await requestReset(app, 'user9@example.com', '10.0.0.7')
  t.equal(refused.statusCode, 429)
  t.match(refused.headers['content-type'], /^application\/problem\+json/)
  t.equal(refused.headers['retry-after'], '600')
  t.equal((await requestReset(app, 'user9@example.com', '10.0.0.8')).statusCode, 202, 'another address is unaffected')
})

eachDialect(t, 'known and unknown emails answer alike: status, headers, body and time', async (t, dialect) => {
  const inbox = await smtpServer(t)
  // A high limit, so the known account gets a token (the full work) on every request.
  const app = await build(t, dialect, { env: { SMTP_URL: inbox.url, PASSWORD_RESET_LIMIT: '100', LOGIN_LIMIT_PER_ADDRESS: '100000' } })
  await createUser(app)
  const known = await requestReset(app, 'ada@example.com')
  const unknown = await requestReset(app, 'nobody@example.com')
  const strip = (headers: Record<string, unknown>) => {
    const { 'x-request-id': _id, date: _date, ...rest } = headers
    return rest
  }
  t.same([unknown.statusCode, unknown.body, strip(unknown.headers)], [known.statusCode, known.body, strip(known.headers)])

  // Over a real socket, as a client measures it, with the requests of both kinds interleaved.
  await app.listen({ port: 0, host: '127.0.0.1' })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}/password-reset`
  const post = (email: string) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email }) })
  for (let i = 0; i < 10; i++) await post(`warm${i}@example.com`)
  const samples: Record<'known' | 'unknown', number[]> = { known: [], unknown: [] }
  const ROUNDS = 100
  for (let i = 0; i < ROUNDS; i++) {
    const order: Array<['known' | 'unknown', string]> = [['known', 'ada@example.com'], ['unknown', `nobody${i}@example.com`]]
    if (i % 2 === 1) order.reverse()
    for (const [kind, email] of order) {
      const start = process.hrtime.bigint()
      const res = await post(email)
      await res.arrayBuffer()
      samples[kind].push(Number(process.hrtime.bigint() - start) / 1e6)
      if (res.status !== 202) throw new Error(`${res.status}`)
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const spread = (xs: number[]) => {
    const sorted = [...xs].sort((a, b) => a - b)
    return sorted[Math.floor(xs.length * 0.75)]! - sorted[Math.floor(xs.length * 0.25)]!
  }
  const k = median(samples.known)
  const u = median(samples.unknown)
  const noise = Math.max(spread(samples.known), spread(samples.unknown))
  t.comment(`[${dialect}] median ms: known ${k.toFixed(3)}, unknown ${u.toFixed(3)}, difference ${(k - u).toFixed(3)}; interquartile range ${noise.toFixed(3)}`)
  t.ok(Math.abs(k - u) <= Math.max(noise, 0.5), `the medians differ by no more than the noise (${Math.abs(k - u).toFixed(3)} ms ≤ ${Math.max(noise, 0.5).toFixed(3)} ms)`)
})

eachDialect(t, 'with SMTP_URL no log line holds a reset or verification token, nor the new password', async (t, dialect) => {
  const lines: string[] = []
  const logStream = new Writable({
    write (chunk, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter(Boolean))
      callback()
    }
  })
  const inbox = await smtpServer(t)
  const app = await buildApp({ config: testConfig(await freshDatabase(t, dialect), { LOG_LEVEL: 'trace', SMTP_URL: inbox.url }), now: testNow, logStream })
  t.teardown(() => app.close())
  await app.ready()

  await createUser(app)
  await app.mail.flush()
  const verification = linkIn(await inbox.next(subjectIs('Verify your email address'))).token
  const reset = await resetToken(app, inbox)
  t.equal((await confirm(app, reset)).statusCode, 204)
  t.equal((await app.inject({ method: 'POST', url: '/email-verification/confirm', payload: { token: verification } })).statusCode, 204)
  t.equal((await confirm(app, reset)).statusCode, 400, 'a refused token is logged about too')

  const log = lines.join('\n')
  t.ok(lines.some(l => l.includes('"msg":"email sent"')), 'the sender logs what it sends')
  t.notOk(log.includes(reset), 'no reset token')
  t.notOk(log.includes(verification), 'no verification token')
  t.notOk(log.includes(NEW_PASSWORD), 'no new password')
  t.notOk(log.includes(inbox.url.split('@')[0]!.split(':').at(-1)!), 'no SMTP password')
})

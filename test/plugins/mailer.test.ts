import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import t from 'tap'
import { simpleParser } from 'mailparser'
import { backoff } from '../../plugins/mailer.js'
import { buildApp } from '../../src/app.js'
import { build, createUser, eachDialect, freshDatabase, login, testConfig, testNow } from '../helper.js'
import { linkIn, smtpServer, subjectIs } from '../smtp.js'

function message (i: number) {
  return { to: `person${i}@example.com`, subject: `Notice ${i}`, text: `Plain text ${i}`, html: `<p>HTML ${i}</p>` }
}

t.test('backoff doubles from 10 s and is capped at 15 minutes', async t => {
  t.same([1, 2, 3, 4, 7, 8, 20].map(backoff), [10_000, 20_000, 40_000, 80_000, 640_000, 900_000, 900_000])
})

eachDialect(t, 'an SMTP outage loses nothing and sends nothing twice', async (t, dialect) => {
  let clock = testNow()
  const inbox = await smtpServer(t)
  const app = await build(t, dialect, { env: { SMTP_URL: inbox.url }, now: () => clock })

  await app.mail.enqueue(message(1))
  await app.mail.flush()
  t.equal((await inbox.next(subjectIs('Notice 1'))).text?.trim(), 'Plain text 1', 'delivered while the server is up')

  await inbox.stop()
  const started = process.hrtime.bigint()
  await app.mail.enqueue(message(2))
  const signup = await app.inject({ method: 'POST', url: '/users', payload: { email: 'ada@example.com', password: 'correct horse battery staple' } })
  t.equal(signup.statusCode, 201, 'a request that sends mail is answered while SMTP is down')
  t.ok(Number(process.hrtime.bigint() - started) / 1e6 < 2000, 'and without waiting on it')
  await app.mail.flush()
  t.equal(inbox.messages.length, 1, 'nothing got through')

  await inbox.start()
  await app.mail.flush()
  t.equal(inbox.messages.length, 1, 'not tried again before its backoff has passed')
  clock += backoff(1)
  await app.mail.flush()
  await inbox.next(subjectIs('Notice 2'))
  await inbox.next(subjectIs('Verify your email address'))

  clock += 3600_000
  await app.mail.flush()
  await app.mail.flush()
  t.same(inbox.messages.map(m => m.subject).sort(), ['Notice 1', 'Notice 2', 'Verify your email address'], 'each message exactly once')
})

eachDialect(t, 'two instances sending from one outbox never send a message twice', async (t, dialect) => {
  const inbox = await smtpServer(t)
  const databaseUrl = await freshDatabase(t, dialect)
  const one = await build(t, dialect, { databaseUrl, env: { SMTP_URL: inbox.url } })
  const two = await build(t, dialect, { databaseUrl, env: { SMTP_URL: inbox.url } })
  const COUNT = 40
  await Promise.all(Array.from({ length: COUNT }, (_, i) => (i % 2 === 0 ? one : two).mail.enqueue(message(i))))
  // Both loops, and extra passes on each, race for the same rows.
  await Promise.all([one.mail.flush(), two.mail.flush(), one.mail.flush(), two.mail.flush()])
  await Promise.all([one.mail.flush(), two.mail.flush()])
  const subjects = inbox.messages.map(m => m.subject!)
  t.equal(subjects.length, COUNT, 'every message was sent')
  t.equal(new Set(subjects).size, COUNT, 'none twice')
})

eachDialect(t, 'a message the SMTP server refuses for good (5xx) is dropped, not retried', async (t, dialect) => {
  let clock = testNow()
  const inbox = await smtpServer(t, { reject: to => to.startsWith('gone') })
  const app = await build(t, dialect, { env: { SMTP_URL: inbox.url }, now: () => clock })
  await app.mail.enqueue({ ...message(1), to: 'gone@example.com' })
  await app.mail.enqueue(message(2))
  await app.mail.flush()
  await inbox.next(subjectIs('Notice 2'))
  clock += 3600_000
  await app.mail.flush()
  t.same(inbox.messages.map(m => m.subject), ['Notice 2'])
})

t.test('without SMTP_URL in development: .eml files in the outbox, and the link in the log', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-outbox-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const lines: string[] = []
  const logStream = new PassThrough()
  logStream.on('data', chunk => lines.push(...String(chunk).split('\n').filter(Boolean)))
  const config = testConfig(`sqlite:${join(dir, 'auth.db')}`, { LOG_LEVEL: 'info', NODE_ENV: 'development', MAIL_OUTBOX_DIR: '' })
  t.equal(config.mail.outboxDir, join(dir, 'outbox'), 'the outbox is beside the SQLite data')
  const app = await buildApp({ config, now: testNow, logStream })
  t.teardown(() => app.close())
  await app.ready()
  t.equal(app.mail.available, true)

  await createUser(app)
  t.equal((await app.inject({ method: 'POST', url: '/password-reset', payload: { email: 'ada@example.com' } })).statusCode, 202)
  await app.mail.flush()

  const files = readdirSync(config.mail.outboxDir).filter(f => f.endsWith('.eml'))
  t.equal(files.length, 2, 'the verification and the reset email')
  const mails = await Promise.all(files.map(f => simpleParser(readFileSync(join(config.mail.outboxDir, f)))))
  const reset = mails.find(subjectIs('Reset your password'))!
  t.ok(reset, 'the reset email is a file')
  t.ok(typeof reset.html === 'string' && reset.text !== undefined, 'with an HTML and a text part')
  const { link, token } = linkIn(reset)

  const logged = lines.map(l => JSON.parse(l) as Record<string, unknown>).filter(l => l.msg === 'development outbox: email written')
  t.equal(logged.length, 2)
  t.ok(logged.some(l => l.link === link && l.level === 30), 'the link is logged at info')
  t.equal(lines.filter(l => l.includes(token)).length, 1, 'and only that line holds the token')

  t.equal((await app.inject({ method: 'POST', url: '/password-reset/confirm', payload: { token, new_password: 'a brand new passphrase 42' } })).statusCode, 204,
    'the link from the file resets the password')
  t.ok(await login(app, 'ada@example.com', 'a brand new passphrase 42'))
})

t.test('in production without SMTP_URL: a warning at start, and 503 from the endpoints that send mail', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-nomail-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const lines: string[] = []
  const logStream = new PassThrough()
  logStream.on('data', chunk => lines.push(...String(chunk).split('\n').filter(Boolean)))
  const config = testConfig(`sqlite:${join(dir, 'auth.db')}`, { LOG_LEVEL: 'info', NODE_ENV: 'production', ARGON2_MEMORY_KIB: '19456', ARGON2_ITERATIONS: '2' })
  const app = await buildApp({ config, now: testNow, logStream })
  t.teardown(() => app.close())
  await app.ready()
  t.equal(app.mail.available, false)
  t.ok(lines.some(l => l.includes('"level":40') && l.includes('SMTP_URL is not set')), 'a warning names SMTP_URL')

  const signup = await app.inject({ method: 'POST', url: '/users', payload: { email: 'ada@example.com', password: 'correct horse battery staple' } })
  t.equal(signup.statusCode, 201, 'signing up still works, without a verification email')

  const reset = await app.inject({ method: 'POST', url: '/password-reset', payload: { email: 'ada@example.com' } })
  t.equal(reset.statusCode, 503)
  t.match(reset.headers['content-type'], /^application\/problem\+json/)
  t.match(reset.json(), { status: 503, detail: 'Email cannot be sent: the service has no SMTP server configured' })

  const { access_token: accessToken } = await login(app)
  const verify = await app.inject({ method: 'POST', url: '/users/me/email-verification', headers: { authorization: `Bearer ${accessToken}` } })
  t.equal(verify.statusCode, 503)
  t.match(verify.json(), { status: 503 })
  await t.rejects(app.mail.enqueue(message(1)), { statusCode: 503, message: /SMTP/ } as never)
  t.same(readdirSafe(config.mail.outboxDir), [], 'nothing was written anywhere')
})

function readdirSafe (dir: string): string[] {
  try {
    return readdirSync(dir)
  } catch {
    return []
  }
}

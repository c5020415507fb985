import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'
import type { FastifyInstance } from 'fastify'
import mysql from 'mysql2/promise'
import t from 'tap'
import { EXIT, runAdmin } from '../src/admin/cli.js'
import { createMigrator, type MigrationTarget } from '../src/migrator.js'
import { createMysqlStore } from '../src/store/mysql.js'
import { createSqliteStore, openSqlite } from '../src/store/sqlite.js'
import type { Store } from '../src/store/store.js'
import { build, createUser, eachDialect, form, freshDatabase, login, PASSWORD, testNow, type Dialect } from './helper.js'

const execute = promisify(execFile)

interface Run {
  code: number
  stdout: string
  stderr: string
  json<T = Record<string, unknown>> (): T
}

/** The CLI in-process, on the database at `url`, at `now` on the tests' clock. */
async function admin (url: string, argv: string[], now = testNow()): Promise<Run> {
  let stdout = ''
  let stderr = ''
  const code = await runAdmin(argv, {
    env: { NODE_ENV: 'test', DATABASE_URL: url },
    stdout: { write: (text: string) => { stdout += text } },
    stderr: { write: (text: string) => { stderr += text } },
    now
  })
  return { code, stdout, stderr, json: () => JSON.parse(stdout) }
}

function password (app: FastifyInstance, username: string, secret: string) {
  return app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'password', username, password: secret }) })
}

function refresh (app: FastifyInstance, token: string) {
  return app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'refresh_token', refresh_token: token }) })
}

function me (app: FastifyInstance, accessToken: string, path = '/users/me') {
  return app.inject({ method: 'GET', url: path, headers: { authorization: `Bearer ${accessToken}` } })
}

/** auth_logins_total{outcome} as the metrics listener serves it. */
async function logins (app: FastifyInstance, outcome: string): Promise<number> {
  const address = app.metrics.address()!
  const text = await (await fetch(`http://${address.address}:${address.port}/metrics`)).text()
  const line = text.split('\n').find(l => l.startsWith(`auth_logins_total{outcome="${outcome}"} `))
  return Number(line?.split(' ')[1])
}

eachDialect(t, 'npm run admin: accounts', async (t, dialect) => {
  const url = await freshDatabase(t, dialect)
  const app = await build(t, dialect, { databaseUrl: url, env: { METRICS_PORT: '0' } })
  const run = (...argv: string[]) => admin(url, argv)
  const user = await createUser(app)
  const adminEvents = async (email = 'ada@example.com') =>
    (await run('events', email, '--json')).json<{ events: Array<{ type: string }> }>().events.map(e => e.type).filter(type => type.startsWith('admin_'))

  t.test('user show: the account, found by its email normalised as signup does', async t => {
    await login(app)
    t.equal((await password(app, 'ada@example.com', 'wrong password')).statusCode, 400)
    const shown = await run('user', 'show', '  ADA@Example.COM ', '--json')
    t.equal(shown.code, EXIT.ok)
    t.equal(shown.stderr, '')
    t.same(shown.json(), {
      id: user.id,
      email: 'ada@example.com',
      created_at: user.created_at,
      email_verified: false,
      email_verified_at: null,
      disabled: false,
      disabled_at: null,
      failed_logins: 1,
      locked: false,
      live_sessions: 1
    })
    const text = await run('user', 'show', 'ada@example.com')
    t.equal(text.code, EXIT.ok)
    t.match(text.stdout, /^id +\d+$/m)
    t.match(text.stdout, /^disabled +no$/m)
    t.match(text.stdout, /^failed_logins +1 in the last 900 s \(limit 10\)$/m)
    t.match(text.stdout, /^live_sessions +1$/m)
  })

  t.test('user disable: tokens refused at once, refresh fails, logins refused after the right password only', async t => {
    const tokens = await login(app)
    t.equal((await me(app, tokens.access_token)).statusCode, 200)
    const before = { disabled: await logins(app, 'disabled'), invalid: await logins(app, 'invalid_credentials') }
    const now = testNow()

    const disabled = await admin(url, ['--json', 'user', 'disable', 'ada@example.com'], now)
    t.equal(disabled.code, EXIT.ok)
    t.same(disabled.json(), { email: 'ada@example.com', action: 'disable', changed: true })

    const refused = await me(app, tokens.access_token)
    t.equal(refused.statusCode, 401, 'the access token is refused at once')
    t.match(refused.headers['www-authenticate'], /The session has ended/)
    t.same((await refresh(app, tokens.refresh_token!)).json(), { error: 'invalid_grant', error_description: 'The refresh token is invalid, expired or revoked' })

    const right = await password(app, 'ada@example.com', PASSWORD)
    t.equal(right.statusCode, 400)
    t.same(right.json(), { error: 'invalid_grant', error_description: 'The account is disabled' })
    const wrong = await password(app, 'ada@example.com', 'not the password')
    t.equal(wrong.statusCode, 400)
    t.same(wrong.json(), { error: 'invalid_grant', error_description: 'The username or password is incorrect' }, 'a wrong password learns nothing')
    t.equal(await logins(app, 'disabled'), before.disabled + 1, 'auth_logins_total{outcome="disabled"}')
    t.equal(await logins(app, 'invalid_credentials'), before.invalid + 1)

    const shown = (await run('user', 'show', 'ada@example.com', '--json')).json()
    t.equal(shown.disabled, true)
    t.equal(shown.disabled_at, new Date(now).toISOString())
    t.equal(shown.live_sessions, 0)

    const again = await run('user', 'disable', 'ada@example.com')
    t.equal(again.code, EXIT.ok, 'disabling a disabled account succeeds')
    t.match(again.stdout, /already disabled, nothing changed/)
    t.same(await adminEvents(), ['admin_disabled'], 'recorded once')
  })

  t.test('user enable: the account logs in again', async t => {
    const enabled = await run('user', 'enable', 'ada@example.com')
    t.equal(enabled.code, EXIT.ok)
    t.match(enabled.stdout, /^ada@example.com: enabled/)
    const tokens = await login(app)
    t.equal((await me(app, tokens.access_token)).statusCode, 200)
    const again = await run('user', 'enable', 'ada@example.com', '--json')
    t.same(again.json(), { email: 'ada@example.com', action: 'enable', changed: false })
    t.same(await adminEvents(), ['admin_enabled', 'admin_disabled'])
  })

  t.test('user end-sessions: every token refused', async t => {
    const tokens = await login(app)
    const ended = await run('user', 'end-sessions', 'ada@example.com')
    t.equal(ended.code, EXIT.ok)
    t.equal((await me(app, tokens.access_token)).statusCode, 401)
    t.equal((await refresh(app, tokens.refresh_token!)).statusCode, 400)
    t.equal((await login(app)).token_type, 'Bearer', 'logging in again works')
    t.equal((await adminEvents())[0], 'admin_sessions_ended')
  })

  t.test('user verify-email: GET /users/me says verified', async t => {
    const tokens = await login(app)
    t.equal((await me(app, tokens.access_token)).json().email_verified, false)
    t.equal((await run('user', 'verify-email', 'ada@example.com')).code, EXIT.ok)
    t.equal((await me(app, tokens.access_token)).json().email_verified, true)
    const again = await run('user', 'verify-email', 'ada@example.com')
    t.equal(again.code, EXIT.ok)
    t.match(again.stdout, /already verified, nothing changed/)
    t.same(await adminEvents(), ['admin_email_verified', 'admin_sessions_ended', 'admin_enabled', 'admin_disabled'])
  })

  t.test('events: newest first, as GET /users/me/events answers them', async t => {
    const tokens = await login(app)
    const listed = await run('events', 'ada@example.com', '--json')
    t.equal(listed.code, EXIT.ok)
    const { events } = listed.json<{ events: Array<{ type: string, at: string, ip: string | null, user_agent: string | null }> }>()
    const served = (await me(app, tokens.access_token, '/users/me/events')).json<{ events: unknown[] }>().events
    t.same(events, served, 'the same list, admin_* types included')
    t.equal(events.at(-1)!.type, 'signup')
    const disabled = events.find(e => e.type === 'admin_disabled')!
    t.same([disabled.ip, disabled.user_agent], [null, null], 'an operator\'s action has no request')
    const text = await run('events', 'ada@example.com')
    t.match(text.stdout.split('\n')[0], /^\d{4}-\d\d-\d\dT[\d:.]+Z {2}login /)
  })

  t.test('user delete: everything gone; the email signs up again', async t => {
    const tokens = await login(app)
    const deleted = await run('user', 'delete', 'ada@example.com', '--json')
    t.equal(deleted.code, EXIT.ok)
    t.same(deleted.json(), { email: 'ada@example.com', action: 'delete', changed: true })
    t.equal((await me(app, tokens.access_token)).statusCode, 401)
    t.same((await password(app, 'ada@example.com', PASSWORD)).json(), { error: 'invalid_grant', error_description: 'The username or password is incorrect' })
    t.equal((await run('user', 'show', 'ada@example.com')).code, EXIT.noAccount)
    const again = await createUser(app)
    t.equal(again.email, 'ada@example.com', 'the email is free again')
    t.same(await adminEvents(), [], 'a new account, with nothing of the old one')
  })

  t.test('an unknown email: exit 3, one line on stderr', async t => {
    for (const argv of [['user', 'show', 'nobody@example.com'], ['user', 'disable', 'Nobody@Example.com'], ['events', 'nobody@example.com', '--json']]) {
      const result = await run(...argv)
      t.equal(result.code, EXIT.noAccount, argv.join(' '))
      t.equal(result.stdout, '')
      t.equal(result.stderr, 'admin: no account with the email nobody@example.com\n')
    }
  })
})

eachDialect(t, 'npm run admin: a disabled account whose email is not verified is told it is disabled', async (t, dialect) => {
  const url = await freshDatabase(t, dialect)
  const app = await build(t, dialect, { databaseUrl: url, env: { REQUIRE_VERIFIED_EMAIL: 'true' } })
  await createUser(app)
  t.same((await password(app, 'ada@example.com', PASSWORD)).json(), { error: 'invalid_grant', error_description: 'The email address is not verified' })
  t.equal((await admin(url, ['user', 'disable', 'ada@example.com'])).code, EXIT.ok)
  t.same((await password(app, 'ada@example.com', PASSWORD)).json(), { error: 'invalid_grant', error_description: 'The account is disabled' })
})

/** A migrated database and a store on it, without an app (whose sender would empty the outbox). */
async function storeOn (t: Parameters<Parameters<typeof eachDialect>[2]>[0], dialect: Dialect, url: string): Promise<Store> {
  let target: MigrationTarget
  let store: Store
  if (dialect === 'sqlite') {
    const db = openSqlite(url.slice('sqlite:'.length))
    t.teardown(() => db.close())
    target = { dialect, db }
    store = createSqliteStore(db)
  } else {
    const pool = mysql.createPool({ uri: url, connectionLimit: 2 })
    t.teardown(() => pool.end())
    target = { dialect, pool }
    store = createMysqlStore(pool)
  }
  await createMigrator(target).up()
  return store
}

eachDialect(t, 'npm run admin: outbox', async (t, dialect) => {
  const url = await freshDatabase(t, dialect)
  const store = await storeOn(t, dialect, url)
  const now = testNow()
  const link = 'http://auth.test/reset-password?token=SECRET-TOKEN-1234'
  const message = (recipient: string) => ({ recipient, subject: 'Reset your password', text: `Follow ${link}`, html: `<a href="${link}">reset</a>`, link, expiresAt: now + 3600_000 })
  t.same((await admin(url, ['outbox', '--json'], now)).json(), { messages: [] })

  // The first is tried once and fails, as the sender records it; the second waits its turn.
  await store.enqueueEmail(message('grace@example.com'), now)
  const claim = randomBytes(16)
  const [failed] = await store.claimEmails(claim, now, now + 60_000, 1)
  await store.emailFailed(failed!.id, claim, now + 10_000, 'ECONNREFUSED connect ECONNREFUSED 127.0.0.1:25')
  await store.enqueueEmail(message('ada@example.com'), now)
  const pending = (await store.listOutbox()).find(m => m.recipient === 'ada@example.com')!

  const listed = await admin(url, ['outbox', '--json'], now)
  t.equal(listed.code, EXIT.ok)
  t.same(listed.json(), {
    messages: [
      { id: failed!.id, status: 'failed', subject: 'Reset your password', recipient: 'grace@example.com', attempts: 1, created_at: new Date(now).toISOString(), next_attempt_at: new Date(now + 10_000).toISOString(), expires_at: new Date(now + 3600_000).toISOString(), last_error: 'ECONNREFUSED connect ECONNREFUSED 127.0.0.1:25' },
      { id: pending.id, status: 'pending', subject: 'Reset your password', recipient: 'ada@example.com', attempts: 0, created_at: new Date(now).toISOString(), next_attempt_at: new Date(now).toISOString(), expires_at: new Date(now + 3600_000).toISOString(), last_error: null }
    ]
  })
  const text = await admin(url, ['outbox'], now)
  t.match(text.stdout, /^#\d+ +failed +grace@example.com +"Reset your password" +attempts 1, next .*last error: ECONNREFUSED/m)
  for (const output of [listed.stdout, text.stdout]) {
    t.notMatch(output, /SECRET-TOKEN|token=|<a /, 'never the token, the link or a body')
  }

  const retried = await admin(url, ['outbox', 'retry'], now + 1000)
  t.equal(retried.code, EXIT.ok)
  t.equal(retried.stdout, '1 failed message is pending again\n')
  const after = (await store.listOutbox()).find(m => m.id === failed!.id)!
  t.same([after.attempts, after.nextAttemptAt, after.lastError], [0, now + 1000, null], 'a fresh start, due now')
  t.same((await admin(url, ['outbox', 'retry', '--json'], now + 1000)).json(), { retried: 0 })
})

eachDialect(t, 'npm run admin: a database that is not migrated is exit 4', async (t, dialect) => {
  const url = await freshDatabase(t, dialect)
  const result = await admin(url, ['outbox'])
  t.equal(result.code, EXIT.database)
  t.equal(result.stdout, '')
  t.match(result.stderr, dialect === 'sqlite' ? /^admin: there is no database at .*auth\.db/ : /^admin: the database at mysql:\/\/.* is not migrated \(pending: 0001-users, .*\); run npm run migrate -- up\n$/)
  t.equal(result.stderr.split('\n').length, 2, 'one line')
})

t.test('npm run admin: usage errors are exit 2, --help is exit 0', async t => {
  const url = 'sqlite:/nonexistent/never-opened.db'
  for (const [argv, message] of [
    [[], /a command is missing/],
    [['frobnicate'], /unknown command frobnicate/],
    [['user'], /user needs a command/],
    [['user', 'promote', 'ada@example.com'], /unknown command user promote/],
    [['user', 'show'], /an EMAIL is missing/],
    [['user', 'show', ''], /an EMAIL is missing/],
    [['user', 'show', 'a@example.com', 'b@example.com'], /unexpected argument b@example.com/],
    [['events'], /an EMAIL is missing/],
    [['outbox', 'flush'], /unknown command outbox flush/],
    [['outbox', '--force'], /unknown flag --force/]
  ] as Array<[string[], RegExp]>) {
    const result = await admin(url, argv)
    t.equal(result.code, EXIT.usage, argv.join(' ') || '(nothing)')
    t.match(result.stderr, message)
    t.match(result.stderr, /^admin: [^\n]+ \(see --help\)\n$/)
  }
  const help = await admin(url, ['user', '--help'])
  t.equal(help.code, EXIT.ok)
  t.match(help.stdout, /user disable EMAIL/)
  t.match(help.stdout, /4 +the database does not answer, or is not migrated/)
})

t.test('npm run admin as a real process: exit codes and one-line errors', async t => {
  const url = await freshDatabase(t, 'sqlite')
  const cli = (argv: string[], databaseUrl = url) =>
    execute(process.execPath, ['--import', 'tsx', 'src/admin.ts', ...argv], { env: { PATH: process.env.PATH, DATABASE_URL: databaseUrl } })
      .then(({ stdout, stderr }) => ({ code: 0, stdout, stderr }), (err: { code: number, stdout: string, stderr: string }) => err)

  t.test('a database that does not answer: exit 4, one line, no stack trace', async t => {
    const result = await cli(['user', 'show', 'ada@example.com'], 'mysql://root:hunter2@127.0.0.1:1/x')
    t.equal(result.code, EXIT.database)
    t.equal(result.stderr, 'admin: the database at mysql://root:***@127.0.0.1:1/x does not answer: connect ECONNREFUSED 127.0.0.1:1\n')
    t.notMatch(result.stderr, /hunter2/, 'the password is not printed')
  })

  t.test('migrated: an unknown email is exit 3, the outbox answers JSON, a bad flag is exit 2', async t => {
    const store = await storeOn(t, 'sqlite', url)
    t.ok(store)
    const missing = await cli(['user', 'show', 'ada@example.com'])
    t.same([missing.code, missing.stdout, missing.stderr], [EXIT.noAccount, '', 'admin: no account with the email ada@example.com\n'])
    const outbox = await cli(['outbox', '--json'])
    t.same([outbox.code, JSON.parse(outbox.stdout)], [EXIT.ok, { messages: [] }])
    t.equal((await cli(['outbox', '--jsno'])).code, EXIT.usage)
  })
})

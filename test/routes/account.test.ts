import { randomBytes } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import mysql from 'mysql2/promise'
import { openSqlite } from '../../src/store/sqlite.js'
import { build, createUser, type Dialect, eachDialect, form, freshDatabase, login, PASSWORD, testNow } from '../helper.js'

const NEW_PASSWORD = 'a brand new passphrase 2026'
const INVALID_GRANT = { error: 'invalid_grant', error_description: 'The refresh token is invalid, expired or revoked' }

const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

function changePassword (app: FastifyInstance, token: string, body: unknown) {
  return app.inject({ method: 'POST', url: '/users/me/password', headers: bearer(token), payload: body as Record<string, unknown> })
}

function deleteAccount (app: FastifyInstance, token: string, body: unknown) {
  return app.inject({ method: 'DELETE', url: '/users/me', headers: bearer(token), payload: body as Record<string, unknown> })
}

function sessionsOf (app: FastifyInstance, token: string) {
  return app.inject({ method: 'GET', url: '/users/me/sessions', headers: bearer(token) })
}

function endSession (app: FastifyInstance, token: string, id: string) {
  return app.inject({ method: 'DELETE', url: `/users/me/sessions/${encodeURIComponent(id)}`, headers: bearer(token) })
}

async function eventTypes (app: FastifyInstance, token: string): Promise<string[]> {
  const res = await app.inject({ method: 'GET', url: '/users/me/events', headers: bearer(token) })
  if (res.statusCode !== 200) throw new Error(`events: ${res.statusCode} ${res.body}`)
  return res.json().events.map((e: { type: string }) => e.type)
}

function refresh (app: FastifyInstance, refreshToken: string) {
  return app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'refresh_token', refresh_token: refreshToken }) })
}

async function me (app: FastifyInstance, token: string) {
  return (await app.inject({ method: 'GET', url: '/users/me', headers: bearer(token) })).statusCode
}

async function loginAs (app: FastifyInstance, email: string, password: string, userAgent?: string) {
  const res = await app.inject({
    method: 'POST',
    url: '/token',
    payload: new URLSearchParams({ grant_type: 'password', username: email, password }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(userAgent === undefined ? {} : { 'user-agent': userAgent }) }
  })
  return res
}

function sidOf (app: FastifyInstance, accessToken: string): string {
  return (app.jwt.decode(accessToken) as { sid: string }).sid
}

/** Rows that still name the user, table by table, read with SQL beside the app. */
async function rowsOf (t: Parameters<Parameters<typeof eachDialect>[2]>[0], dialect: Dialect, databaseUrl: string, userId: number) {
  const tables = ['users', 'sessions', 'refresh_tokens', 'security_events']
  const counts: Record<string, number> = {}
  if (dialect === 'sqlite') {
    const db = openSqlite(databaseUrl.slice('sqlite:'.length))
    try {
      for (const table of tables) {
        counts[table] = (db.prepare(`SELECT COUNT(*) AS n FROM ${table} WHERE ${table === 'users' ? 'id' : 'user_id'} = ?`).get(userId) as { n: number }).n
      }
    } finally {
      db.close()
    }
  } else {
    const connection = await mysql.createConnection({ uri: databaseUrl })
    try {
      for (const table of tables) {
        const [rows] = await connection.query(`SELECT COUNT(*) AS n FROM ${table} WHERE ${table === 'users' ? 'id' : 'user_id'} = ?`, [userId])
        counts[table] = Number((rows as Array<{ n: number }>)[0]!.n)
      }
    } finally {
      await connection.end()
    }
  }
  return counts
}

eachDialect(t, 'signed-in devices', async (t, dialect) => {
  let clock = testNow()
  const app = await build(t, dialect, { now: () => clock })
  await createUser(app)
  await createUser(app, 'bob@example.com')

  t.test('GET /users/me/sessions: every live login, newest first, the caller\'s marked current', async t => {
    const phone = (await loginAs(app, 'ada@example.com', PASSWORD, 'Phone/1.0')).json()
    clock += 1000
    const laptop = (await loginAs(app, 'ada@example.com', PASSWORD, 'Laptop/2.0')).json()
    const res = await sessionsOf(app, phone.access_token)
    t.equal(res.statusCode, 200)
    const { sessions } = res.json()
    t.equal(sessions.length, 2)
    t.same(sessions.map((s: { user_agent: string }) => s.user_agent), ['Laptop/2.0', 'Phone/1.0'], 'newest first')
    t.same(sessions.map((s: { current: boolean }) => s.current), [false, true])
    t.same(sessions[1], {
      id: sidOf(app, phone.access_token),
      created_at: new Date(clock - 1000).toISOString(),
      last_used_at: new Date(clock - 1000).toISOString(),
      ip: '127.0.0.1',
      user_agent: 'Phone/1.0',
      current: true
    })
    t.equal(sessions[0].id, sidOf(app, laptop.access_token))
    t.match(sessions[0].id, /^[A-Za-z0-9_-]{22}$/)

    t.test('a refresh keeps the session and moves last_used_at', async t => {
      clock += 5000
      const refreshed = await refresh(app, phone.refresh_token)
      t.equal(refreshed.statusCode, 200)
      t.equal(sidOf(app, refreshed.json().access_token), sidOf(app, phone.access_token))
      const after = (await sessionsOf(app, refreshed.json().access_token)).json().sessions
      t.equal(after.length, 2)
      t.same(after[1], { ...sessions[1], last_used_at: new Date(clock).toISOString() })
    })

    t.test('another user sees only their own', async t => {
      const bob = await login(app, 'bob@example.com')
      const { sessions } = (await sessionsOf(app, bob.access_token)).json()
      t.equal(sessions.length, 1)
      t.equal(sessions[0].current, true)
    })
  })

  t.test('DELETE /users/me/sessions/{id} ends that session at once and no other', async t => {
    const mine = await login(app)
    const other = await login(app)
    const res = await endSession(app, mine.access_token, sidOf(app, other.access_token))
    t.equal(res.statusCode, 204)
    t.equal(res.body, '')
    t.equal(await me(app, other.access_token), 401, 'its access token is refused at once')
    const refused = await app.inject({ method: 'GET', url: '/users/me', headers: bearer(other.access_token) })
    t.match(refused.headers['www-authenticate'], /error_description="The session has ended"/)
    t.same((await refresh(app, other.refresh_token!)).json(), INVALID_GRANT, 'its refresh token is revoked')
    t.equal(await me(app, mine.access_token), 200, 'the caller\'s session goes on')
    t.equal((await refresh(app, mine.refresh_token!)).statusCode, 200)
    t.notOk((await sessionsOf(app, mine.access_token)).json().sessions.some((s: { id: string }) => s.id === sidOf(app, other.access_token)))
    t.equal((await eventTypes(app, mine.access_token))[0], 'session_revoked')

    t.test('ending it again, an unknown id, a malformed one, or another user\'s: the same 404', async t => {
      const bob = await login(app, 'bob@example.com')
      const ids = [sidOf(app, other.access_token), randomBytes(16).toString('base64url'), 'not-a-session', 'x'.repeat(100), sidOf(app, bob.access_token)]
      for (const id of ids) {
        const res = await endSession(app, mine.access_token, id)
        t.equal(res.statusCode, 404, id)
        t.match(res.headers['content-type'], /^application\/problem\+json/)
        t.same(res.json(), { type: 'about:blank', title: 'Not Found', status: 404, detail: 'No such session' })
      }
      t.equal(await me(app, bob.access_token), 200, 'bob\'s session was not touched')
      const long = await endSession(app, mine.access_token, 'x'.repeat(300))
      t.equal(long.statusCode, 414, 'an id longer than any route parameter (100 characters): Fastify\'s 414, as a problem')
      t.match(long.headers['content-type'], /^application\/problem\+json/)
    })

    t.test('ending the current session signs this device out', async t => {
      const device = await login(app)
      t.equal((await endSession(app, device.access_token, sidOf(app, device.access_token))).statusCode, 204)
      t.equal(await me(app, device.access_token), 401)
    })
  })

  t.test('RFC 7009 revocation of a refresh token ends its session and its access tokens', async t => {
    const tokens = await login(app)
    const revoked = await app.inject({ method: 'POST', url: '/revoke', ...form({ token: tokens.refresh_token! }) })
    t.equal(revoked.statusCode, 200)
    t.equal(await me(app, tokens.access_token), 401)
  })

  t.test('a reused refresh token ends its session, and is recorded', async t => {
    const first = await login(app)
    const second = (await refresh(app, first.refresh_token!)).json()
    t.same((await refresh(app, first.refresh_token!)).json(), INVALID_GRANT)
    t.equal(await me(app, second.access_token), 401, 'the thief\'s (or the holder\'s) access token dies with the family')
    const watcher = await login(app)
    t.ok((await eventTypes(app, watcher.access_token)).includes('refresh_reused'))
  })

  t.test('every endpoint needs a login', async t => {
    const requests = [
      { method: 'GET', url: '/users/me/sessions' },
      { method: 'DELETE', url: '/users/me/sessions/abc' },
      { method: 'GET', url: '/users/me/events' },
      { method: 'POST', url: '/users/me/password', payload: { current_password: PASSWORD, new_password: NEW_PASSWORD } },
      { method: 'DELETE', url: '/users/me', payload: { current_password: PASSWORD } }
    ] as const
    for (const request of requests) {
      const res = await app.inject(request)
      t.equal(res.statusCode, 401, `${request.method} ${request.url}`)
      t.equal(res.headers['www-authenticate'], 'Bearer realm="auth-service"')
    }
  })
})

t.test('a 10 KiB User-Agent over a real socket is stored cut to 256 characters', async t => {
  const app = await build(t, 'sqlite')
  await createUser(app)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const userAgent = 'Agent/1.0 ' + 'y'.repeat(10 * 1024)
  const res = await fetch(`${base}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', 'user-agent': userAgent },
    body: new URLSearchParams({ grant_type: 'password', username: 'ada@example.com', password: PASSWORD })
  })
  t.equal(res.status, 200)
  const { access_token: token } = await res.json() as { access_token: string }
  const list = await fetch(`${base}/users/me/sessions`, { headers: bearer(token) })
  const { sessions } = await list.json() as { sessions: Array<{ user_agent: string }> }
  t.equal(sessions[0]!.user_agent, userAgent.slice(0, 256))
  const events = await (await fetch(`${base}/users/me/events`, { headers: bearer(token) })).json() as { events: Array<{ type: string, at: string, user_agent: string }> }
  t.same(events.events[0], { type: 'login', at: events.events[0]!.at, ip: '127.0.0.1', user_agent: userAgent.slice(0, 256) })
})

eachDialect(t, 'POST /users/me/password', async (t, dialect) => {
  let clock = testNow()
  const app = await build(t, dialect, { now: () => clock })
  await createUser(app)

  t.test('refused without re-authentication or outside the policy', async t => {
    const { access_token: token } = await login(app)
    const cases: Array<[string, unknown, number, Array<{ field: string }>?]> = [
      ['a common password', { current_password: PASSWORD, new_password: 'password1234' }, 400, [{ field: 'new_password' }]],
      ['too short', { current_password: PASSWORD, new_password: 'short' }, 400, [{ field: 'new_password' }]],
      ['too long', { current_password: PASSWORD, new_password: 'x'.repeat(129) }, 400, [{ field: 'new_password' }]],
      ['the current one', { current_password: PASSWORD, new_password: PASSWORD }, 400, [{ field: 'new_password' }]],
      ['no current password', { new_password: NEW_PASSWORD }, 400, [{ field: 'current_password' }]],
      ['an unknown property', { current_password: PASSWORD, new_password: NEW_PASSWORD, email: 'x@y.z' }, 400, [{ field: 'email' }]]
    ]
    for (const [name, body, status, errors] of cases) {
      const res = await changePassword(app, token, body)
      t.equal(res.statusCode, status, name)
      t.match(res.headers['content-type'], /^application\/problem\+json/, name)
      t.match(res.json(), { status, errors }, name)
    }
    const equal = await changePassword(app, token, { current_password: PASSWORD, new_password: PASSWORD })
    t.same(equal.json().errors, [{ field: 'new_password', message: 'must differ from the current password' }])

    const wrong = await changePassword(app, token, { current_password: 'not the password', new_password: NEW_PASSWORD })
    t.equal(wrong.statusCode, 403)
    t.same(wrong.json(), { type: 'about:blank', title: 'Forbidden', status: 403, detail: 'The current password is incorrect' })
    const form = await app.inject({ method: 'POST', url: '/users/me/password', headers: { ...bearer(token), 'content-type': 'application/x-www-form-urlencoded' }, payload: 'current_password=x' })
    t.equal(form.statusCode, 415)
    t.equal(await me(app, token), 200, 'nothing changed')
    t.equal((await loginAs(app, 'ada@example.com', PASSWORD)).statusCode, 200)
  })

  t.test('200 with fresh tokens; every other session, and the caller\'s old tokens, end at once', async t => {
    const caller = await login(app)
    const other = await login(app)
    clock += 1000
    const res = await changePassword(app, caller.access_token, { current_password: PASSWORD, new_password: NEW_PASSWORD })
    t.equal(res.statusCode, 200)
    t.equal(res.headers['cache-control'], 'no-store')
    t.equal(res.headers.pragma, 'no-cache')
    const fresh = res.json()
    t.match(fresh, { access_token: String, token_type: 'Bearer', expires_in: 900, refresh_token: /^[A-Za-z0-9_-]{91}$/ })
    t.same(Object.keys(fresh).sort(), ['access_token', 'expires_in', 'refresh_token', 'token_type'])

    for (const [name, tokens] of [['other', other], ['caller\'s old', caller]] as const) {
      t.equal(await me(app, tokens.access_token), 401, `${name} access token refused`)
      t.same((await refresh(app, tokens.refresh_token!)).json(), INVALID_GRANT, `${name} refresh token revoked`)
    }
    t.equal(await me(app, fresh.access_token), 200)
    const { sessions } = (await sessionsOf(app, fresh.access_token)).json()
    t.same(sessions.map((s: { current: boolean }) => s.current), [true], 'one session left: the caller\'s new one')
    const refreshed = await refresh(app, fresh.refresh_token)
    t.equal(refreshed.statusCode, 200)

    t.equal((await loginAs(app, 'ada@example.com', PASSWORD)).statusCode, 400, 'the old password no longer logs in')
    const again = await loginAs(app, 'ada@example.com', NEW_PASSWORD)
    t.equal(again.statusCode, 200)
    t.same((await eventTypes(app, again.json().access_token)).slice(0, 3), ['login', 'login_failed', 'password_changed'])

    // Back, for the tests after this one.
    const back = await changePassword(app, again.json().access_token, { current_password: NEW_PASSWORD, new_password: PASSWORD })
    t.equal(back.statusCode, 200)
  })

  t.test('two concurrent changes: one wins, and the loser\'s session does not survive', async t => {
    const a = await login(app)
    const b = await login(app)
    const [ra, rb] = await Promise.all([
      changePassword(app, a.access_token, { current_password: PASSWORD, new_password: 'first concurrent passphrase' }),
      changePassword(app, b.access_token, { current_password: PASSWORD, new_password: 'second concurrent passphrase' })
    ])
    t.same([ra.statusCode, rb.statusCode].sort(), [200, 403])
    const [winner, loser, password] = ra.statusCode === 200
      ? [ra, b, 'first concurrent passphrase']
      : [rb, a, 'second concurrent passphrase']
    t.equal(await me(app, loser.access_token), 401, 'the loser is signed out')
    t.same((await refresh(app, loser.refresh_token!)).json(), INVALID_GRANT)
    t.equal(await me(app, winner.json().access_token), 200)
    t.equal((await loginAs(app, 'ada@example.com', password)).statusCode, 200, 'the winner\'s password is the one set')
    const back = await changePassword(app, winner.json().access_token, { current_password: password, new_password: PASSWORD })
    t.equal(back.statusCode, 200)
  })
})

eachDialect(t, 'a wrong current password counts toward the account\'s login limit', async (t, dialect) => {
  let clock = testNow()
  const app = await build(t, dialect, { now: () => clock, env: { LOGIN_LIMIT_PER_ACCOUNT: '3', LOGIN_LIMIT_WINDOW: '600' } })
  await createUser(app)
  const { access_token: token } = await login(app)

  t.equal((await changePassword(app, token, { current_password: 'wrong guess one', new_password: NEW_PASSWORD })).statusCode, 403)
  t.equal((await deleteAccount(app, token, { current_password: 'wrong guess two' })).statusCode, 403)
  t.equal((await loginAs(app, 'ada@example.com', 'wrong guess three')).statusCode, 400, 'a failed login counts in the same limit')

  for (const res of [
    await changePassword(app, token, { current_password: PASSWORD, new_password: NEW_PASSWORD }),
    await deleteAccount(app, token, { current_password: PASSWORD })
  ]) {
    t.equal(res.statusCode, 429, 'locked: the right password is refused too')
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    t.equal(res.headers['retry-after'], '600')
    t.equal(res.json().status, 429)
  }
  const tokenLogin = await loginAs(app, 'ada@example.com', PASSWORD)
  t.equal(tokenLogin.statusCode, 429, 'and so is the login')
  t.equal(tokenLogin.headers['retry-after'], '600')
  t.equal(await me(app, token), 200, 'the account still exists, its session still works')
  t.same((await eventTypes(app, token)).slice(0, 4), ['locked', 'login_failed', 'login_failed', 'login_failed'])

  clock += 600_000 + 1
  const res = await changePassword(app, token, { current_password: PASSWORD, new_password: NEW_PASSWORD })
  t.equal(res.statusCode, 200, 'once the window has passed')
})

eachDialect(t, 'DELETE /users/me', async (t, dialect) => {
  const databaseUrl = await freshDatabase(t, dialect)
  const app = await build(t, dialect, { databaseUrl })
  const user = await createUser(app)
  const first = await login(app)
  const second = await login(app)

  t.test('a wrong password or a missing body changes nothing', async t => {
    const wrong = await deleteAccount(app, first.access_token, { current_password: 'not the password' })
    t.equal(wrong.statusCode, 403)
    t.equal(wrong.json().detail, 'The current password is incorrect')
    const empty = await app.inject({ method: 'DELETE', url: '/users/me', headers: bearer(first.access_token) })
    t.equal(empty.statusCode, 400)
    const missing = await deleteAccount(app, first.access_token, {})
    t.equal(missing.statusCode, 400)
    t.same(missing.json().errors, [{ field: 'current_password', message: "must have required property 'current_password'" }])
    t.equal(await me(app, first.access_token), 200)
  })

  t.test('204: the account and everything kept for it are gone; every token is refused', async t => {
    const res = await deleteAccount(app, first.access_token, { current_password: PASSWORD })
    t.equal(res.statusCode, 204)
    t.equal(res.body, '')
    for (const tokens of [first, second]) {
      t.equal(await me(app, tokens.access_token), 401)
      const status = await app.inject({ method: 'GET', url: '/auth/status', headers: bearer(tokens.access_token) })
      t.same(status.json(), { logged_in: false })
      t.same((await refresh(app, tokens.refresh_token!)).json(), INVALID_GRANT)
    }
    t.same(await rowsOf(t, dialect, databaseUrl, user.id), { users: 0, sessions: 0, refresh_tokens: 0, security_events: 0 })
    t.equal((await loginAs(app, 'ada@example.com', PASSWORD)).statusCode, 400, 'no login')
  })

  t.test('the email signs up again, as a new account the old tokens cannot reach', async t => {
    await createUser(app)
    const tokens = await login(app)
    // SQLite may give the new account the old id: the old tokens' sessions are gone all the same.
    for (const old of [first, second]) t.equal(await me(app, old.access_token), 401)
    t.same(await eventTypes(app, tokens.access_token), ['login', 'signup'], 'none of the old account\'s history')
  })
})

eachDialect(t, 'deleting an account while its refreshes are in flight leaves no orphan rows', async (t, dialect) => {
  const databaseUrl = await freshDatabase(t, dialect)
  const app = await build(t, dialect, { databaseUrl })
  const user = await createUser(app)
  const logins = await Promise.all(Array.from({ length: 6 }, () => login(app)))
  const [deletion, ...refreshes] = await Promise.all([
    deleteAccount(app, logins[0]!.access_token, { current_password: PASSWORD }),
    ...logins.flatMap(tokens => [refresh(app, tokens.refresh_token!), loginAs(app, 'ada@example.com', PASSWORD)])
  ])
  t.equal(deletion!.statusCode, 204)
  for (const res of refreshes) t.ok([200, 400].includes(res.statusCode), `a refresh or login answers ${res.statusCode}, never a 5xx`)
  t.same(await rowsOf(t, dialect, databaseUrl, user.id), { users: 0, sessions: 0, refresh_tokens: 0, security_events: 0 })
  for (const res of refreshes.filter(r => r.statusCode === 200)) {
    t.equal(await me(app, res.json().access_token), 401, 'a token issued in the race is refused')
  }
})

eachDialect(t, 'GET /users/me/events', async (t, dialect) => {
  let clock = testNow()
  const app = await build(t, dialect, { now: () => clock })
  await createUser(app)
  await loginAs(app, 'ada@example.com', 'not the password', 'Guesser/1.0')
  clock += 1
  const tokens = (await loginAs(app, 'ada@example.com', PASSWORD, 'Browser/3.0')).json()
  const res = await app.inject({ method: 'GET', url: '/users/me/events', headers: bearer(tokens.access_token) })
  t.equal(res.statusCode, 200)
  t.same(res.json(), {
    events: [
      { type: 'login', at: new Date(clock).toISOString(), ip: '127.0.0.1', user_agent: 'Browser/3.0' },
      { type: 'login_failed', at: new Date(clock - 1).toISOString(), ip: '127.0.0.1', user_agent: 'Guesser/1.0' },
      { type: 'signup', at: new Date(clock - 1).toISOString(), ip: '127.0.0.1', user_agent: 'lightMyRequest' }
    ]
  })
  for (let i = 0; i < 30; i++) {
    clock += 1
    const session = await login(app)
    await app.inject({ method: 'POST', url: '/logout', headers: bearer(session.access_token) })
  }
  const fresh = await login(app)
  const { events } = (await app.inject({ method: 'GET', url: '/users/me/events', headers: bearer(fresh.access_token) })).json()
  t.equal(events.length, 50, 'at most 50')
  t.equal(events[0].type, 'login')
  t.ok(events.every((e: { at: string }, i: number) => i === 0 || e.at <= events[i - 1].at), 'newest first')
})

eachDialect(t, 'two instances on one database: account changes on one are refused on the other at once', async (t, dialect) => {
  const databaseUrl = await freshDatabase(t, dialect)
  const a = await build(t, dialect, { databaseUrl })
  const b = await build(t, dialect, { databaseUrl })
  await createUser(a)

  t.test('a session ended on A is refused on B', async t => {
    const caller = await login(a)
    const device = await login(b)
    t.equal(await me(b, device.access_token), 200)
    t.equal((await endSession(a, caller.access_token, sidOf(a, device.access_token))).statusCode, 204)
    t.equal(await me(b, device.access_token), 401)
    t.same((await refresh(b, device.refresh_token!)).json(), INVALID_GRANT)
    t.equal(await me(b, caller.access_token), 200)
  })

  t.test('a password change on A refuses the old tokens on B', async t => {
    const caller = await login(a)
    const device = await login(b)
    t.equal(await me(b, device.access_token), 200, 'verified (and its signature remembered) on B')
    const res = await changePassword(a, caller.access_token, { current_password: PASSWORD, new_password: NEW_PASSWORD })
    t.equal(res.statusCode, 200)
    t.equal(await me(b, device.access_token), 401)
    t.equal(await me(b, caller.access_token), 401)
    t.same((await refresh(b, device.refresh_token!)).json(), INVALID_GRANT)
    t.equal(await me(b, res.json().access_token), 200, 'the new token works on B')
  })

  t.test('an account deleted on A is refused on B', async t => {
    const device = (await loginAs(b, 'ada@example.com', NEW_PASSWORD)).json()
    const caller = (await loginAs(a, 'ada@example.com', NEW_PASSWORD)).json()
    t.equal(await me(b, device.access_token), 200)
    t.equal((await deleteAccount(a, caller.access_token, { current_password: NEW_PASSWORD })).statusCode, 204)
    t.equal(await me(b, device.access_token), 401)
  })
})

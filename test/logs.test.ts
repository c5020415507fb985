import { Writable } from 'node:stream'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { eachDialect, form, freshDatabase, PASSWORD, testConfig } from './helper.js'

/** Every log line of a whole session, at the most talkative level: no secret may be in one. */
eachDialect(t, 'the logs never hold a password, a token or an Authorization value', async (t, dialect) => {
  const lines: string[] = []
  const logStream = new Writable({
    write (chunk, _encoding, callback) {
      lines.push(...String(chunk).split('\n').filter(Boolean))
      callback()
    }
  })
  const databaseUrl = await freshDatabase(t, dialect)
  const app = await buildApp({ config: testConfig(databaseUrl, { LOG_LEVEL: 'trace' }), logStream })
  t.teardown(() => app.close())
  await app.ready()

  const email = 'ada@example.com'
  const wrongPassword = 'not the right password at all'
  const basic = Buffer.from(`${email}:${PASSWORD}`).toString('base64')

  const signup = await app.inject({ method: 'POST', url: '/users', payload: { email, password: PASSWORD } })
  t.equal(signup.statusCode, 201)
  const login = await app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'password', username: email, password: PASSWORD }) })
  t.equal(login.statusCode, 200)
  const first = login.json<{ access_token: string, refresh_token: string }>()
  const failed = await app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'password', username: email, password: wrongPassword }) })
  t.equal(failed.statusCode, 400)
  const refresh = await app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'refresh_token', refresh_token: first.refresh_token }) })
  t.equal(refresh.statusCode, 200)
  const second = refresh.json<{ access_token: string, refresh_token: string }>()
  const bearer = { authorization: `Bearer ${second.access_token}` }
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: bearer })).statusCode, 200)
  t.same((await app.inject({ method: 'GET', url: '/auth/status', headers: bearer })).json(), { logged_in: true })
  t.same((await app.inject({ method: 'GET', url: '/auth/status', headers: { authorization: `Basic ${basic}` } })).json(), { logged_in: false })
  // A refused token is logged about (at debug) too: still without the token.
  t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${first.access_token}x` } })).statusCode, 401)
  t.equal((await app.inject({ method: 'POST', url: '/logout', headers: bearer })).statusCode, 204)
  t.equal((await app.inject({ method: 'POST', url: '/revoke', ...form({ token: second.refresh_token }) })).statusCode, 200)
  // A retired refresh token presented again: the reuse warning must not carry it either.
  t.equal((await app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'refresh_token', refresh_token: first.refresh_token }) })).statusCode, 400)

  const log = lines.join('\n')
  t.ok(lines.length > 20, `the session was logged (${lines.length} lines at trace)`)
  const secrets: Record<string, string> = {
    password: PASSWORD,
    'password, form-encoded': encodeURIComponent(PASSWORD).replaceAll('%20', '+'),
    'wrong password': wrongPassword,
    'Basic credentials': basic
  }
  for (const [name, token] of Object.entries({ 'first access token': first.access_token, 'second access token': second.access_token })) {
    const [, payload, signature] = token.split('.')
    secrets[`${name} claims`] = payload!
    secrets[`${name} signature`] = signature!
  }
  secrets['first refresh token'] = first.refresh_token
  secrets['second refresh token'] = second.refresh_token
  for (const [name, secret] of Object.entries(secrets)) t.notOk(log.includes(secret), `no ${name} in the logs`)
  t.notMatch(log, /Bearer \S/, 'no Authorization value in the logs')

  const entries = lines.map(line => JSON.parse(line) as { level: number, msg: string, username?: string, address?: string })
  const failedLogin = entries.filter(e => e.msg === 'failed login')
  t.equal(failedLogin.length, 1, 'one line for the failed login')
  t.match(failedLogin[0], { level: 30, username: email, address: '127.0.0.1' }, 'at info, with the account and the address')
})

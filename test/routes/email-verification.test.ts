import t from 'tap'
import type { FastifyInstance } from 'fastify'
import { build, createUser, eachDialect, form, login, PASSWORD, testNow } from '../helper.js'
import { linkIn, smtpServer, subjectIs, type Inbox } from '../smtp.js'

const VERIFY = subjectIs('Verify your email address')
const INVALID_TOKEN = 'The verification token is invalid, expired or already used; ask for a new one'

function confirm (app: FastifyInstance, token: string) {
  return app.inject({ method: 'POST', url: '/email-verification/confirm', payload: { token } })
}

async function me (app: FastifyInstance, accessToken: string) {
  return app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${accessToken}` } })
}

async function nextToken (app: FastifyInstance, inbox: Inbox) {
  await app.mail.flush()
  return linkIn(await inbox.next(VERIFY)).token
}

eachDialect(t, 'signup sends a verification email; its link verifies the address', async (t, dialect) => {
  const inbox = await smtpServer(t)
  const app = await build(t, dialect, { env: { SMTP_URL: inbox.url } })
  const user = await createUser(app)
  const { access_token: accessToken } = await login(app)

  const before = await me(app, accessToken)
  t.same(before.json(), { ...user, email_verified: false })

  await app.mail.flush()
  const mail = await inbox.next(VERIFY)
  t.match(mail.to, { text: 'ada@example.com' })
  const { link, token } = linkIn(mail)
  t.match(link, /^http:\/\/auth\.test\/verify-email\?token=[A-Za-z0-9_-]{43}$/)
  t.ok(typeof mail.html === 'string' && mail.html.includes(`href="${link}"`))

  t.equal((await app.inject({ method: 'GET', url: `/verify-email?token=${token}` })).statusCode, 200)
  t.same((await me(app, accessToken)).json().email_verified, false, 'opening the page (a GET) spends nothing')

  const res = await confirm(app, token)
  t.equal(res.statusCode, 204)
  t.same((await me(app, accessToken)).json(), { ...user, email_verified: true })
  t.ok((await app.securityEvents.recent(user.id)).some(e => e.type === 'email_verified'), 'recorded as a security event')

  const spent = await confirm(app, token)
  t.equal(spent.statusCode, 400)
  t.equal(spent.json().detail, INVALID_TOKEN)

  const resend = await app.inject({ method: 'POST', url: '/users/me/email-verification', headers: { authorization: `Bearer ${accessToken}` } })
  t.equal(resend.statusCode, 409, 'nothing to send once verified')
  t.match(resend.json(), { status: 409, detail: 'The email address is already verified' })
})

eachDialect(t, 'asking for a new verification email: 202, supersedes the old one, same hourly limit', async (t, dialect) => {
  let clock = testNow()
  const inbox = await smtpServer(t)
  const app = await build(t, dialect, { env: { SMTP_URL: inbox.url, PASSWORD_RESET_LIMIT: '2' }, now: () => clock })
  await createUser(app)
  let { access_token: accessToken } = await login(app)
  const first = await nextToken(app, inbox)
  const ask = () => app.inject({ method: 'POST', url: '/users/me/email-verification', headers: { authorization: `Bearer ${accessToken}` } })

  const res = await ask()
  t.equal(res.statusCode, 202)
  t.equal(res.body, '')
  const second = await nextToken(app, inbox)
  t.not(second, first)

  t.equal((await ask()).statusCode, 202, 'past the limit (signup + one): still 202')
  await app.mail.flush()
  t.equal(inbox.messages.filter(VERIFY).length, 2, 'and no third email')

  const superseded = await confirm(app, first)
  t.equal(superseded.statusCode, 400, 'the older token is superseded')
  t.equal(superseded.json().detail, INVALID_TOKEN)

  clock += 86_400 * 1000 + 1
  const expired = await confirm(app, second)
  t.equal(expired.statusCode, 400, 'expired after EMAIL_VERIFICATION_TTL')
  t.equal(expired.json().detail, INVALID_TOKEN)

  t.equal((await app.inject({ method: 'POST', url: '/users/me/email-verification' })).statusCode, 401, 'strict authentication')
  accessToken = (await login(app)).access_token
  const third = await ask()
  t.equal(third.statusCode, 202)
  t.equal((await confirm(app, await nextToken(app, inbox))).statusCode, 204, 'a fresh one works')

  t.test('bad tokens', async t => {
    t.equal((await confirm(app, 'never-issued')).json().detail, INVALID_TOKEN)
    t.equal((await app.inject({ method: 'POST', url: '/email-verification/confirm', payload: {} })).statusCode, 400)
    t.equal((await app.inject({ method: 'POST', url: '/email-verification/confirm', payload: { token: '' } })).statusCode, 400)
  })
})

eachDialect(t, 'REQUIRE_VERIFIED_EMAIL: the password grant waits for a verified address', async (t, dialect) => {
  const inbox = await smtpServer(t)
  const app = await build(t, dialect, { env: { SMTP_URL: inbox.url, REQUIRE_VERIFIED_EMAIL: 'true' } })
  await createUser(app)
  const attempt = (password: string) => app.inject({ method: 'POST', url: '/token', ...form({ grant_type: 'password', username: 'ada@example.com', password }) })

  const wrong = await attempt('not the password')
  t.equal(wrong.statusCode, 400)
  t.same(wrong.json(), { error: 'invalid_grant', error_description: 'The username or password is incorrect' }, 'a wrong password learns nothing about verification')

  const unverified = await attempt(PASSWORD)
  t.equal(unverified.statusCode, 400)
  t.same(unverified.json(), { error: 'invalid_grant', error_description: 'The email address is not verified' })

  t.equal((await confirm(app, await nextToken(app, inbox))).statusCode, 204)
  t.equal((await attempt(PASSWORD)).statusCode, 200, 'verified: the login works')
})

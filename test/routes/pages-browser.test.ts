import { existsSync, mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join, resolve } from 'node:path'
import { chromium, type Page } from 'playwright-core'
import t from 'tap'
import { build, createUser, login, PASSWORD } from '../helper.js'
import { linkIn, smtpServer, subjectIs } from '../smtp.js'

/** Debian's chromium; .ci/run installs it. Nothing here downloads a browser. */
const CHROMIUM = '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']
const ARTIFACTS = resolve(import.meta.dirname, '..', 'artifacts')
const NEW_PASSWORD = 'typed into the reset page 9'

const reason = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run does)`
if (reason !== undefined && process.env.CI === 'true') throw new Error(`CI needs the browser test but ${reason}`)

/** Everything the page says on its console, its errors, and CSP violations it reports. */
async function watch (page: Page, base: string) {
  const noise: string[] = []
  const elsewhere: string[] = []
  page.on('console', message => noise.push(`console.${message.type()}: ${message.text()}`))
  page.on('pageerror', err => noise.push(`pageerror: ${err.message}`))
  page.on('requestfailed', request => { if (request.url().startsWith(base)) noise.push(`request failed: ${request.url()}`) })
  await page.route('**/*', route => {
    const url = route.request().url()
    if (url.startsWith(`${base}/`) || url.startsWith('data:')) return route.continue()
    elsewhere.push(url)
    return route.abort()
  })
  return { noise, elsewhere }
}

/** Registered before any script of the page runs: CSP violations land on the console too. */
async function reportViolations (page: Page) {
  await page.addInitScript({
    content: "document.addEventListener('securitypolicyviolation', e => console.error('CSP violation: ' + e.violatedDirective + ' ' + e.blockedURI))"
  })
}

t.test('a person resets a password from the email\'s link, then logs in with the new one', { skip: reason }, async t => {
  const inbox = await smtpServer(t)
  // PUBLIC_URL is set once the port is known: the links must point at this very server.
  const probe = await build(t, 'sqlite', { env: { SMTP_URL: inbox.url } })
  await probe.listen({ port: 0, host: '127.0.0.1' })
  const port = (probe.server.address() as AddressInfo).port
  await probe.close()
  const app = await build(t, 'sqlite', { env: { SMTP_URL: inbox.url, PUBLIC_URL: `http://127.0.0.1:${port}` } })
  await app.listen({ port, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${port}`

  await createUser(app)
  const session = await login(app)
  const res = await fetch(`${base}/password-reset`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'ada@example.com' }) })
  t.equal(res.status, 202)
  await app.mail.flush()
  const { link } = linkIn(await inbox.next(subjectIs('Reset your password')))
  t.ok(link.startsWith(`${base}/reset-password?token=`), 'the link opens this service\'s page')

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
  t.teardown(() => browser.close())
  const page = await browser.newPage()
  page.setDefaultTimeout(20_000)
  const { noise, elsewhere } = await watch(page, base)
  await reportViolations(page)

  const response = await page.goto(link)
  t.equal(response?.status(), 200)
  t.match(response?.headers()['content-security-policy'], /default-src 'none'/)

  await t.test('the new password is set', async t => {
    await page.locator('#new_password').fill(NEW_PASSWORD)
    const [confirmation] = await Promise.all([
      page.waitForResponse(r => r.url() === `${base}/password-reset/confirm`),
      page.getByRole('button', { name: 'Set the new password' }).click()
    ])
    t.equal(confirmation.status(), 204)
    await page.locator('#outcome.done').waitFor()
    t.match(await page.locator('#outcome').innerText(), /Your password has been changed/)
    t.equal(await page.locator('#form').isVisible(), false, 'the form is gone')
    mkdirSync(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: join(ARTIFACTS, 'reset-password-done.png') })
    t.same(noise, [], 'not a line on the console, no page error, no CSP violation')
  })

  // From here on the service refuses requests on purpose, and Chromium logs each refused
  // fetch on the console itself ("Failed to load resource"): those lines, and only those.
  const refused = () => noise.splice(0).filter(line => !/^console\.error: Failed to load resource: the server responded with a status of 400/.test(line))

  await t.test('the link a second time: it says the token is spent', async t => {
    await page.goto(link)
    await page.locator('#new_password').fill('and another passphrase 3')
    await page.getByRole('button', { name: 'Set the new password' }).click()
    await page.locator('#outcome.error').waitFor()
    t.match(await page.locator('#outcome').innerText(), /invalid, expired or already used/)
    t.same(refused(), [], 'nothing on the console but the browser\'s note of the 400')
  })

  await t.test('a weak password is refused in words', async t => {
    await t.resolves(fetch(`${base}/password-reset`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'ada@example.com' }) }))
    await app.mail.flush()
    await page.goto(linkIn(await inbox.next(subjectIs('Reset your password'))).link)
    await page.locator('#new_password').fill('password1234')
    await page.getByRole('button', { name: 'Set the new password' }).click()
    await page.locator('#outcome.error').waitFor()
    t.match(await page.locator('#outcome').innerText(), /This password cannot be used: it is too common/)
    t.equal(await page.locator('#form').isVisible(), true, 'the form stays for another try')
    t.same(refused(), [])
  })

  await t.test('the new password logs in, the old session is over', async t => {
    t.ok(await login(app, 'ada@example.com', NEW_PASSWORD))
    await t.rejects(login(app, 'ada@example.com', PASSWORD))
    const me = await fetch(`${base}/users/me`, { headers: { authorization: `Bearer ${session.access_token}` } })
    t.equal(me.status, 401)
  })

  await t.test('the verification page: a button, then the outcome in words', async t => {
    await app.mail.flush()
    const verification = linkIn(await inbox.next(subjectIs('Verify your email address'))).link
    await page.goto(verification)
    await page.getByRole('button', { name: 'Verify my email address' }).click()
    await page.locator('#outcome.done').waitFor()
    t.match(await page.locator('#outcome').innerText(), /Your email address is verified/)
    const { access_token: accessToken } = await login(app, 'ada@example.com', NEW_PASSWORD)
    const me = await (await fetch(`${base}/users/me`, { headers: { authorization: `Bearer ${accessToken}` } })).json() as { email_verified: boolean }
    t.equal(me.email_verified, true)
    t.same(noise.splice(0), [], 'a clean console')
  })

  await t.test('a link without a token says so', async t => {
    await page.goto(`${base}/reset-password`)
    t.match(await page.locator('#outcome').innerText(), /This link is incomplete/)
  })

  t.same(noise, [], 'no console output, page error or CSP violation')
  t.same(elsewhere, [], 'no request left the service')
})

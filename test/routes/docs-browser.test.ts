import { existsSync, mkdirSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { join, resolve } from 'node:path'
import { chromium, type Locator, type Page } from 'playwright-core'
import t from 'tap'
import { build, PASSWORD } from '../helper.js'

/** Debian's chromium; .ci/run installs it. Nothing here downloads a browser. */
const CHROMIUM = '/usr/bin/chromium'
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync']
const ARTIFACTS = resolve(import.meta.dirname, '..', 'artifacts')
const EMAIL = 'ada@example.com'

/** Opens an operation (unless a deep link already did) and runs it with "Try it out". */
async function tryItOut (page: Page, operationId: string, fill?: (operation: Locator) => Promise<void>) {
  const operation = page.locator(`.opblock[id$="-${operationId}"]`)
  if (!(await operation.getAttribute('class'))!.includes('is-open')) await operation.locator('.opblock-summary').click()
  await operation.getByRole('button', { name: 'Try it out' }).click()
  await fill?.(operation)
  await operation.getByRole('button', { name: 'Execute' }).click()
  const row = operation.locator('.live-responses-table tbody tr.response')
  await row.waitFor()
  return {
    operation,
    status: (await row.locator('.response-col_status').innerText()).trim(),
    body: await row.locator('.response-col_description .microlight').first().innerText()
  }
}

const reason = existsSync(CHROMIUM) ? undefined : `${CHROMIUM} is not installed (apt-get install chromium; .ci/run does)`
if (reason !== undefined && process.env.CI === 'true') throw new Error(`CI needs the browser test but ${reason}`)

t.test('/docs as a person uses it: sign up, Authorize with the password flow, call /users/me', { skip: reason }, async t => {
  const app = await build(t, 'sqlite')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS })
  t.teardown(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  page.setDefaultTimeout(20_000)
  // The page may talk to this service only: anything else is recorded and refused.
  const elsewhere: string[] = []
  await page.route('**/*', route => {
    const url = route.request().url()
    if (url.startsWith(`${base}/`)) return route.continue()
    elsewhere.push(url)
    return route.abort()
  })
  // Everything the browser would show in its console: errors and warnings, uncaught exceptions,
  // and Content-Security-Policy violations (reported by the document's own event, with the
  // directive and what it blocked, since Chromium's console line for them is not always sent).
  const consoleMessages: string[] = []
  page.on('console', msg => {
    if (msg.type() === 'error' || msg.type() === 'warning') consoleMessages.push(`${msg.type()}: ${msg.text()}`)
  })
  page.on('pageerror', err => consoleMessages.push(`pageerror: ${err.message}`))
  await page.exposeFunction('reportCspViolation', (violation: string) => consoleMessages.push(`csp: ${violation}`))
  // A string: it runs in the page, where `document` is (this project compiles without the DOM lib).
  await page.addInitScript(`document.addEventListener('securitypolicyviolation', e => reportCspViolation(
    e.effectiveDirective + ' blocked ' + e.blockedURI + ' at ' + e.sourceFile + ':' + e.lineNumber))`)

  await page.goto(`${base}/docs`)
  await t.test('the page renders with its top bar and the operations', async t => {
    // Swagger UI draws its SVG logo (the hashed inline style) and @fastify/swagger-ui swaps in an image.
    await page.locator('.topbar a.link img').waitFor()
    await page.locator('.opblock').first().waitFor()
    const operations = Object.values(app.swagger().paths ?? {}).flatMap(item => Object.keys(item ?? {}))
    t.equal(await page.locator('.opblock').count(), operations.length, 'one block per operation of the document')
    mkdirSync(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: join(ARTIFACTS, 'docs-top.png') })
  })

  await t.test('create an account with "Try it out"', async t => {
    const { status, body } = await tryItOut(page, 'createUser', async operation => {
      await operation.locator('textarea.body-param__text').fill(JSON.stringify({ email: 'Ada@Example.com', password: PASSWORD }))
    })
    t.equal(status, '201')
    t.match(JSON.parse(body), { id: Number, email: EMAIL })
  })

  await t.test('Authorize: the password flow against /token', async t => {
    await page.locator('.auth-wrapper button.authorize').click()
    const modal = page.locator('.modal-ux')
    await modal.locator('#oauth_username').fill(EMAIL)
    await modal.locator('#oauth_password').fill(PASSWORD)
    const [tokenResponse] = await Promise.all([
      page.waitForResponse(res => res.url() === `${base}/token`),
      modal.locator('.auth-btn-wrapper button.authorize').click()
    ])
    t.equal(tokenResponse.status(), 200)
    t.equal(tokenResponse.request().headers()['content-type'], 'application/x-www-form-urlencoded')
    await modal.locator('.auth-btn-wrapper button', { hasText: 'Logout' }).waitFor()
    await modal.locator('.auth-btn-wrapper button.btn-done').click()
    t.match(await page.locator('.auth-wrapper button.authorize').getAttribute('class'), /\blocked\b/)
  })

  await t.test('GET /users/me answers 200 with the email', async t => {
    const { operation, status, body } = await tryItOut(page, 'getCurrentUser')
    t.equal(status, '200')
    t.match(JSON.parse(body), { email: EMAIL })
    mkdirSync(ARTIFACTS, { recursive: true })
    await operation.locator('.live-responses-table').scrollIntoViewIfNeeded()
    await page.screenshot({ path: join(ARTIFACTS, 'docs-users-me.png') })
  })

  await t.test('the authorization survives a reload', async t => {
    await page.reload()
    await page.locator('.opblock').first().waitFor()
    t.match(await page.locator('.auth-wrapper button.authorize').getAttribute('class'), /\blocked\b/)
    const me = await tryItOut(page, 'getCurrentUser')
    t.equal(me.status, '200', 'no new login')
    t.match(JSON.parse(me.body), { email: EMAIL })
    const status = await tryItOut(page, 'getAuthStatus')
    t.same(JSON.parse(status.body), { logged_in: true })
    await status.operation.locator('.live-responses-table').scrollIntoViewIfNeeded()
    await page.screenshot({ path: join(ARTIFACTS, 'docs-after-reload.png') })
  })

  t.same(elsewhere, [], 'no request left the service')
  t.same(consoleMessages, [], 'no console error or warning, no uncaught exception, no CSP violation')
})

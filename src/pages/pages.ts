import { createHash } from 'node:crypto'
import { escapeHtml } from '../html.js'
import { Password } from '../schemas/users.js'

/**
 * The two pages the default links in emails open. Each is one document with no external asset:
 * its style and script are inline and fixed, allowed by their hashes in a CSP that allows
 * nothing else but calls to this origin. The token never leaves the page's address except in
 * the POST the person makes (a GET never spends a token: mail scanners open links).
 */

const STYLE = `
body { font-family: system-ui, sans-serif; line-height: 1.5; margin: 0; padding: 2rem 1rem; color: #1b1b1b; background: #f6f6f4; }
main { max-width: 26rem; margin: 0 auto; background: #fff; padding: 1.5rem 2rem; border-radius: 8px; box-shadow: 0 1px 3px rgba(0,0,0,.15); }
h1 { font-size: 1.4rem; margin-top: 0; }
label { display: block; font-weight: 600; margin-bottom: .25rem; }
input { width: 100%; box-sizing: border-box; padding: .5rem; font-size: 1rem; border: 1px solid #888; border-radius: 4px; }
.hint { font-size: .9rem; color: #555; margin: .25rem 0 1rem; }
button { font-size: 1rem; padding: .55rem 1.1rem; border: 0; border-radius: 4px; background: #1f5fbf; color: #fff; cursor: pointer; }
button:disabled { background: #8aa6d6; cursor: default; }
#outcome { margin-top: 1rem; font-weight: 600; }
#outcome.error { color: #a8071a; }
#outcome.done { color: #1a6b2a; }
`.trim()

/** Shared by both pages: the token from the address, a POST to the endpoint, and the outcome in words. */
const COMMON_SCRIPT = `
'use strict'
const token = new URLSearchParams(window.location.search).get('token')
const form = document.getElementById('form')
const button = form.querySelector('button')
const outcome = document.getElementById('outcome')
function say (text, kind) {
  outcome.textContent = text
  outcome.className = kind
}
async function post (body) {
  const res = await fetch(form.dataset.endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    credentials: 'omit'
  })
  let problem = {}
  if (res.status !== 204) problem = await res.json().catch(() => ({}))
  return { status: res.status, problem }
}
function failed (status, problem) {
  if (status === 429) return 'Too many attempts from here: try again in a few minutes.'
  if (status === 400 && typeof problem.detail === 'string') return problem.detail + '.'
  return 'The service could not do this right now; try again in a moment.'
}
/**
 * On submit: says busy, posts body(), then says done on 204; otherwise explain may say
 * why, or the common words for the status do (a 400 means the token is spent: the form goes).
 */
function onSubmit (busy, body, done, explain = () => false) {
  form.addEventListener('submit', async event => {
    event.preventDefault()
    button.disabled = true
    say(busy, '')
    try {
      const { status, problem } = await post(body())
      if (status === 204) {
        form.hidden = true
        say(done, 'done')
      } else if (!explain(status, problem)) {
        if (status === 400) form.hidden = true
        say(failed(status, problem), 'error')
      }
    } catch {
      say('The service could not be reached; check the connection and try again.', 'error')
    } finally {
      button.disabled = false
    }
  })
}
if (!token) {
  form.hidden = true
  say('This link is incomplete: it carries no token. Open the link from the email again, or ask for a new email.', 'error')
}
`.trim()

const RESET_SCRIPT = `${COMMON_SCRIPT}
onSubmit('Saving the new password…',
  () => ({ token, new_password: form.elements.new_password.value }),
  'Your password has been changed, and every session of the account has been signed out. Log in with the new password.',
  (status, problem) => {
    if (status !== 400 || !Array.isArray(problem.errors)) return false
    say('This password cannot be used: it ' + problem.errors.map(e => e.message).join('; ') + '.', 'error')
    return true
  })
`

const VERIFY_SCRIPT = `${COMMON_SCRIPT}
onSubmit('Verifying…', () => ({ token }), 'Your email address is verified. You can close this page.')
`

function sourceHash (source: string): string {
  return `'sha256-${createHash('sha256').update(source).digest('base64')}'`
}

function csp (script: string): string {
  return [
    "default-src 'none'",
    `script-src ${sourceHash(script)}`,
    `style-src ${sourceHash(STYLE)}`,
    "connect-src 'self'",
    "form-action 'self'",
    // The browser asks for /favicon.ico unless the page names an icon; this one is empty.
    'img-src data:',
    "base-uri 'none'",
    "frame-ancestors 'none'"
  ].join('; ')
}

export interface Page {
  html: string
  csp: string
}

function page (title: string, body: string, script: string): Page {
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<meta name="robots" content="noindex">
<link rel="icon" href="data:,">
<title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
${body}
<p id="outcome" role="status" aria-live="polite"></p>
<noscript><p>This page needs JavaScript to send the form.</p></noscript>
</main>
<script>${script}</script>
</body>
</html>
`
  return { html, csp: csp(script) }
}

/** `basePath`: the path of PUBLIC_URL, so the pages call the API where clients do. */
export function resetPasswordPage (basePath: string): Page {
  const { minLength, maxLength } = Password
  return page('Choose a new password', `<form id="form" data-endpoint="${escapeHtml(`${basePath}/password-reset/confirm`)}">
<input type="text" name="username" autocomplete="username" hidden>
<label for="new_password">New password</label>
<input id="new_password" name="new_password" type="password" autocomplete="new-password" minlength="${minLength}" maxlength="${maxLength}" required>
<p class="hint">${minLength} to ${maxLength} characters, not a common password. Every session of the account is signed out when it changes.</p>
<button type="submit">Set the new password</button>
</form>`, RESET_SCRIPT)
}

export function verifyEmailPage (basePath: string): Page {
  return page('Verify your email address', `<form id="form" data-endpoint="${escapeHtml(`${basePath}/email-verification/confirm`)}">
<p>Press the button to confirm that this email address is yours.</p>
<button type="submit">Verify my email address</button>
</form>`, VERIFY_SCRIPT)
}

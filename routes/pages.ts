import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { HTML_HEADERS } from '../src/html.js'
import { commonProblems, problem } from '../src/schemas/components.js'
import { resetPasswordPage, verifyEmailPage, type Page } from '../src/pages/pages.js'

const TokenQuery = Type.Object({
  token: Type.Optional(Type.String({ description: 'The token from the email. The page reads it; opening the page spends nothing.' }))
})

function html (description: string) {
  return Type.Unsafe<string>({ description, content: { 'text/html': { schema: { type: 'string' } } } })
}

/** The HTML pages the default links of emails open (PASSWORD_RESET_URL, EMAIL_VERIFICATION_URL). */
const pages: FastifyPluginAsyncTypebox = async (fastify) => {
  const basePath = new URL(fastify.config.publicUrl).pathname.replace(/\/+$/, '')
  const routes: Array<[string, Page, { operationId: string, summary: string, description: string }]> = [
    ['/reset-password', resetPasswordPage(basePath), {
      operationId: 'getResetPasswordPage',
      summary: 'The page a reset link opens: a form for the new password',
      description: 'A self-contained HTML page (no external assets, a strict CSP) with a form that sends the token from its address and the new password to `POST /password-reset/confirm`, then says what happened. Opening it spends nothing.'
    }],
    ['/verify-email', verifyEmailPage(basePath), {
      operationId: 'getVerifyEmailPage',
      summary: 'The page a verification link opens: a button that verifies',
      description: 'A self-contained HTML page (no external assets, a strict CSP) whose button sends the token from its address to `POST /email-verification/confirm`, then says what happened. Opening it spends nothing: mail scanners open links.'
    }]
  ]

  for (const [url, page, doc] of routes) {
    fastify.get(url, {
      schema: {
        ...doc,
        tags: ['pages'],
        querystring: TokenQuery,
        produces: ['text/html'],
        response: {
          200: html('The page.'),
          400: problem('The query string is not valid (`token` given more than once).'),
          ...commonProblems
        }
      }
    }, async (_request, reply) => reply
      .headers(HTML_HEADERS)
      .header('content-security-policy', page.csp)
      .header('cache-control', 'no-store')
      .type('text/html; charset=utf-8')
      .send(page.html))
  }
}

export default pages

import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { emailTokens, type EmailTokens } from '../src/accounts/email-tokens.js'

declare module 'fastify' {
  interface FastifyInstance {
    emailTokens: EmailTokens
  }
}

/** The password-reset and email-verification flows (src/accounts/email-tokens.ts), wired to this app. */
async function emailTokensPlugin (fastify: FastifyInstance) {
  fastify.decorate('emailTokens', emailTokens({
    store: fastify.store,
    config: fastify.config,
    now: fastify.now,
    wake: () => fastify.mail.wake()
  }))
}

export default fp(emailTokensPlugin, { name: 'email-tokens', dependencies: ['config', 'store', 'mailer'] })

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { acceptOnly } from '../plugins/formbody.js'
import { normaliseEmail } from '../src/accounts/email.js'
import { InvalidEmailToken, InvalidField, ServiceUnavailable } from '../src/errors.js'
import { commonProblems, mailUnavailableProblem, problem, ref, RETRY_AFTER, unavailableProblem } from '../src/schemas/components.js'
import { NoContent } from '../src/schemas/problems.js'

export const INVALID_RESET_TOKEN = 'The reset token is invalid, expired or already used; ask for a new one'

async function normaliseEmailField (request: FastifyRequest) {
  const body = request.body as Record<string, unknown> | null
  if (body !== null && typeof body === 'object' && typeof body.email === 'string') body.email = normaliseEmail(body.email)
}

async function normaliseNewPassword (request: FastifyRequest) {
  const body = request.body as Record<string, unknown> | null
  if (body !== null && typeof body === 'object' && typeof body.new_password === 'string') body.new_password = body.new_password.normalize('NFC')
}

const passwordReset: FastifyPluginAsyncTypebox = async (fastify) => {
  const { emailTokens, loginLimits, mail, passwords, securityEvents } = fastify
  /** Accounts sent a reset email by a request, recorded once the answer is out. */
  const requested = new WeakMap<FastifyRequest, number>()

  fastify.post('/password-reset', {
    onRequest: acceptOnly('application/json'),
    preValidation: normaliseEmailField,
    // After the answer: the event is recorded for existing accounts only, which must not show in
    // the time the answer takes.
    onResponse: async (request) => {
      const userId = requested.get(request)
      if (userId !== undefined) await securityEvents.record(userId, 'password_reset_requested', request)
    },
    schema: {
      operationId: 'requestPasswordReset',
      tags: ['account'],
      summary: 'Forgot password: email a reset link',
      description: 'Always `202` with an empty body for a well-formed email, in the same time whether or not an account has it. When one does, it is sent a link to `PASSWORD_RESET_URL` carrying a single-use token valid `PASSWORD_RESET_TTL` seconds, which supersedes any earlier one; at most `PASSWORD_RESET_LIMIT` such emails per account per hour (further requests send nothing). Each request counts against the failed-login limit of the client address.',
      body: ref('PasswordResetRequest'),
      response: {
        202: NoContent('Accepted: if an account has this email, a reset link is on its way.'),
        400: problem('The email is not an email address; `errors` says so.'),
        413: problem('The body is larger than 16 KiB.'),
        415: problem('The body is not JSON.'),
        ...commonProblems,
        429: problem('Too many requests from this address: past `RATE_LIMIT_PER_MINUTE`, or past the failed-login limit of the address (`LOGIN_LIMIT_PER_ADDRESS` in `LOGIN_LIMIT_WINDOW`).', RETRY_AFTER),
        ...mailUnavailableProblem
      }
    }
  }, async (request, reply) => {
    if (!mail.available) throw new ServiceUnavailable('Email cannot be sent: the service has no SMTP server configured')
    await loginLimits.checkAddress(request.ip)
    const { outcome, userId } = await emailTokens.requestPasswordReset(request.body.email, loginLimits.addressSubject(request.ip))
    if (userId !== undefined) requested.set(request, userId)
    request.log.info({ outcome }, 'password reset requested')
    return reply.code(202).send()
  })

  fastify.post('/password-reset/confirm', {
    onRequest: acceptOnly('application/json'),
    preValidation: normaliseNewPassword,
    schema: {
      operationId: 'confirmPasswordReset',
      tags: ['account'],
      summary: 'Set a new password with a reset token',
      description: 'The token from the reset link and the new password (the signup policy applies). The password is changed, every session of the account ends (refresh tokens revoked, access tokens refused), the token is spent, and the failed-login count of the account is cleared. Of two uses of one token exactly one succeeds.',
      body: ref('PasswordResetConfirmation'),
      response: {
        204: NoContent('The password is changed and every session has ended: log in with the new password.'),
        400: problem('The token is unknown, expired, spent or superseded (one description for all), or the new password is outside the policy (with `errors`).'),
        413: problem('The body is larger than 16 KiB.'),
        415: problem('The body is not JSON.'),
        ...commonProblems,
        ...unavailableProblem
      }
    }
  }, async (request, reply) => {
    const { token, new_password: newPassword } = request.body
    if (passwords.isCommon(newPassword)) throw new InvalidField('new_password', 'is too common: it appears on lists of breached passwords')
    const reset = await emailTokens.resetPassword(token, await passwords.hash(newPassword))
    if (reset === undefined) throw new InvalidEmailToken(INVALID_RESET_TOKEN)
    await loginLimits.clear(reset.email)
    await securityEvents.record(reset.userId, 'password_reset', request)
    request.log.info({ userId: reset.userId }, 'password reset: every session ended')
    return reply.code(204).send()
  })
}

export default passwordReset

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { acceptOnly } from '../plugins/formbody.js'
import { EmailAlreadyVerified, InvalidEmailToken, ServiceUnavailable } from '../src/errors.js'
import { authenticationProblems, commonProblems, mailUnavailableProblem, problem, ref, STRICT_AUTH, unavailableProblem } from '../src/schemas/components.js'
import { NoContent } from '../src/schemas/problems.js'

export const INVALID_VERIFICATION_TOKEN = 'The verification token is invalid, expired or already used; ask for a new one'

const emailVerification: FastifyPluginAsyncTypebox = async (fastify) => {
  const { emailTokens, mail, securityEvents } = fastify

  fastify.post('/email-verification/confirm', {
    onRequest: acceptOnly('application/json'),
    schema: {
      operationId: 'confirmEmailVerification',
      tags: ['account'],
      summary: 'Verify the email address with the token from a verification email',
      description: 'The token from the link of a verification email (valid `EMAIL_VERIFICATION_TTL` seconds, single use, superseded by a newer one). Afterwards `GET /users/me` says `"email_verified": true`.',
      body: ref('EmailVerificationConfirmation'),
      response: {
        204: NoContent('The email address is verified.'),
        400: problem('The token is unknown, expired, spent or superseded (one description for all), or missing.'),
        413: problem('The body is larger than 16 KiB.'),
        415: problem('The body is not JSON.'),
        ...commonProblems,
        ...unavailableProblem
      }
    }
  }, async (request, reply) => {
    const userId = await emailTokens.verifyEmail(request.body.token)
    if (userId === undefined) throw new InvalidEmailToken(INVALID_VERIFICATION_TOKEN)
    await securityEvents.record(userId, 'email_verified', request)
    request.log.info({ userId }, 'email address verified')
    return reply.code(204).send()
  })

  fastify.post('/users/me/email-verification', {
    preHandler: fastify.authenticate,
    schema: {
      operationId: 'sendEmailVerification',
      tags: ['account'],
      summary: 'Send a new verification email',
      description: 'Sends the logged-in user a new verification link, which supersedes the earlier ones; at most `PASSWORD_RESET_LIMIT` verification emails per account per hour (further requests answer `202` and send nothing).',
      security: STRICT_AUTH,
      response: {
        202: NoContent('A verification email is on its way (unless the hourly limit is reached).'),
        ...authenticationProblems,
        409: problem('The email address is already verified.'),
        ...commonProblems,
        ...mailUnavailableProblem
      }
    }
  }, async (request, reply) => {
    const user = request.user!
    if (user.emailVerifiedAt !== null) throw new EmailAlreadyVerified()
    if (!mail.available) throw new ServiceUnavailable('Email cannot be sent: the service has no SMTP server configured')
    const { outcome } = await emailTokens.sendVerification(user.email)
    request.log.info({ userId: user.id, outcome }, 'verification email requested')
    return reply.code(202).send()
  })
}

export default emailVerification

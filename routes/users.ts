import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import { acceptOnly } from '../plugins/formbody.js'
import { normaliseEmail } from '../src/accounts/email.js'
import { InvalidField } from '../src/errors.js'
import { authenticationProblems, commonProblems, json, problem, ref, STRICT_AUTH, unavailableProblem } from '../src/schemas/components.js'
import type { CurrentUser, User } from '../src/schemas/users.js'
import type { UserRecord } from '../src/store/store.js'

/** Runs before validation, so the limits apply to what will be stored and hashed. */
async function normaliseCredentials (request: FastifyRequest) {
  const body = request.body as Record<string, unknown> | null
  if (body === null || typeof body !== 'object') return
  if (typeof body.email === 'string') body.email = normaliseEmail(body.email)
  if (typeof body.password === 'string') body.password = body.password.normalize('NFC')
}

export function userJson (user: UserRecord): User {
  return { id: user.id, email: user.email, created_at: user.createdAt.toISOString() }
}

/** Written out rather than spread from userJson: the spread cost `me` about 8 µs a request. */
export function currentUserJson (user: UserRecord): CurrentUser {
  return { id: user.id, email: user.email, created_at: user.createdAt.toISOString(), email_verified: user.emailVerifiedAt !== null }
}

const users: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/users', {
    onRequest: acceptOnly('application/json'),
    preValidation: normaliseCredentials,
    schema: {
      operationId: 'createUser',
      tags: ['users'],
      summary: 'Create an account',
      description: 'The email is trimmed and lower-cased; the password must be 8 to 128 characters (after NFC normalisation) and not a common one. The address is sent a verification email. Then log in at `POST /token`.',
      body: ref('CreateUserBody'),
      response: {
        201: json('User', 'The account was created.', { Location: Type.String({ description: '/users/me' }) }),
        400: problem('The email or the password is not acceptable; `errors` says which and why.'),
        409: problem('An account with this email already exists.'),
        413: problem('The body is larger than 16 KiB.'),
        415: problem('The body is not JSON.'),
        ...commonProblems,
        ...unavailableProblem
      }
    }
  }, async (request, reply) => {
    const { email, password } = request.body
    if (fastify.passwords.isCommon(password)) throw new InvalidField('password', 'is too common: it appears on lists of breached passwords')
    const passwordHash = await fastify.passwords.hash(password)
    const user = await fastify.store.createUser({ email, passwordHash, createdAt: new Date(fastify.now()) })
    fastify.metrics.signups.inc()
    request.log.info({ userId: user.id }, 'account created')
    if (fastify.mail.available) {
      // Queued beside the answer, not before it: a slow database must not hold a signup that has
      // already committed. The account exists either way, and a verification email that could
      // not be queued can be asked for again (POST /users/me/email-verification).
      fastify.mail.track(fastify.emailTokens.sendVerification(user.email)
        .catch(err => request.log.warn({ err, userId: user.id }, 'the verification email could not be queued')))
    }
    await fastify.securityEvents.record(user.id, 'signup', request)
    return reply.code(201).header('location', '/users/me').send(userJson(user))
  })

  fastify.get('/users/me', {
    preHandler: fastify.authenticate,
    schema: {
      operationId: 'getCurrentUser',
      tags: ['users'],
      summary: 'The logged-in user',
      description: 'Needs a valid access token (strict authentication).',
      security: STRICT_AUTH,
      response: {
        200: json('CurrentUser', 'The user the access token was issued to.'),
        ...authenticationProblems,
        ...commonProblems,
        ...unavailableProblem
      }
    }
  }, async (request) => currentUserJson(request.user!))
}

export default users

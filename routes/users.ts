import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { Type } from '@sinclair/typebox'
import { acceptOnly } from '../plugins/formbody.js'
import { InvalidField } from '../src/errors.js'
import { authenticationProblems, commonProblems, json, problem, ref, STRICT_AUTH, unavailableProblem } from '../src/schemas/components.js'
import type { User } from '../src/schemas/users.js'
import type { UserRecord } from '../src/store/store.js'

export function normaliseEmail (email: string): string {
  return email.trim().toLowerCase()
}

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

const users: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/users', {
    onRequest: acceptOnly('application/json'),
    preValidation: normaliseCredentials,
    schema: {
      operationId: 'createUser',
      tags: ['users'],
      summary: 'Create an account',
      description: 'The email is trimmed and lower-cased; the password must be 8 to 128 characters (after NFC normalisation) and not a common one. Then log in at `POST /token`.',
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
        200: json('User', 'The user the access token was issued to.'),
        ...authenticationProblems,
        ...commonProblems,
        ...unavailableProblem
      }
    }
  }, async (request) => userJson(request.user!))
}

export default users

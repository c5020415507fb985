import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { acceptOnly } from '../plugins/formbody.js'
import { InvalidField } from '../src/errors.js'
import { Problem } from '../src/schemas/problems.js'
import { CreateUserBody, User } from '../src/schemas/users.js'
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
      body: CreateUserBody,
      response: { 201: User, 400: Problem, 409: Problem, 413: Problem, 415: Problem }
    }
  }, async (request, reply) => {
    const { email, password } = request.body
    if (fastify.passwords.isCommon(password)) throw new InvalidField('password', 'is too common: it appears on lists of breached passwords')
    const passwordHash = await fastify.passwords.hash(password)
    const user = await fastify.store.createUser({ email, passwordHash, createdAt: new Date(fastify.now()) })
    request.log.info({ userId: user.id }, 'account created')
    return reply.code(201).header('location', '/users/me').send(userJson(user))
  })

  fastify.get('/users/me', {
    preHandler: fastify.authenticate,
    schema: {
      response: { 200: User, 400: Problem, 401: Problem }
    }
  }, async (request) => userJson(request.user!))
}

export default users

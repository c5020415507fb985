import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { OPTIONAL_AUTH, commonProblems, json, unavailableProblem } from '../src/schemas/components.js'

const status: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/auth/status', {
    preHandler: fastify.authenticateOptional,
    schema: {
      operationId: 'getAuthStatus',
      tags: ['auth'],
      summary: 'Whether the caller is logged in',
      description: 'Soft authentication: the token is optional, and a missing, invalid or expired one answers `{"logged_in": false}`, never `401`. `true` exactly when `GET /users/me` would answer `200`.',
      security: OPTIONAL_AUTH,
      response: {
        200: json('AuthStatus', 'Logged in or not.'),
        ...commonProblems,
        ...unavailableProblem
      }
    }
  // Not async: Fastify sends a value a handler returns, and this one has nothing to wait for.
  }, (request) => ({ logged_in: request.user !== null }))
}

export default status

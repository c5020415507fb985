import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { endAllSessions } from '../src/accounts/lifecycle.js'
import { authenticationProblems, commonProblems, STRICT_AUTH, unavailableProblem } from '../src/schemas/components.js'
import { NoContent } from '../src/schemas/problems.js'

const logout: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/logout', {
    preHandler: fastify.authenticate,
    schema: {
      operationId: 'logout',
      tags: ['auth'],
      summary: 'Log out everywhere',
      description: 'Ends every session of the user: every refresh token is revoked, and every access token issued until now is refused from now on, by every instance at once. A login right after works.',
      security: STRICT_AUTH,
      response: {
        204: NoContent('Every session of the user has ended.'),
        ...authenticationProblems,
        ...commonProblems,
        ...unavailableProblem
      }
    }
  }, async (request, reply) => {
    await endAllSessions(fastify, request.user!.id, request)
    request.log.info({ userId: request.user!.id }, 'logged out everywhere')
    return reply.code(204).send()
  })
}

export default logout

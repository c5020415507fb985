import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { NoContent, Problem } from '../src/schemas/problems.js'

const logout: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/logout', {
    preHandler: fastify.authenticate,
    schema: {
      response: { 204: NoContent('Every session of the user has ended.'), 400: Problem, 401: Problem }
    }
  }, async (request, reply) => {
    await fastify.sessions.end(request.user!.id)
    request.log.info({ userId: request.user!.id }, 'logged out everywhere')
    return reply.code(204).send()
  })
}

export default logout

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { AuthStatus } from '../src/schemas/status.js'

const status: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/auth/status', {
    preHandler: fastify.authenticateOptional,
    schema: {
      response: { 200: AuthStatus }
    }
  }, async (request) => ({ logged_in: request.user !== null }))
}

export default status

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { endSession } from '../src/accounts/lifecycle.js'
import { encodeSessionId } from '../src/accounts/session-id.js'
import { authenticationProblems, commonProblems, json, problem, STRICT_AUTH, unavailableProblem } from '../src/schemas/components.js'
import { NoContent } from '../src/schemas/problems.js'

const sessions: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/users/me/sessions', {
    preHandler: fastify.authenticate,
    schema: {
      operationId: 'listSessions',
      tags: ['account'],
      summary: 'The signed-in devices: every live session, newest first',
      description: 'One entry per login (a refresh-token family) that has not ended or expired. `current` marks the session of the access token that asks.',
      security: STRICT_AUTH,
      response: {
        200: json('SessionList', 'The live sessions, newest first.'),
        ...authenticationProblems,
        ...commonProblems,
        ...unavailableProblem
      }
    }
  }, async (request) => {
    const user = request.user!
    const list = await fastify.sessions.list(user.id)
    return {
      sessions: list.map(session => {
        const id = encodeSessionId(session.id)
        return {
          id,
          created_at: new Date(session.createdAt).toISOString(),
          last_used_at: new Date(session.lastUsedAt).toISOString(),
          ip: session.ip,
          user_agent: session.userAgent,
          current: id === request.sessionId
        }
      })
    }
  })

  fastify.delete('/users/me/sessions/:id', {
    preHandler: fastify.authenticate,
    schema: {
      operationId: 'endSession',
      tags: ['account'],
      summary: 'End one session (sign a device out)',
      description: 'Its refresh tokens are revoked and its access tokens refused at once, on every instance. Ending the current session is a logout of this device only.',
      security: STRICT_AUTH,
      params: Type.Object({ id: Type.String({ description: 'A session `id` from `GET /users/me/sessions`.' }) }),
      response: {
        204: NoContent('The session has ended.'),
        ...authenticationProblems,
        404: problem('No live session of the user has this id: unknown, already ended, or another user\'s (the same answer for each).'),
        ...commonProblems,
        ...unavailableProblem
      }
    }
  }, async (request, reply) => {
    await endSession(fastify, request.user!.id, request.params.id, request)
    return reply.code(204).send()
  })
}

export default sessions

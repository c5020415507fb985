import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { eventJson } from '../src/accounts/events.js'
import { authenticationProblems, commonProblems, json, STRICT_AUTH, unavailableProblem } from '../src/schemas/components.js'

const events: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/users/me/events', {
    preHandler: fastify.authenticate,
    schema: {
      operationId: 'listSecurityEvents',
      tags: ['account'],
      summary: 'Recent security activity on the account',
      description: 'Logins and failed logins, lockouts, logouts, ended sessions, password changes and resets, email verification, and the operator\'s actions: the latest 50 at most, newest first, kept `AUDIT_RETENTION_DAYS` (90 by default).',
      security: STRICT_AUTH,
      response: {
        200: json('SecurityEventList', 'The latest events, newest first.'),
        ...authenticationProblems,
        ...commonProblems,
        ...unavailableProblem
      }
    }
  }, async (request) => {
    const recent = await fastify.securityEvents.recent(request.user!.id)
    return {
      events: recent.map(eventJson)
    }
  })
}

export default events

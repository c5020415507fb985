import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { acceptOnly } from '../plugins/formbody.js'
import { InvalidRequest } from '../src/errors.js'
import { NoContent } from '../src/schemas/problems.js'
import { OAuthError, RevocationRequest } from '../src/schemas/tokens.js'
import { param } from './token.js'

/**
 * RFC 7009. Refresh tokens are revoked with their whole family. Access tokens are
 * self-contained JWTs that expire within minutes; revoking one alone is not supported
 * (POST /logout ends them all), and §2.2 still wants a 200 for them.
 */
const revoke: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.post('/revoke', {
    onRequest: acceptOnly('application/x-www-form-urlencoded'),
    config: { oauth: true },
    schema: {
      body: RevocationRequest,
      response: {
        200: NoContent('Revoked, or not a token this service knows: the answer is the same (RFC 7009 §2.2).'),
        400: OAuthError,
        413: OAuthError,
        415: OAuthError
      }
    }
  }, async (request, reply) => {
    const token = param(request.body.token)
    if (token === undefined) throw new InvalidRequest('The token parameter is missing')
    await fastify.sessions.revoke(token)
    return reply.code(200).send()
  })
}

export default revoke

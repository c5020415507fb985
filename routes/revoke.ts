import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { acceptOnly } from '../plugins/formbody.js'
import { InvalidRequest } from '../src/errors.js'
import { commonOAuthErrors, oauthError, ref } from '../src/schemas/components.js'
import { NoContent } from '../src/schemas/problems.js'
import { param } from '../src/oauth-params.js'

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
      operationId: 'revokeToken',
      tags: ['oauth'],
      summary: 'Revoke a refresh token (RFC 7009)',
      description: 'A refresh token is revoked with its whole family. Any other token — an access token, an unknown or malformed one — gets the same empty `200`, as RFC 7009 §2.2 asks; access tokens end with `POST /logout` or when they expire. `token_type_hint` is accepted and not needed.',
      consumes: ['application/x-www-form-urlencoded'],
      body: ref('RevocationRequest'),
      response: {
        200: NoContent('Revoked, or not a token this service knows: the answer is the same, with an empty body.'),
        400: oauthError('`invalid_request`: the `token` parameter is missing or empty.'),
        413: oauthError('`invalid_request`: the body is larger than 16 KiB.'),
        415: oauthError('`invalid_request`: the body is not a form (application/x-www-form-urlencoded).'),
        ...commonOAuthErrors
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

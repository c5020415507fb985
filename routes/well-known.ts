import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'
import { NoPublicKeys } from '../src/errors.js'
import { json, problem } from '../src/schemas/components.js'
import type { AuthorizationServerMetadata } from '../src/schemas/discovery.js'

/** Long enough to spare the service, short enough that verifiers see a rotation soon. */
const JWKS_MAX_AGE = 300
const METADATA_MAX_AGE = 3600

const cacheControl = (seconds: number) => ({
  'Cache-Control': Type.String({ description: `public, max-age=${seconds}` })
})

const wellKnown: FastifyPluginAsyncTypebox = async (fastify) => {
  const { publicUrl, jwt } = fastify.config
  const { jwks } = fastify.accessTokens

  /** @see https://www.rfc-editor.org/rfc/rfc8414#section-2 */
  const metadata: AuthorizationServerMetadata = {
    issuer: jwt.issuer,
    token_endpoint: `${publicUrl}/token`,
    revocation_endpoint: `${publicUrl}/revoke`,
    ...(jwks === null ? {} : { jwks_uri: `${publicUrl}/.well-known/jwks.json` }),
    grant_types_supported: ['password', 'refresh_token'],
    // No authorization endpoint, so no response type: the list is honestly empty.
    response_types_supported: [],
    // Clients are public: client_id is accepted and ignored, and no client authenticates.
    token_endpoint_auth_methods_supported: ['none'],
    revocation_endpoint_auth_methods_supported: ['none'],
    scopes_supported: [],
    service_documentation: `${publicUrl}/docs`
  }

  fastify.get('/.well-known/oauth-authorization-server', {
    schema: {
      operationId: 'getAuthorizationServerMetadata',
      tags: ['discovery'],
      summary: 'OAuth 2.0 authorization server metadata (RFC 8414)',
      description: 'Where the token and revocation endpoints are, which grants they take, and, with an asymmetric signing algorithm, where the public keys are. URLs derive from `PUBLIC_URL`.',
      response: { 200: json('AuthorizationServerMetadata', 'The metadata.', cacheControl(METADATA_MAX_AGE)) }
    }
  }, async (request, reply) => {
    reply.header('cache-control', `public, max-age=${METADATA_MAX_AGE}`)
    return metadata
  })

  fastify.get('/.well-known/jwks.json', {
    schema: {
      operationId: 'getJwks',
      tags: ['discovery'],
      summary: 'The public keys that verify access tokens (JWKS)',
      description: 'Each key carries the `kid` that tokens name in their header, its `alg`, and `use: "sig"`: the current signing key first, then retired keys still accepted. Resource servers verify tokens with these alone.',
      response: {
        200: json('JsonWebKeySet', 'The key set.', cacheControl(JWKS_MAX_AGE)),
        404: problem('Tokens are signed with HS256, a shared secret: there is no public key.')
      }
    }
  }, async (request, reply) => {
    if (jwks === null) throw new NoPublicKeys()
    reply.header('cache-control', `public, max-age=${JWKS_MAX_AGE}`)
    return jwks
  })
}

export default wellKnown

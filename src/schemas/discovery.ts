import { Type, type Static } from '@sinclair/typebox'

const Url = (description: string) => Type.String({ format: 'uri', description })

/** @see https://www.rfc-editor.org/rfc/rfc8414#section-2 */
export const AuthorizationServerMetadata = Type.Object({
  issuer: Url('The `iss` of every access token.'),
  token_endpoint: Url('Where the password and refresh grants are exchanged for tokens.'),
  revocation_endpoint: Url('RFC 7009 token revocation.'),
  jwks_uri: Type.Optional(Url('The public keys that verify access tokens; only with an asymmetric signing algorithm.')),
  grant_types_supported: Type.Array(Type.String(), { examples: [['password', 'refresh_token']] }),
  response_types_supported: Type.Array(Type.String(), { description: 'Empty: there is no authorization endpoint.' }),
  token_endpoint_auth_methods_supported: Type.Array(Type.String(), { examples: [['none']] }),
  revocation_endpoint_auth_methods_supported: Type.Array(Type.String(), { examples: [['none']] }),
  scopes_supported: Type.Array(Type.String()),
  service_documentation: Url('Interactive documentation.')
}, { description: 'OAuth 2.0 authorization server metadata (RFC 8414).' })
export type AuthorizationServerMetadata = Static<typeof AuthorizationServerMetadata>

const Base64Url = Type.String({ pattern: '^[A-Za-z0-9_-]+$' })

/** @see https://www.rfc-editor.org/rfc/rfc7517#section-4 */
export const JsonWebKey = Type.Object({
  kty: Type.Union([Type.Literal('OKP'), Type.Literal('EC'), Type.Literal('RSA')]),
  kid: Type.String({ description: 'The RFC 7638 thumbprint of the key; access tokens name it in their header.' }),
  alg: Type.Union([Type.Literal('EdDSA'), Type.Literal('ES256'), Type.Literal('RS256')]),
  use: Type.Literal('sig'),
  crv: Type.Optional(Type.String({ examples: ['Ed25519', 'P-256'] })),
  x: Type.Optional(Base64Url),
  y: Type.Optional(Base64Url),
  n: Type.Optional(Base64Url),
  e: Type.Optional(Base64Url)
}, { description: 'A public signing key (RFC 7517).' })
export type JsonWebKey = Static<typeof JsonWebKey>

export const JsonWebKeySet = Type.Object({
  keys: Type.Array(JsonWebKey, { description: 'The current signing key first, then retired keys still accepted.' })
}, { description: 'The public keys that verify access tokens (RFC 7517 §5).' })
export type JsonWebKeySet = Static<typeof JsonWebKeySet>

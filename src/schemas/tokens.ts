import { Type, type Static } from '@sinclair/typebox'

/**
 * The token endpoint's form. Every parameter is optional here because RFC 6749 §5.2 wants
 * each missing one reported as `invalid_request` by the handler, not by a generic validator;
 * unknown parameters are ignored (§3.2).
 */
export const TokenRequest = Type.Object({
  grant_type: Type.String({ examples: ['password'] }),
  username: Type.Optional(Type.String({ description: 'The account email.' })),
  password: Type.Optional(Type.String({ format: 'password' })),
  refresh_token: Type.Optional(Type.String({ description: 'For grant_type=refresh_token.' })),
  scope: Type.Optional(Type.String({ description: 'No scopes are defined: leave empty.' })),
  client_id: Type.Optional(Type.String())
}, { additionalProperties: true })
export type TokenRequest = Static<typeof TokenRequest>

/** @see https://www.rfc-editor.org/rfc/rfc6749#section-5.1 */
export const TokenResponse = Type.Object({
  access_token: Type.String(),
  token_type: Type.Literal('Bearer'),
  expires_in: Type.Integer({ minimum: 1 }),
  refresh_token: Type.String(),
  scope: Type.Optional(Type.String())
})
export type TokenResponse = Static<typeof TokenResponse>

/** @see https://www.rfc-editor.org/rfc/rfc7009#section-2.1 */
export const RevocationRequest = Type.Object({
  token: Type.String(),
  token_type_hint: Type.Optional(Type.String({ examples: ['refresh_token', 'access_token'] }))
}, { additionalProperties: true })
export type RevocationRequest = Static<typeof RevocationRequest>

/** @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2 */
export const OAuthError = Type.Object({
  error: Type.String({ examples: ['invalid_grant'] }),
  error_description: Type.String()
})
export type OAuthError = Static<typeof OAuthError>

/** The access token's claims (RFC 9068 §2.2). */
export interface AccessTokenClaims {
  iss: string
  aud: string
  sub: string
  iat: number
  exp: number
  jti: string
  /** The session (refresh-token family) the token belongs to, as GET /users/me/sessions names it. */
  sid: string
  scope?: string
}

import { Type, type Static, type TSchema, type TUnsafe } from '@sinclair/typebox'
import { ChangePasswordBody, DeleteAccountBody, SecurityEventList, SessionList } from './account.js'
import { AuthorizationServerMetadata, JsonWebKeySet } from './discovery.js'
import { Problem } from './problems.js'
import { AuthStatus, Health, NotReady, Readiness } from './status.js'
import { OAuthError, RevocationRequest, TokenRequest, TokenResponse } from './tokens.js'
import { CreateUserBody, CurrentUser, User } from './users.js'
import { EmailVerificationConfirmation, PasswordResetConfirmation, PasswordResetRequest } from './account-emails.js'

/**
 * The schemas routes share, by name. plugins/schemas.ts registers each with `addSchema` under
 * its name, routes `$ref` them through the helpers below, and @fastify/swagger lists them in the
 * OpenAPI document's `components.schemas`, so generated SDKs name the types too.
 */
export const components = {
  Problem,
  OAuthError,
  CreateUserBody,
  User,
  CurrentUser,
  PasswordResetRequest,
  PasswordResetConfirmation,
  EmailVerificationConfirmation,
  TokenRequest,
  TokenResponse,
  RevocationRequest,
  AuthStatus,
  Health,
  Readiness,
  NotReady,
  AuthorizationServerMetadata,
  JsonWebKeySet,
  ChangePasswordBody,
  DeleteAccountBody,
  SessionList,
  SecurityEventList
}
export type ComponentName = keyof typeof components
type Of<N extends ComponentName> = Static<typeof components[N]>

/** The OpenAPI security scheme: the OAuth 2.0 password flow against /token, bearer tokens. */
export const BEARER = 'OAuth2PasswordBearer'
/** `schema.security` of a route behind strict authentication. */
export const STRICT_AUTH: Array<Record<string, string[]>> = [{ [BEARER]: [] }]
/** `schema.security` of a route that reads a token when there is one (`{}` makes it optional). */
export const OPTIONAL_AUTH: Array<Record<string, string[]>> = [{}, { [BEARER]: [] }]

/** Response headers, as @fastify/swagger documents them. */
export type ResponseHeaders = Record<string, TSchema>

/** A shared schema by reference, typed as the schema itself. */
export function ref<N extends ComponentName> (name: N): TUnsafe<Of<N>> {
  return Type.Unsafe<Of<N>>({ $ref: `${name}#` })
}

/** A JSON response of a shared schema. */
export function json<N extends ComponentName> (name: N, description: string, headers?: ResponseHeaders): TUnsafe<Of<N>> {
  return Type.Unsafe<Of<N>>({ $ref: `${name}#`, description, ...(headers && { headers }) })
}

/**
 * An RFC 9457 problem response. Its media type is application/problem+json, which the error
 * handler sends and Fastify picks this serializer for.
 */
export function problem (description: string, headers?: ResponseHeaders, schema: 'Problem' | 'NotReady' = 'Problem'): TUnsafe<Problem> {
  return Type.Unsafe<Problem>({
    description,
    ...(headers && { headers }),
    content: { 'application/problem+json': { schema: { $ref: `${schema}#` } } }
  })
}

/** An RFC 6749 §5.2 error response, as the OAuth endpoints send them. */
export function oauthError (description: string, headers?: ResponseHeaders): TUnsafe<OAuthError> {
  return Type.Unsafe<OAuthError>({
    description,
    ...(headers && { headers }),
    content: { 'application/json': { schema: { $ref: 'OAuthError#' } } }
  })
}

/** What a route behind strict authentication answers when the token does not pass. */
export const authenticationProblems = {
  400: problem('More than one Authorization header (RFC 6750 §3.1).', {
    'WWW-Authenticate': Type.String({ description: '`Bearer realm="auth-service", error="invalid_request", error_description="…"`' })
  }),
  401: problem('No access token, or one that is malformed, expired, not yet valid, signed by an unknown key, for another issuer or audience, issued before a logout, of a session that has ended (signed out, revoked, or ended by a password change), or for a user that no longer exists.', {
    'WWW-Authenticate': Type.String({ description: 'The RFC 6750 §3 challenge: `Bearer realm="auth-service"` when no bearer token was sent, with `error="invalid_token"` and an `error_description` when one was refused.' })
  })
}

/** The header on every 429 and 503. */
export const RETRY_AFTER: ResponseHeaders = {
  'Retry-After': Type.String({ description: 'Seconds to wait before trying again.' })
}

/** Answers any route may give besides its own. */
export const commonProblems = {
  429: problem('More than `RATE_LIMIT_PER_MINUTE` requests from this address in a minute (only when that limit is set).', RETRY_AFTER),
  500: problem('The server could not complete the request; nothing internal is said.')
}

/** What a route that needs the database answers while it is unreachable. */
export const unavailableProblem = {
  503: problem('The database is unreachable (or, where passwords are hashed, too many are in progress): try again after `Retry-After` seconds.', RETRY_AFTER)
}

/** The same answers on the OAuth endpoints, as RFC 6749 §5.2 bodies. */
export const commonOAuthErrors = {
  429: oauthError('`invalid_request`: too many requests from this address, or (on /token) too many failed logins for this account or address — the right password is refused too until `Retry-After` seconds have passed.', RETRY_AFTER),
  500: oauthError('`server_error`: the server could not complete the request.'),
  503: oauthError('`temporarily_unavailable`: the database is unreachable or too many logins are in progress.', RETRY_AFTER)
}

/** What a route that sends email answers when it cannot, or when the database is unreachable. */
export const mailUnavailableProblem = {
  503: problem('The database is unreachable, or the service has no way to send email (production without `SMTP_URL`): try again after `Retry-After` seconds.', RETRY_AFTER)
}

/** What an operation that re-authenticates with `current_password` answers besides its own. */
export const reauthenticationProblems = {
  403: problem('The current password is wrong. It counts as a failed login for the account.'),
  429: problem('Too many failed logins for this account or from this address: refused, the right password included, until `Retry-After` seconds have passed. Also more than `RATE_LIMIT_PER_MINUTE` requests from this address in a minute, when that limit is set.', RETRY_AFTER)
}

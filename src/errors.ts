import createError, { type FastifyError } from '@fastify/error'

// Client errors (4xx) skip stack capture (`Error, false`): they are expected answers, never
// logged with a stack, and the paths that raise them are the ones an attacker can hammer.

export const EmailTaken = createError('USER_EMAIL_TAKEN', 'An account with this email already exists', 409, Error, false)
export const InvalidField = createError<'USER_INVALID_FIELD', 400, [field: string, message: string]>(
  'USER_INVALID_FIELD', '%s %s', 400, Error, false)

/** No bearer token was sent: RFC 6750 §3.1 says the challenge then carries no error code. */
export const MissingToken = createError('AUTH_MISSING_TOKEN', 'An access token is required', 401, Error, false)
/** A bearer token was sent and refused; the message becomes the challenge's error_description. */
export const InvalidToken = createError<'AUTH_INVALID_TOKEN', 401, [description: string]>(
  'AUTH_INVALID_TOKEN', '%s', 401, Error, false)
export const RepeatedAuthorization = createError('AUTH_REPEATED_AUTHORIZATION', 'The request carries more than one Authorization header', 400, Error, false)

/** RFC 6749 §5.2 errors: the code after `OAUTH_`, lower-cased, is the `error` value. */
export const InvalidRequest = createError<'OAUTH_INVALID_REQUEST', 400, [description: string]>(
  'OAUTH_INVALID_REQUEST', '%s', 400, Error, false)
export const UnsupportedGrantType = createError('OAUTH_UNSUPPORTED_GRANT_TYPE', 'The grant type is not supported', 400, Error, false)
export const InvalidGrant = createError<'OAUTH_INVALID_GRANT', 400, [description: string]>(
  'OAUTH_INVALID_GRANT', '%s', 400, Error, false)
export const InvalidScope = createError('OAUTH_INVALID_SCOPE', 'No scopes are defined for this service', 400, Error, false)

export const ServiceUnavailable = createError('SERVICE_UNAVAILABLE', '%s', 503)

export function isOAuthError (err: FastifyError): boolean {
  return err.code.startsWith('OAUTH_')
}

export function oauthErrorCode (err: FastifyError): string {
  return err.code.slice('OAUTH_'.length).toLowerCase()
}

export const MissingHost = createError('HTTP_MISSING_HOST', 'An HTTP/1.1 request must carry a Host header', 400)

export const UnsupportedMediaType = createError<'HTTP_UNSUPPORTED_MEDIA_TYPE', 415, [mediaType: string]>(
  'HTTP_UNSUPPORTED_MEDIA_TYPE', 'The request body must be %s', 415, Error, false)

/** Too many failed logins; `retryAfter` (seconds) becomes the Retry-After header. */
export const TooManyAttempts = createError<'LOGIN_TOO_MANY_ATTEMPTS', 429, [retryAfter: number]>(
  'LOGIN_TOO_MANY_ATTEMPTS', 'Too many failed logins; try again in %d seconds', 429, Error, false)

/** Driver error codes that mean "the database is not there right now", not "the query is wrong". */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND',
  'PROTOCOL_CONNECTION_LOST', 'PROTOCOL_SEQUENCE_TIMEOUT', 'PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR',
  'ER_CON_COUNT_ERROR', 'ER_LOCK_WAIT_TIMEOUT', 'ER_LOCK_DEADLOCK', 'ER_SERVER_SHUTDOWN',
  // A Galera node that is not part of the primary component (1047 "WSREP has not yet prepared
  // node for application use"), or that could not replicate a commit or a statement.
  'ER_UNKNOWN_COM_ERROR', 'ER_ERROR_DURING_COMMIT', 'ER_QUERY_INTERRUPTED',
  'SQLITE_BUSY', 'SQLITE_LOCKED'
])

export function isDatabaseUnavailable (err: { code?: string, fatal?: boolean }): boolean {
  return (err.code !== undefined && UNAVAILABLE_CODES.has(err.code)) || err.fatal === true
}

export const RateLimited = createError<'HTTP_TOO_MANY_REQUESTS', 429, [after: string]>(
  'HTTP_TOO_MANY_REQUESTS', 'Too many requests; retry after %s', 429, Error, false)

export const NoPublicKeys = createError('JWKS_NOT_AVAILABLE', 'Access tokens are signed with HS256, a shared secret: there is no public key to publish', 404, Error, false)

/** One answer for an unknown, expired, spent or superseded token: which one it was helps nobody. */
export const InvalidEmailToken = createError<'ACCOUNT_INVALID_TOKEN', 400, [description: string]>(
  'ACCOUNT_INVALID_TOKEN', '%s', 400, Error, false)
export const EmailAlreadyVerified = createError('ACCOUNT_EMAIL_ALREADY_VERIFIED', 'The email address is already verified', 409, Error, false)

/** Re-authentication failed: the `current_password` of an account operation is wrong. */
export const WrongPassword = createError('ACCOUNT_WRONG_PASSWORD', 'The current password is incorrect', 403, Error, false)

/** The same answer for a session that never existed, has ended, or is another user's. */
export const SessionNotFound = createError('SESSION_NOT_FOUND', 'No such session', 404, Error, false)

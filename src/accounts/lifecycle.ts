import type { FastifyInstance, FastifyRequest } from 'fastify'
import type { FailuresSeen } from '../../plugins/login-limits.js'
import type { IssuedTokens } from '../../plugins/sessions.js'
import { InvalidField, SessionNotFound, WrongPassword } from '../errors.js'
import type { UserRecord } from '../store/store.js'

/** Longer than any password the policy allows: refused without hashing it. */
const MAX_PASSWORD_CODE_POINTS = 128

export function isTooLong (password: string): boolean {
  return password.length > MAX_PASSWORD_CODE_POINTS && [...password].length > MAX_PASSWORD_CODE_POINTS
}

/**
 * A failed password check of a login or a re-authentication: counted against the account and
 * the address, recorded for a known account, and `locked` recorded by the failure that reaches
 * the per-account limit.
 */
export async function failedPasswordCheck (app: FastifyInstance, email: string, user: UserRecord | undefined, seen: FailuresSeen, request: FastifyRequest) {
  const { accountFailures } = seen
  await app.loginLimits.failed(email, request.ip, seen)
  if (user === undefined) return
  await app.securityEvents.record(user.id, 'login_failed', request)
  if (accountFailures + 1 === app.config.loginLimit.perAccount) await app.securityEvents.record(user.id, 'locked', request)
}

/**
 * Re-authentication for an operation that changes or removes an account: the current password,
 * checked with the same argon2 work as a login and under the same per-account limit, so it is
 * no side door for guessing. 403 when wrong; 429 once the account is locked, even when right.
 */
export async function reauthenticate (app: FastifyInstance, user: UserRecord, password: string, request: FastifyRequest): Promise<void> {
  const seen = await app.loginLimits.check(user.email, request.ip)
  const { accountFailures } = seen
  const { valid } = isTooLong(password) ? { valid: false } : await app.passwords.verify(user.passwordHash, password)
  if (!valid) {
    request.log.info({ userId: user.id }, 'wrong current password')
    await failedPasswordCheck(app, user.email, user, seen, request)
    throw new WrongPassword()
  }
  await app.loginLimits.succeeded(user.email, accountFailures)
}

/** The password policy for a new password, beyond its length (which the body schema checks). */
export function checkNewPassword (app: FastifyInstance, field: string, password: string, current?: string) {
  if (app.passwords.isCommon(password)) throw new InvalidField(field, 'is too common: it appears on lists of breached passwords')
  if (current !== undefined && password.normalize('NFC') === current.normalize('NFC')) {
    throw new InvalidField(field, 'must differ from the current password')
  }
}

/**
 * A password change ends every session of the user, the caller's included, and starts a new
 * one for the caller in the same transaction: whoever held the old password, on any device, is
 * out. Of two concurrent changes exactly one wins; the other answers 403, its session ended.
 */
export async function changePassword (app: FastifyInstance, user: UserRecord, currentPassword: string, newPassword: string, request: FastifyRequest): Promise<IssuedTokens> {
  checkNewPassword(app, 'new_password', newPassword, currentPassword)
  await reauthenticate(app, user, currentPassword, request)
  const newHash = await app.passwords.hash(newPassword)
  const { session, token, tokens } = app.sessions.prepare(user, request)
  if (!await app.store.changePassword(user.id, user.passwordHash, newHash, session, token, app.now())) {
    request.log.info({ userId: user.id }, 'password change lost to a concurrent one')
    throw new WrongPassword()
  }
  request.log.info({ userId: user.id }, 'password changed; every other session ended')
  await app.securityEvents.record(user.id, 'password_changed', request)
  return tokens
}

/** Deletes the account and, by foreign keys, everything kept for it; its tokens die with the row. */
export async function deleteAccount (app: FastifyInstance, user: UserRecord, currentPassword: string, request: FastifyRequest): Promise<void> {
  await reauthenticate(app, user, currentPassword, request)
  await app.store.deleteUser(user.id)
  request.log.info({ userId: user.id }, 'account deleted')
}

/** Logout everywhere. */
export async function endAllSessions (app: FastifyInstance, userId: number, request?: FastifyRequest): Promise<void> {
  await app.sessions.end(userId)
  await app.securityEvents.record(userId, 'logout', request)
}

/** Ends one of the user's sessions (a signed-in device); 404 for anything else. */
export async function endSession (app: FastifyInstance, userId: number, sessionId: string, request: FastifyRequest): Promise<void> {
  if (!await app.sessions.endOne(userId, sessionId)) throw new SessionNotFound()
  request.log.info({ userId }, 'session ended')
  await app.securityEvents.record(userId, 'session_revoked', request)
}

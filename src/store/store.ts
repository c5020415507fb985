import type { SecurityEventType } from '../accounts/events.js'

export interface UserRecord {
  id: number
  email: string
  passwordHash: string
  createdAt: Date
  /** Access tokens issued before this instant (epoch ms) are refused; logout moves it. */
  tokensNotBefore: number
  /** When the email address was verified (epoch ms); null until then. */
  emailVerifiedAt: number | null
  /** When an operator disabled the account (epoch ms); null while it is not disabled. */
  disabledAt: number | null
}

/** The user of an authenticated request, and the session its access token belongs to. */
export interface NewUser {
  email: string
  passwordHash: string
  createdAt: Date
}

/**
 * A refresh token in the format before migration 0008, as stored: only the SHA-256 hash of its
 * text. Sessions begun before it rotate their last such token once into the chain below.
 */
export interface NewRefreshToken {
  hash: Buffer
  userId: number
  familyId: Buffer
  createdAt: number
  expiresAt: number
}

/** A login: the refresh-token family `id`, and what a person sees of it. Times in epoch ms. */
export interface NewSession {
  id: Buffer
  userId: number
  createdAt: number
  /** Moves with each refresh: the expiry of the session's current refresh token. */
  expiresAt: number
  ip: string | null
  userAgent: string | null
}

export interface SessionRecord {
  id: Buffer
  createdAt: number
  lastUsedAt: number
  ip: string | null
  userAgent: string | null
}

/** The start of a session's refresh-token chain: generation 0's secret hash, and the session's tag key. */
export interface FirstRefreshToken {
  hash: Buffer
  key: Buffer
}

/** What strict authentication reads in one query: the user, and whether the token's session is live. */
export interface Authentication {
  user: UserRecord
  sessionLive: boolean
}

/** A session's refresh-token chain as stored: see src/accounts/refresh-token.ts. */
export interface RefreshChain {
  userId: number
  generation: number
  /** SHA-256 of the current token's secret. */
  hash: Buffer
  key: Buffer
}

export type Rotation =
  /** The session's chain moved on: its current token is now generation `generation`, in one conditional update. */
  | { outcome: 'rotated', userId: number, tokensNotBefore: number, sessionId: Buffer, generation: number, key: Buffer }
  /** The session is live, but the token presented is not its current one (an older one, or a forgery); its chain as it stands. */
  | ({ outcome: 'stale' } & RefreshChain)
  /** No such live session. */
  | { outcome: 'invalid' }

/** A token of the format before migration 0008: rotated into its session's chain, or found used (the session is ended). */
export type LegacyRotation =
  | Extract<Rotation, { outcome: 'rotated' }>
  | { outcome: 'reused', userId: number }
  | { outcome: 'invalid' }

/** One rotation, as the stores batch them: the token presented, its successor's secret hash and expiry, and when. */
export interface RotationRequest {
  sessionId: Buffer
  generation: number
  hash: Buffer
  nextHash: Buffer
  expiresAt: number
  now: number
}

/** A session's row as a rotation reads it back, on both databases. */
export interface ChainRow {
  user_id: number
  refresh_generation: number
  refresh_hash: Buffer | null
  refresh_key: Buffer | null
  ended_at: number | null
  expires_at: number
  tokens_not_before: number
}

/** The session's chain in its row; undefined for no session, or one begun before migration 0008 that has none yet. */
export function refreshChain (row: ChainRow | undefined): RefreshChain | undefined {
  if (row === undefined || row.refresh_hash === null || row.refresh_key === null) return undefined
  return { userId: Number(row.user_id), generation: Number(row.refresh_generation), hash: row.refresh_hash, key: row.refresh_key }
}

/** What a rotation's conditional update did, read from the session's row after it. */
export function rotationAnswer (request: RotationRequest, row: ChainRow | undefined): Rotation {
  const chain = refreshChain(row)
  if (row === undefined || chain === undefined) return { outcome: 'invalid' }
  // The successor's hash is random and this request's own: the row holds it only if this
  // request's update moved the chain (also when a retry finds its first attempt committed).
  if (chain.hash.equals(request.nextHash)) {
    const { userId, generation, key } = chain
    return { outcome: 'rotated', userId, tokensNotBefore: Number(row.tokens_not_before), sessionId: request.sessionId, generation, key }
  }
  if (row.ended_at !== null || Number(row.expires_at) <= request.now) return { outcome: 'invalid' }
  return { outcome: 'stale', ...chain }
}

/** At most this many rotations made in one turn of the event loop go to the database together. */
export const MAX_ROTATION_BATCH = 64

export interface LoginFailures {
  subject: Buffer
  count: number
  oldest: number
}

export type TokenPurpose = 'password_reset' | 'email_verification'

/** A message for the outbox; the bodies hold the link, so the row is deleted once sent. */
export interface OutgoingEmail {
  recipient: string
  subject: string
  text: string
  html: string
  link?: string
  /** Not sent after this instant (epoch ms): its link has expired by then. */
  expiresAt: number
}

export interface EmailTokenRequest {
  /** The account's email; nothing is written when no account has it, but the same queries run. */
  email: string
  purpose: TokenPurpose
  hash: Buffer
  now: number
  expiresAt: number
  /** At most `limit` tokens of this purpose since `since` (the hourly email limit). */
  since: number
  limit: number
  message: OutgoingEmail
  /** Recorded in login_failures in the same transaction (the per-address limit), whatever the outcome. */
  attemptSubject?: Buffer
}

export interface EmailTokenOutcome {
  outcome: 'issued' | 'limited' | 'no_account'
  /** The account's id when a token was issued. */
  userId?: number
}

/** One outbox row, claimed by one sender. */
export interface ClaimedEmail extends Omit<OutgoingEmail, 'expiresAt'> {
  id: number
  attempts: number
  expiresAt: number
}

/** An outbox row as an operator sees it: never its bodies or link, which hold the token. */
export interface OutboxEntry {
  id: number
  /** The subject line, which says what kind of message it is. */
  subject: string
  recipient: string
  attempts: number
  /** Epoch ms. */
  createdAt: number
  nextAttemptAt: number
  expiresAt: number
  /** Until when a sender holds it (epoch ms); null when none does. */
  claimedUntil: number | null
  lastError: string | null
}

export interface SecurityEvent {
  type: SecurityEventType
  /** Epoch ms. */
  at: number
  ip: string | null
  userAgent: string | null
}

/**
 * Everything the service keeps, behind one small interface with a MySQL and a SQLite
 * implementation. Emails arrive already normalised; the unique index decides duplicates.
 */
export interface Store {
  readonly dialect: 'mysql' | 'sqlite'
  /** @throws EmailTaken when the email already has an account. */
  createUser (user: NewUser): Promise<UserRecord>
  findUserByEmail (email: string): Promise<UserRecord | undefined>
  findUserById (id: number): Promise<UserRecord | undefined>
  updatePasswordHash (id: number, passwordHash: string): Promise<void>
  /**
   * The user, with whether the session `sessionId` is theirs and live, in one query: the only
   * one an authenticated request makes.
   */
  findAuthentication (userId: number, sessionId: Buffer): Promise<Authentication | undefined>
  /**
   * Sets a new password hash if and only if the current one is still `currentHash` and the
   * account is not disabled (of two concurrent changes exactly one wins), ends every session of
   * the user and starts `next`, in one transaction. False when the hash had changed or the
   * account was disabled meanwhile: nothing was done.
   */
  changePassword (userId: number, currentHash: string, newHash: string, next: NewSession, token: FirstRefreshToken, now: number): Promise<boolean>
  /** Deletes the user and, by foreign keys, everything kept for them; false when already gone. */
  deleteUser (userId: number): Promise<boolean>
  /**
   * Disables the account at `now` if it is not disabled yet and, in the same transaction, ends
   * every session of the user (access tokens issued before `now + 1` refused, refresh tokens
   * revoked), so authentication never has to read the flag. False when it was disabled already.
   */
  disableUser (userId: number, now: number): Promise<boolean>
  /** Lifts the disabling; false when the account was not disabled. */
  enableUser (userId: number): Promise<boolean>
  /** Marks the email verified at `now` (an operator's word for it); false when it was already. */
  markEmailVerified (userId: number, now: number): Promise<boolean>

  /** A login: the session and its first refresh token, together. False when the user is gone or disabled. */
  createSession (session: NewSession, token: FirstRefreshToken): Promise<boolean>
  /** The user's live sessions, newest first. */
  listSessions (userId: number, now: number): Promise<SessionRecord[]>
  /** Ends one live session of the user and revokes its refresh tokens; false when there is none such. */
  endSession (userId: number, sessionId: Buffer, now: number): Promise<boolean>
  /** Deletes up to `limit` sessions whose refresh tokens all expired before `now`; returns how many. */
  pruneSessions (now: number, limit: number): Promise<number>

  /** Stores a token of the format before migration 0008 (for its tests; nothing issues them now). */
  createRefreshToken (token: NewRefreshToken): Promise<void>
  /**
   * Moves the session's chain to `nextHash` if and only if the token is its current one and the
   * session is live at `now`; a conditional update decides, so of two concurrent rotations of
   * one token exactly one succeeds.
   */
  rotateRefreshToken (request: RotationRequest): Promise<Rotation>
  /**
   * A token of the format before migration 0008: if it is live, it is used and its session's
   * chain starts at generation 1 with `next` (secret hash and tag key); if it was used already,
   * its session is ended. One transaction.
   */
  rotateLegacyRefreshToken (hash: Buffer, next: FirstRefreshToken & { expiresAt: number }, now: number): Promise<LegacyRotation>
  /** The session's chain, whether or not the session is live; undefined when there is no such session. */
  findRefreshChain (sessionId: Buffer): Promise<RefreshChain | undefined>
  /** Ends the session (its refresh tokens stop working, its access tokens are refused). */
  endRefreshFamily (sessionId: Buffer, now: number): Promise<void>
  /** Ends the session of the pre-0008 token with this hash; false when no such token exists. */
  revokeRefreshTokenFamily (hash: Buffer, now: number): Promise<boolean>
  /** Logout everywhere: refuses access tokens issued before `notBefore`, ends every session and with them every refresh token. */
  endSessions (userId: number, notBefore: number, now: number): Promise<void>
  /** Deletes up to `limit` pre-0008 refresh tokens that expired before `now`; returns how many. */
  pruneRefreshTokens (now: number, limit: number): Promise<number>

  /** Records one failed login against each subject (hashed account and address keys). */
  recordLoginFailure (subjects: Buffer[], at: number): Promise<void>
  /** For each subject, the failures since `since` and the time of the oldest of them. */
  countLoginFailures (subjects: Buffer[], since: number): Promise<LoginFailures[]>
  clearLoginFailures (subject: Buffer): Promise<void>
  /** Deletes up to `limit` failures recorded before `before`; returns how many. */
  pruneLoginFailures (before: number, limit: number): Promise<number>

  /**
   * Issues a reset or verification token and queues its email, in one transaction: supersedes
   * the account's older tokens of the purpose, unless the hourly limit is reached. The same
   * statements run whether or not the account exists, so the answer takes the same time.
   */
  issueEmailToken (request: EmailTokenRequest): Promise<EmailTokenOutcome>
  /**
   * Spends a live password-reset token (a conditional update: of two concurrent uses exactly one
   * wins) and, in the same transaction, sets the new password hash and ends every session
   * (access tokens issued before `now + 1` refused, refresh tokens revoked).
   */
  resetPassword (hash: Buffer, passwordHash: string, now: number): Promise<{ userId: number, email: string } | undefined>
  /** Whether a token of the purpose is live (a read only: a cheap check before hashing a password). */
  isEmailTokenLive (hash: Buffer, purpose: 'password_reset' | 'email_verification', now: number): Promise<boolean>
  /** Spends a live verification token and marks the account's email verified. */
  verifyEmail (hash: Buffer, now: number): Promise<number | undefined>
  /** Queues an email that carries no token (a notice). */
  enqueueEmail (message: OutgoingEmail & { userId?: number }, now: number): Promise<void>
  /**
   * Claims up to `limit` due messages for `claimedUntil` with one conditional UPDATE, so two
   * senders never hold one message, and returns them.
   */
  claimEmails (claimId: Buffer, now: number, claimedUntil: number, limit: number): Promise<ClaimedEmail[]>
  /** Deletes a message that was sent (or can never be), if this claim still holds it. */
  deleteEmail (id: number, claimId: Buffer): Promise<void>
  /** Releases a message for another attempt at `nextAttemptAt`. */
  emailFailed (id: number, claimId: Buffer, nextAttemptAt: number, error: string): Promise<void>
  /** Deletes up to `limit` messages not sent before they expired; returns how many. */
  pruneOutbox (now: number, limit: number): Promise<number>
  /** Deletes up to `limit` tokens both created and expired before `before`; returns how many. */
  pruneEmailTokens (before: number, limit: number): Promise<number>

  /** Fails quietly (nothing recorded) when the user no longer exists. */
  recordSecurityEvent (userId: number, event: SecurityEvent): Promise<void>
  /** The user's `limit` latest events, newest first. */
  listSecurityEvents (userId: number, limit: number): Promise<SecurityEvent[]>
  /** Deletes up to `limit` events recorded before `before`; returns how many. */
  pruneSecurityEvents (before: number, limit: number): Promise<number>

  /** Every message in the outbox, oldest first, without its bodies or link. */
  listOutbox (): Promise<OutboxEntry[]>
  /**
   * Gives the messages that failed (attempted at least once), and are neither expired nor held
   * by a sender, a fresh start: no attempts, due at `now`. Returns how many.
   */
  retryFailedEmails (now: number): Promise<number>
  /** How many messages wait in the outbox, and when the oldest of them was queued (epoch ms). */
  outboxBacklog (): Promise<{ pending: number, oldestCreatedAt: number | null }>

  /** Resolves when the database answers a trivial query. */
  ping (): Promise<void>
}

/** An outbox row as both databases return it. */
export interface OutboxRow {
  id: number
  recipient: string
  subject: string
  text_body: string
  html_body: string
  link: string | null
  attempts: number
  expires_at: number
}

export function toClaimedEmail (row: OutboxRow): ClaimedEmail {
  return {
    id: Number(row.id),
    recipient: row.recipient,
    subject: row.subject,
    text: row.text_body,
    html: row.html_body,
    ...(row.link === null ? {} : { link: row.link }),
    attempts: Number(row.attempts),
    expiresAt: Number(row.expires_at)
  }
}

/** The outbox columns an operator may see, as both databases return them. */
export const OUTBOX_ENTRY_COLUMNS = 'id, subject, recipient, attempts, created_at, next_attempt_at, expires_at, claimed_until, last_error'

export interface OutboxEntryRow {
  id: number
  subject: string
  recipient: string
  attempts: number
  created_at: number
  next_attempt_at: number
  expires_at: number
  claimed_until: number | null
  last_error: string | null
}

export function toOutboxEntry (row: OutboxEntryRow): OutboxEntry {
  return {
    id: Number(row.id),
    subject: row.subject,
    recipient: row.recipient,
    attempts: Number(row.attempts),
    createdAt: Number(row.created_at),
    nextAttemptAt: Number(row.next_attempt_at),
    expiresAt: Number(row.expires_at),
    claimedUntil: row.claimed_until === null ? null : Number(row.claimed_until),
    lastError: row.last_error
  }
}

import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { EmailTaken } from '../errors.js'
import { answersFrom, authenticationQueries, batchedAuthentication, type AuthenticationRow } from './authentication-batch.js'
import { perTurn } from './turn-batch.js'
import { openSqliteDriver, type SqliteDatabase, type SqliteStatement } from './sqlite-driver.js'
import { MAX_ROTATION_BATCH, OUTBOX_ENTRY_COLUMNS, toClaimedEmail, toOutboxEntry, type EmailTokenOutcome, type EmailTokenRequest, type ChainRow, type FirstRefreshToken, type LegacyRotation, type LoginFailures, type NewRefreshToken, type NewSession, type NewUser, type OutboxEntryRow, type OutboxRow, type OutgoingEmail, type Rotation, type RotationRequest, refreshChain, rotationAnswer, type SecurityEvent, type SessionRecord, type Store, type UserRecord } from './store.js'

export type { SqliteDatabase } from './sqlite-driver.js'

interface UserRow {
  id: number
  email: string
  password_hash: string
  created_at: string
  tokens_not_before: number
  email_verified_at: number | null
  disabled_at: number | null
}

interface RefreshRow {
  user_id: number
  family_id: Buffer
  used_at: number | null
  tokens_not_before: number
}

const USER_COLUMNS = 'id, email, password_hash, created_at, tokens_not_before, email_verified_at, disabled_at'
const AUTHENTICATION = authenticationQueries(USER_COLUMNS)

interface SessionRow {
  id: Buffer
  created_at: number
  last_used_at: number
  ip: string | null
  user_agent: string | null
}

function isForeignKeyFailure (err: unknown): boolean {
  return (err as { code?: string }).code === 'SQLITE_CONSTRAINT_FOREIGNKEY'
}

export function openSqlite (path: string): SqliteDatabase {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const db = openSqliteDriver(path)
  db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON')
  return db
}

/**
 * Statements are prepared on first use and kept, so each query is compiled once; they
 * cannot be prepared up front because the tables may not exist until migrations ran.
 */
function statements (db: SqliteDatabase) {
  const cache = new Map<string, SqliteStatement>()
  return (sql: string) => {
    let statement = cache.get(sql)
    if (statement === undefined) {
      statement = db.prepare(sql)
      cache.set(sql, statement)
    }
    return statement
  }
}

export function createSqliteStore (db: SqliteDatabase): Store {
  const sql = statements(db)

  const insertRefreshToken = ({ hash, userId, familyId, createdAt, expiresAt }: NewRefreshToken) => {
    sql('INSERT INTO refresh_tokens (token_hash, user_id, family_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)')
      .run(hash, userId, familyId, createdAt, expiresAt)
  }
  const revokeFamily = (familyId: Buffer, now: number) => {
    sql('UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL').run(now, familyId)
  }
  /** False, and nothing written, when the user is gone or disabled. */
  const insertSession = (session: NewSession, token: FirstRefreshToken) => {
    const { changes } = sql(`INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, ip, user_agent, refresh_hash, refresh_key)
      SELECT ?, id, ?, ?, ?, ?, ?, ?, ? FROM users WHERE id = ? AND disabled_at IS NULL`)
      .run(session.id, session.createdAt, session.createdAt, session.expiresAt, session.ip, session.userAgent, token.hash, token.key, session.userId)
    return changes === 1
  }
  const endAllSessions = (userId: number, now: number) => {
    sql('UPDATE sessions SET ended_at = ? WHERE user_id = ? AND ended_at IS NULL').run(now, userId)
  }
  const findRefreshToken = (hash: Buffer) => sql(
    'SELECT r.user_id, r.family_id, r.used_at, u.tokens_not_before FROM refresh_tokens r JOIN users u ON u.id = r.user_id WHERE r.token_hash = ?'
  ).get(hash) as RefreshRow | undefined

  const findChain = (sessionId: Buffer) => sql(
    'SELECT s.user_id, s.refresh_generation, s.refresh_hash, s.refresh_key, s.ended_at, s.expires_at, u.tokens_not_before FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?'
  ).get(sessionId) as ChainRow | undefined

  // Both drivers are synchronous: each transaction runs to the end before any other query.
  const rotateOne = (request: RotationRequest): Rotation => {
    const { sessionId, generation, hash, nextHash, expiresAt, now } = request
    sql(`UPDATE sessions SET refresh_generation = refresh_generation + 1, refresh_hash = ?, last_used_at = ?, expires_at = ?
      WHERE id = ? AND refresh_generation = ? AND refresh_hash = ? AND ended_at IS NULL AND expires_at > ?`)
      .run(nextHash, now, expiresAt, sessionId, generation, hash, now)
    return rotationAnswer(request, findChain(sessionId))
  }
  /** The rotations of one turn commit together: one transaction, and one WAL commit, for all of them. */
  const rotate = perTurn(MAX_ROTATION_BATCH, async (batch: RotationRequest[]) => db.immediate(() => batch.map(rotateOne)))
  const rotateLegacy = (hash: Buffer, next: FirstRefreshToken & { expiresAt: number }, now: number): LegacyRotation => db.immediate(() => {
    const { changes } = sql('UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?')
      .run(now, hash, now)
    const token = findRefreshToken(hash)
    if (token === undefined) return { outcome: 'invalid' }
    if (changes !== 1) {
      if (token.used_at === null) return { outcome: 'invalid' }
      revokeFamily(token.family_id, now)
      return { outcome: 'reused', userId: token.user_id }
    }
    sql(`UPDATE sessions SET refresh_generation = refresh_generation + 1, refresh_hash = ?, refresh_key = ?, last_used_at = ?, expires_at = ?
      WHERE id = ? AND ended_at IS NULL AND expires_at > ?`).run(next.hash, next.key, now, next.expiresAt, token.family_id, now)
    const answer = rotationAnswer({ sessionId: token.family_id, generation: 0, hash, nextHash: next.hash, expiresAt: next.expiresAt, now }, findChain(token.family_id))
    return answer.outcome === 'rotated' ? answer : { outcome: 'invalid' }
  })
  const recordFailures = (subjects: Buffer[], at: number) => db.immediate(() => {
    for (const subject of subjects) sql('INSERT INTO login_failures (subject, failed_at) VALUES (?, ?)').run(subject, at)
  })
  const endSessions = (userId: number, notBefore: number, now: number) => db.immediate(() => {
    sql('UPDATE users SET tokens_not_before = ? WHERE id = ?').run(notBefore, userId)
    endAllSessions(userId, now)
  })
  const changePassword = (userId: number, currentHash: string, newHash: string, next: NewSession, token: FirstRefreshToken, now: number) => db.immediate(() => {
    const { changes } = sql('UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ? AND disabled_at IS NULL').run(newHash, userId, currentHash)
    if (changes !== 1) return false
    endAllSessions(userId, now)
    return insertSession(next, token)
  })
  const disableUser = (userId: number, now: number) => db.immediate(() => {
    const { changes } = sql('UPDATE users SET disabled_at = ?, tokens_not_before = ? WHERE id = ? AND disabled_at IS NULL').run(now, now + 1, userId)
    if (changes !== 1) return false
    endAllSessions(userId, now)
    return true
  })
  const createSession = (session: NewSession, token: FirstRefreshToken) => db.immediate(() => insertSession(session, token))
  const endSession = (userId: number, sessionId: Buffer, now: number) => db.immediate(() => {
    const { changes } = sql('UPDATE sessions SET ended_at = ? WHERE id = ? AND user_id = ? AND ended_at IS NULL AND expires_at > ?')
      .run(now, sessionId, userId, now)
    return changes === 1
  })
  const insertEmail = (userId: number | null, message: OutgoingEmail, now: number) => {
    sql(`INSERT INTO outbox (user_id, recipient, subject, text_body, html_body, link, created_at, expires_at, next_attempt_at)
      SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE ? IS NULL OR EXISTS (SELECT 1 FROM users WHERE id = ?)`)
      .run(userId, message.recipient, message.subject, message.text, message.html, message.link ?? null, now, message.expiresAt, now, userId, userId)
  }
  // No account, or over the limit: the same statements run against user id 0, which matches no row.
  const issueEmailToken = (request: EmailTokenRequest): EmailTokenOutcome => db.immediate(() => {
    const { email, purpose, hash, now, expiresAt, since, limit, message, attemptSubject } = request
    if (attemptSubject !== undefined) sql('INSERT INTO login_failures (subject, failed_at) VALUES (?, ?)').run(attemptSubject, now)
    const user = sql('SELECT id FROM users WHERE email = ?').get(email) as { id: number } | undefined
    const { count } = sql('SELECT COUNT(*) AS count FROM account_tokens WHERE user_id = ? AND purpose = ? AND created_at > ?')
      .get(user?.id ?? 0, purpose, since) as { count: number }
    const outcome = user === undefined ? 'no_account' as const : count >= limit ? 'limited' as const : 'issued' as const
    const userId = outcome === 'issued' ? user!.id : 0
    sql('UPDATE account_tokens SET used_at = ? WHERE user_id = ? AND purpose = ? AND used_at IS NULL').run(now, userId, purpose)
    sql('INSERT INTO account_tokens (token_hash, user_id, purpose, created_at, expires_at) SELECT ?, id, ?, ?, ? FROM users WHERE id = ?')
      .run(hash, purpose, now, expiresAt, userId)
    insertEmail(userId, message, now)
    return outcome === 'issued' ? { outcome, userId } : { outcome }
  })
  const spendToken = (hash: Buffer, purpose: string, now: number) => {
    const { changes } = sql('UPDATE account_tokens SET used_at = ? WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?')
      .run(now, hash, purpose, now)
    if (changes !== 1) return undefined
    return sql('SELECT t.user_id, u.email FROM account_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?')
      .get(hash) as { user_id: number, email: string }
  }
  const resetPassword = (hash: Buffer, passwordHash: string, now: number) => db.immediate(() => {
    const spent = spendToken(hash, 'password_reset', now)
    if (spent === undefined) return undefined
    sql('UPDATE users SET password_hash = ? WHERE id = ?').run(passwordHash, spent.user_id)
    endSessions(spent.user_id, now + 1, now)
    return { userId: spent.user_id, email: spent.email }
  })
  const verifyEmail = (hash: Buffer, now: number) => db.immediate(() => {
    const spent = spendToken(hash, 'email_verification', now)
    if (spent === undefined) return undefined
    sql('UPDATE users SET email_verified_at = ? WHERE id = ? AND email_verified_at IS NULL').run(now, spent.user_id)
    return spent.user_id
  })
  const claimEmails = (claimId: Buffer, now: number, claimedUntil: number, limit: number) => db.immediate(() => {
    sql(`UPDATE outbox SET claim_id = ?, claimed_until = ? WHERE id IN (
      SELECT id FROM outbox WHERE next_attempt_at <= ? AND expires_at > ? AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY id LIMIT ?)`)
      .run(claimId, claimedUntil, now, now, now, limit)
    return sql('SELECT id, recipient, subject, text_body, html_body, link, attempts, expires_at FROM outbox WHERE claim_id = ? ORDER BY id')
      .all(claimId) as unknown as OutboxRow[]
  })

  return {
    dialect: 'sqlite',

    async createUser ({ email, passwordHash, createdAt }: NewUser) {
      try {
        const { lastInsertRowid } = sql('INSERT INTO users (email, password_hash, created_at) VALUES (?, ?, ?)')
          .run(email, passwordHash, createdAt.toISOString())
        return { id: Number(lastInsertRowid), email, passwordHash, createdAt, tokensNotBefore: 0, emailVerifiedAt: null, disabledAt: null }
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new EmailTaken()
        throw err
      }
    },

    async findUserByEmail (email: string) {
      return toUser(sql(`SELECT ${USER_COLUMNS} FROM users WHERE email = ?`).get(email) as UserRow | undefined)
    },

    async findUserById (id: number) {
      return toUser(sql(`SELECT ${USER_COLUMNS} FROM users WHERE id = ?`).get(id) as UserRow | undefined)
    },

    async updatePasswordHash (id: number, passwordHash: string) {
      sql('UPDATE users SET password_hash = ? WHERE id = ?').run(passwordHash, id)
    },

    // One statement per turn of the event loop (see authentication-batch.ts): a statement's own
    // cost (about 7 µs here) is paid once for up to 64 requests.
    findAuthentication: batchedAuthentication(async batch => {
      if (batch.length === 1) {
        const { userId, sessionId } = batch[0]!
        const row = sql(AUTHENTICATION.one).get(sessionId, userId) as (UserRow & { session_live: number }) | undefined
        return [row === undefined ? undefined : { user: toUser(row)!, sessionLive: row.session_live === 1 }]
      }
      const { sql: many, values } = AUTHENTICATION.many(batch)
      return answersFrom(batch, sql(many).all(...values) as unknown as Array<UserRow & AuthenticationRow>, toUser)
    }),

    async changePassword (userId, currentHash, newHash, next, token, now) {
      return changePassword(userId, currentHash, newHash, next, token, now)
    },

    async deleteUser (userId: number) {
      return sql('DELETE FROM users WHERE id = ?').run(userId).changes === 1
    },

    async disableUser (userId: number, now: number) {
      return disableUser(userId, now)
    },

    async enableUser (userId: number) {
      return sql('UPDATE users SET disabled_at = NULL WHERE id = ? AND disabled_at IS NOT NULL').run(userId).changes === 1
    },

    async markEmailVerified (userId: number, now: number) {
      return sql('UPDATE users SET email_verified_at = ? WHERE id = ? AND email_verified_at IS NULL').run(now, userId).changes === 1
    },

    async createSession (session: NewSession, token: FirstRefreshToken) {
      try {
        return createSession(session, token)
      } catch (err) {
        if (isForeignKeyFailure(err)) return false
        throw err
      }
    },

    async listSessions (userId: number, now: number) {
      const rows = sql('SELECT id, created_at, last_used_at, ip, user_agent FROM sessions WHERE user_id = ? AND ended_at IS NULL AND expires_at > ? ORDER BY created_at DESC, id')
        .all(userId, now) as unknown as SessionRow[]
      return rows.map(toSession)
    },

    async endSession (userId: number, sessionId: Buffer, now: number) {
      return endSession(userId, sessionId, now)
    },

    async pruneSessions (now: number, limit: number) {
      return sql('DELETE FROM sessions WHERE id IN (SELECT id FROM sessions WHERE expires_at < ? LIMIT ?)').run(now, limit).changes
    },

    async createRefreshToken (token: NewRefreshToken) {
      insertRefreshToken(token)
    },

    rotateRefreshToken: rotate,

    async rotateLegacyRefreshToken (hash, next, now) {
      return rotateLegacy(hash, next, now)
    },

    async findRefreshChain (sessionId: Buffer) {
      return refreshChain(findChain(sessionId))
    },

    async endRefreshFamily (sessionId: Buffer, now: number) {
      revokeFamily(sessionId, now)
    },

    async revokeRefreshTokenFamily (hash: Buffer, now: number) {
      const row = findRefreshToken(hash)
      if (row === undefined) return false
      revokeFamily(row.family_id, now)
      return true
    },

    async endSessions (userId: number, notBefore: number, now: number) {
      endSessions(userId, notBefore, now)
    },

    async pruneRefreshTokens (now: number, limit: number) {
      return sql('DELETE FROM refresh_tokens WHERE id IN (SELECT id FROM refresh_tokens WHERE expires_at < ? LIMIT ?)')
        .run(now, limit).changes
    },

    async recordLoginFailure (subjects: Buffer[], at: number) {
      recordFailures(subjects, at)
    },

    async countLoginFailures (subjects: Buffer[], since: number) {
      return subjects.map(subject => {
        const row = sql('SELECT COUNT(*) AS count, MIN(failed_at) AS oldest FROM login_failures WHERE subject = ? AND failed_at > ?')
          .get(subject, since) as { count: number, oldest: number | null }
        return { subject, count: row.count, oldest: row.oldest ?? 0 } satisfies LoginFailures
      })
    },

    async clearLoginFailures (subject: Buffer) {
      sql('DELETE FROM login_failures WHERE subject = ?').run(subject)
    },

    async pruneLoginFailures (before: number, limit: number) {
      return sql('DELETE FROM login_failures WHERE id IN (SELECT id FROM login_failures WHERE failed_at <= ? LIMIT ?)')
        .run(before, limit).changes
    },

    async issueEmailToken (request: EmailTokenRequest) {
      return issueEmailToken(request)
    },

    async isEmailTokenLive (hash: Buffer, purpose: string, now: number) {
      return sql('SELECT 1 AS live FROM account_tokens WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?').get(hash, purpose, now) !== undefined
    },

    async resetPassword (hash: Buffer, passwordHash: string, now: number) {
      return resetPassword(hash, passwordHash, now)
    },

    async verifyEmail (hash: Buffer, now: number) {
      return verifyEmail(hash, now)
    },

    async enqueueEmail (message: OutgoingEmail & { userId?: number }, now: number) {
      insertEmail(message.userId ?? null, message, now)
    },

    async claimEmails (claimId: Buffer, now: number, claimedUntil: number, limit: number) {
      return claimEmails(claimId, now, claimedUntil, limit).map(toClaimedEmail)
    },

    async deleteEmail (id: number, claimId: Buffer) {
      sql('DELETE FROM outbox WHERE id = ? AND claim_id = ?').run(id, claimId)
    },

    async emailFailed (id: number, claimId: Buffer, nextAttemptAt: number, error: string) {
      sql('UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, claim_id = NULL, claimed_until = NULL, last_error = ? WHERE id = ? AND claim_id = ?')
        .run(nextAttemptAt, error.slice(0, 255), id, claimId)
    },

    async pruneOutbox (now: number, limit: number) {
      return sql('DELETE FROM outbox WHERE id IN (SELECT id FROM outbox WHERE expires_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?) LIMIT ?)')
        .run(now, now, limit).changes
    },

    async pruneEmailTokens (before: number, limit: number) {
      return sql('DELETE FROM account_tokens WHERE id IN (SELECT id FROM account_tokens WHERE expires_at < ? AND created_at < ? LIMIT ?)')
        .run(before, before, limit).changes
    },

    async recordSecurityEvent (userId: number, { type, at, ip, userAgent }: SecurityEvent) {
      // INSERT … SELECT: for a user deleted meanwhile nothing is inserted, and no foreign key fails.
      sql('INSERT INTO security_events (user_id, type, at, ip, user_agent) SELECT id, ?, ?, ?, ? FROM users WHERE id = ?')
        .run(type, at, ip, userAgent, userId)
    },

    async listSecurityEvents (userId: number, limit: number) {
      const rows = sql('SELECT type, at, ip, user_agent FROM security_events WHERE user_id = ? ORDER BY at DESC, id DESC LIMIT ?')
        .all(userId, limit) as Array<{ type: SecurityEvent['type'], at: number, ip: string | null, user_agent: string | null }>
      return rows.map(row => ({ type: row.type, at: row.at, ip: row.ip, userAgent: row.user_agent }))
    },

    async pruneSecurityEvents (before: number, limit: number) {
      return sql('DELETE FROM security_events WHERE id IN (SELECT id FROM security_events WHERE at < ? LIMIT ?)')
        .run(before, limit).changes
    },

    async listOutbox () {
      const rows = sql(`SELECT ${OUTBOX_ENTRY_COLUMNS} FROM outbox ORDER BY id`).all() as unknown as OutboxEntryRow[]
      return rows.map(toOutboxEntry)
    },

    async retryFailedEmails (now: number) {
      return sql(`UPDATE outbox SET attempts = 0, next_attempt_at = ?, last_error = NULL
        WHERE attempts > 0 AND expires_at > ? AND (claimed_until IS NULL OR claimed_until <= ?)`).run(now, now, now).changes
    },

    async outboxBacklog () {
      const row = sql('SELECT COUNT(*) AS pending, MIN(created_at) AS oldest FROM outbox').get() as { pending: number, oldest: number | null }
      return { pending: Number(row.pending), oldestCreatedAt: row.oldest === null ? null : Number(row.oldest) }
    },

    async ping () {
      sql('SELECT 1').get()
    }
  }
}

function toSession (row: SessionRow): SessionRecord {
  return { id: row.id, createdAt: row.created_at, lastUsedAt: row.last_used_at, ip: row.ip, userAgent: row.user_agent }
}

function toUser (row: UserRow | undefined): UserRecord | undefined {
  if (row === undefined) return undefined
  return {
    id: row.id,
    email: row.email,
    passwordHash: row.password_hash,
    createdAt: new Date(row.created_at),
    tokensNotBefore: row.tokens_not_before,
    emailVerifiedAt: row.email_verified_at,
    disabledAt: row.disabled_at
  }
}

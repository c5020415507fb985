import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import { EmailTaken } from '../errors.js'
import { openSqliteDriver, type SqliteDatabase, type SqliteStatement } from './sqlite-driver.js'
import type { LoginFailures, NewRefreshToken, NewUser, Rotation, Store, UserRecord } from './store.js'

export type { SqliteDatabase } from './sqlite-driver.js'

interface UserRow {
  id: number
  email: string
  password_hash: string
  created_at: string
  tokens_not_before: number
}

interface RefreshRow {
  user_id: number
  family_id: Buffer
  used_at: number | null
  tokens_not_before: number
}

const USER_COLUMNS = 'id, email, password_hash, created_at, tokens_not_before'

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
    sql('UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL').run(now, familyId)
  }
  const findRefreshToken = (hash: Buffer) => sql(
    'SELECT r.user_id, r.family_id, r.used_at, u.tokens_not_before FROM refresh_tokens r JOIN users u ON u.id = r.user_id WHERE r.token_hash = ?'
  ).get(hash) as RefreshRow | undefined

  // Both drivers are synchronous: each transaction runs to the end before any other query.
  const rotate = (hash: Buffer, next: Omit<NewRefreshToken, 'userId' | 'familyId'>, now: number) => db.immediate((): Rotation => {
    const { changes } = sql('UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?')
      .run(now, hash, now)
    const row = findRefreshToken(hash)
    if (changes === 1 && row !== undefined) {
      insertRefreshToken({ ...next, userId: row.user_id, familyId: row.family_id })
      return { outcome: 'rotated', userId: row.user_id, tokensNotBefore: row.tokens_not_before }
    }
    if (row?.used_at != null) {
      revokeFamily(row.family_id, now)
      return { outcome: 'reused', userId: row.user_id }
    }
    return { outcome: 'invalid' }
  })
  const recordFailures = (subjects: Buffer[], at: number) => db.immediate(() => {
    for (const subject of subjects) sql('INSERT INTO login_failures (subject, failed_at) VALUES (?, ?)').run(subject, at)
  })
  const endSessions = (userId: number, notBefore: number, now: number) => db.immediate(() => {
    sql('UPDATE users SET tokens_not_before = ? WHERE id = ?').run(notBefore, userId)
    sql('UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL').run(now, userId)
  })

  return {
    dialect: 'sqlite',

    async createUser ({ email, passwordHash, createdAt }: NewUser) {
      try {
        const { lastInsertRowid } = sql('INSERT INTO users (email, password_hash, created_at) VALUES (?, ?, ?)')
          .run(email, passwordHash, createdAt.toISOString())
        return { id: Number(lastInsertRowid), email, passwordHash, createdAt, tokensNotBefore: 0 }
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

    async createRefreshToken (token: NewRefreshToken) {
      insertRefreshToken(token)
    },

    async rotateRefreshToken (hash, next, now) {
      return rotate(hash, next, now)
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

    async ping () {
      sql('SELECT 1').get()
    }
  }
}

function toUser (row: UserRow | undefined): UserRecord | undefined {
  if (row === undefined) return undefined
  return {
    id: row.id,
    email: row.email,
    passwordHash: row.password_hash,
    createdAt: new Date(row.created_at),
    tokensNotBefore: row.tokens_not_before
  }
}

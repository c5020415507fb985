import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'
import Database from 'better-sqlite3'
import { EmailTaken } from '../errors.js'
import type { NewUser, Store, UserRecord } from './store.js'

export type SqliteDatabase = Database.Database

interface UserRow {
  id: number
  email: string
  password_hash: string
  created_at: string
}

export function openSqlite (path: string): SqliteDatabase {
  if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true })
  const db = new Database(path)
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = NORMAL')
  db.pragma('busy_timeout = 5000')
  db.pragma('foreign_keys = ON')
  return db
}

/**
 * Statements are prepared on first use and kept, so each query is compiled once; they
 * cannot be prepared up front because the tables may not exist until migrations ran.
 */
function statements (db: SqliteDatabase) {
  const cache = new Map<string, Database.Statement>()
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

  return {
    dialect: 'sqlite',

    async createUser ({ email, passwordHash, createdAt }: NewUser) {
      try {
        const { lastInsertRowid } = sql('INSERT INTO users (email, password_hash, created_at) VALUES (?, ?, ?)')
          .run(email, passwordHash, createdAt.toISOString())
        return { id: Number(lastInsertRowid), email, passwordHash, createdAt }
      } catch (err) {
        if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new EmailTaken()
        throw err
      }
    },

    async findUserByEmail (email: string) {
      return toUser(sql('SELECT id, email, password_hash, created_at FROM users WHERE email = ?').get(email) as UserRow | undefined)
    },

    async findUserById (id: number) {
      return toUser(sql('SELECT id, email, password_hash, created_at FROM users WHERE id = ?').get(id) as UserRow | undefined)
    },

    async updatePasswordHash (id: number, passwordHash: string) {
      sql('UPDATE users SET password_hash = ? WHERE id = ?').run(passwordHash, id)
    },

    async ping () {
      sql('SELECT 1').get()
    }
  }
}

function toUser (row: UserRow | undefined): UserRecord | undefined {
  if (row === undefined) return undefined
  return { id: row.id, email: row.email, passwordHash: row.password_hash, createdAt: new Date(row.created_at) }
}

import type { Pool, ResultSetHeader, RowDataPacket } from 'mysql2/promise'
import { EmailTaken } from '../errors.js'
import type { NewUser, Store, UserRecord } from './store.js'

interface UserRow extends RowDataPacket {
  id: number
  email: string
  password_hash: string
  created_at: Date
}

/** The pool options the store relies on: UTC dates and full Unicode. */
export const poolOptions = {
  timezone: 'Z',
  charset: 'utf8mb4',
  dateStrings: false,
  supportBigNumbers: true,
  bigNumberStrings: false,
  connectionLimit: 10,
  maxIdle: 10,
  idleTimeout: 60_000,
  connectTimeout: 5_000,
  enableKeepAlive: true
} as const

/** Every query goes through `execute`, which prepares it once per connection and reuses it. */
export function createMysqlStore (pool: Pool): Store {
  return {
    dialect: 'mysql',

    async createUser ({ email, passwordHash, createdAt }: NewUser) {
      try {
        const [result] = await pool.execute<ResultSetHeader>(
          'INSERT INTO users (email, password_hash, created_at) VALUES (?, ?, ?)',
          [email, passwordHash, createdAt])
        return { id: result.insertId, email, passwordHash, createdAt }
      } catch (err) {
        if ((err as { code?: string }).code === 'ER_DUP_ENTRY') throw new EmailTaken()
        throw err
      }
    },

    async findUserByEmail (email: string) {
      const [rows] = await pool.execute<UserRow[]>(
        'SELECT id, email, password_hash, created_at FROM users WHERE email = ?', [email])
      return toUser(rows[0])
    },

    async findUserById (id: number) {
      const [rows] = await pool.execute<UserRow[]>(
        'SELECT id, email, password_hash, created_at FROM users WHERE id = ?', [id])
      return toUser(rows[0])
    },

    async updatePasswordHash (id: number, passwordHash: string) {
      await pool.execute('UPDATE users SET password_hash = ? WHERE id = ?', [passwordHash, id])
    },

    async ping () {
      await pool.query('SELECT 1')
    }
  }
}

function toUser (row: UserRow | undefined): UserRecord | undefined {
  if (row === undefined) return undefined
  return { id: Number(row.id), email: row.email, passwordHash: row.password_hash, createdAt: row.created_at }
}

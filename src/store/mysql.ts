import { setTimeout as sleep } from 'node:timers/promises'
import type { FieldPacket, Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise'
import { EmailTaken } from '../errors.js'
import type { LoginFailures, NewRefreshToken, NewUser, Rotation, Store, UserRecord } from './store.js'

interface UserRow extends RowDataPacket {
  id: number
  email: string
  password_hash: string
  created_at: Date
  tokens_not_before: number
}

interface RefreshRow extends RowDataPacket {
  user_id: number
  family_id: Buffer
  used_at: number | null
  tokens_not_before: number
}

const USER_COLUMNS = 'id, email, password_hash, created_at, tokens_not_before'
const INSERT_REFRESH_TOKEN = 'INSERT INTO refresh_tokens (token_hash, user_id, family_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)'
const FIND_REFRESH_TOKEN = 'SELECT r.user_id, r.family_id, r.used_at, u.tokens_not_before FROM refresh_tokens r JOIN users u ON u.id = r.user_id WHERE r.token_hash = ?'
const USE_REFRESH_TOKEN = 'UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?'
const REVOKE_FAMILY = 'UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL'

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

const DEADLOCK_RETRIES = 5
type Values = Parameters<PoolConnection['execute']>[1]

/**
 * How long one database call may take, the wait for a pooled connection included, before the
 * database counts as unavailable (503). Without it a database that accepts connections and then
 * never answers (a network black hole) holds each request, then each pooled connection, forever.
 */
export const DATABASE_TIMEOUT_MS = 5_000

function timedOut (): Error {
  return Object.assign(new Error('The database did not answer in time'), { code: 'PROTOCOL_SEQUENCE_TIMEOUT' })
}

/**
 * InnoDB may pick a statement as a deadlock victim when rotations and family revocations of
 * one family cross, and a Galera cluster fails, with the same error at commit, the transaction
 * that lost certification to a write on another node. The victim's work is rolled back whole,
 * so running it again is safe; a short random pause keeps the retries from meeting again.
 */
async function retryOnDeadlock<T> (fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn()
    } catch (err) {
      if ((err as { code?: string }).code !== 'ER_LOCK_DEADLOCK' || attempt >= DEADLOCK_RETRIES) throw err
      await sleep(Math.random() * 10 * attempt)
    }
  }
}

/**
 * A Galera node answers reads from what it has applied, which may lag a write committed on
 * another node by a moment. This prefix makes one statement first wait until the node has
 * applied every write the cluster had ordered when the statement arrived (1: reads, 3: reads,
 * updates and deletes). MariaDB's SET STATEMENT scopes it to the statement.
 * @see https://mariadb.com/kb/en/galera-cluster-system-variables/#wsrep_sync_wait
 */
const SYNC_READ = 'SET STATEMENT wsrep_sync_wait = 1 FOR '
const SYNC_UPDATE = 'SET STATEMENT wsrep_sync_wait = 3 FOR '

export interface MysqlStoreOptions {
  /** On a Galera cluster, make the reads that decide about authentication causal. */
  causalReads?: boolean
}

/** Every query goes through `execute`, which prepares it once per connection and reuses it. */
export function createMysqlStore (pool: Pool, { causalReads = true }: MysqlStoreOptions = {}): Store {
  let galera: Promise<boolean> | undefined
  /**
   * Runs `fn` on a pooled connection within DATABASE_TIMEOUT_MS. mysql2's per-query `timeout`
   * is not enough: it covers neither the wait for a connection nor the PREPARE that `execute`
   * sends first, and a timed-out `pool.execute` never gives its connection back. A connection
   * that timed out is destroyed (the server then rolls back whatever it had begun), since
   * nobody knows where its protocol stands.
   */
  async function withConnection<T> (fn: (connection: PoolConnection) => Promise<T>): Promise<T> {
    let expired = false
    let connection: PoolConnection | undefined
    let timer: NodeJS.Timeout | undefined
    const deadline = new Promise<never>((_resolve, reject) => {
      timer = setTimeout(() => {
        expired = true
        connection?.destroy()
        reject(timedOut())
      }, DATABASE_TIMEOUT_MS)
    })
    const work = (async () => {
      const acquired = await pool.getConnection()
      if (expired) {
        acquired.release()
        throw timedOut()
      }
      connection = acquired
      try {
        return await fn(acquired)
      } finally {
        if (!expired) acquired.release()
      }
    })()
    try {
      return await Promise.race([work, deadline])
    } finally {
      clearTimeout(timer)
    }
  }

  function execute<T extends RowDataPacket[] | ResultSetHeader> (sql: string, values: Values): Promise<[T, FieldPacket[]]> {
    return withConnection(connection => connection.execute<T>(sql, values))
  }

  /** Whether the server is a Galera node, asked once; a failed question is asked again. */
  function isGalera (): Promise<boolean> {
    galera ??= withConnection(connection => connection.query<RowDataPacket[]>("SHOW VARIABLES LIKE 'wsrep_on'"))
      .then(([rows]) => rows[0]?.Value === 'ON')
      .catch(err => { galera = undefined; throw err })
    return galera
  }

  /** The statement, made causal on a Galera cluster when the setting asks for it. */
  async function causal (sql: string, prefix = SYNC_READ): Promise<string> {
    return causalReads && await isGalera() ? prefix + sql : sql
  }

  /** A one-statement write, run again if it lost a deadlock or, on Galera, certification. */
  function write<T extends RowDataPacket[] | ResultSetHeader> (sql: string, values: Values) {
    return retryOnDeadlock(() => execute<T>(sql, values))
  }

  function transaction<T> (fn: (connection: PoolConnection) => Promise<T>): Promise<T> {
    return retryOnDeadlock(() => withConnection(async connection => {
      await connection.beginTransaction()
      try {
        const result = await fn(connection)
        await connection.commit()
        return result
      } catch (err) {
        await connection.rollback().catch(() => {})
        throw err
      }
    }))
  }

  async function findRefreshToken (hash: Buffer) {
    const [rows] = await execute<RefreshRow[]>(await causal(FIND_REFRESH_TOKEN), [hash])
    return rows[0]
  }

  return {
    dialect: 'mysql',

    async createUser ({ email, passwordHash, createdAt }: NewUser) {
      try {
        const [result] = await write<ResultSetHeader>(
          'INSERT INTO users (email, password_hash, created_at) VALUES (?, ?, ?)',
          [email, passwordHash, createdAt])
        return { id: result.insertId, email, passwordHash, createdAt, tokensNotBefore: 0 }
      } catch (err) {
        if ((err as { code?: string }).code === 'ER_DUP_ENTRY') throw new EmailTaken()
        throw err
      }
    },

    async findUserByEmail (email: string) {
      const [rows] = await execute<UserRow[]>(await causal(`SELECT ${USER_COLUMNS} FROM users WHERE email = ?`), [email])
      return toUser(rows[0])
    },

    async findUserById (id: number) {
      const [rows] = await execute<UserRow[]>(await causal(`SELECT ${USER_COLUMNS} FROM users WHERE id = ?`), [id])
      return toUser(rows[0])
    },

    async updatePasswordHash (id: number, passwordHash: string) {
      await write('UPDATE users SET password_hash = ? WHERE id = ?', [passwordHash, id])
    },

    async createRefreshToken ({ hash, userId, familyId, createdAt, expiresAt }: NewRefreshToken) {
      await write(INSERT_REFRESH_TOKEN, [hash, userId, familyId, createdAt, expiresAt])
    },

    async rotateRefreshToken (hash, next, now): Promise<Rotation> {
      const use = await causal(USE_REFRESH_TOKEN, SYNC_UPDATE)
      const rotated = await transaction(async connection => {
        // The row lock this UPDATE takes makes a concurrent rotation of the same token wait,
        // then find it used and change nothing; on Galera, the rotation that lost
        // certification is retried and, causal, finds it used too.
        const [result] = await connection.execute<ResultSetHeader>(use, [now, hash, now])
        if (result.affectedRows !== 1) return undefined
        const [rows] = await connection.execute<RefreshRow[]>(FIND_REFRESH_TOKEN, [hash])
        const row = rows[0]!
        await connection.execute(INSERT_REFRESH_TOKEN, [next.hash, row.user_id, row.family_id, next.createdAt, next.expiresAt])
        return { outcome: 'rotated' as const, userId: Number(row.user_id), tokensNotBefore: Number(row.tokens_not_before) }
      })
      if (rotated !== undefined) return rotated

      const row = await findRefreshToken(hash)
      if (row?.used_at != null) {
        await write(REVOKE_FAMILY, [now, row.family_id])
        return { outcome: 'reused', userId: Number(row.user_id) }
      }
      return { outcome: 'invalid' }
    },

    async revokeRefreshTokenFamily (hash: Buffer, now: number) {
      const row = await findRefreshToken(hash)
      if (row === undefined) return false
      await write(REVOKE_FAMILY, [now, row.family_id])
      return true
    },

    async endSessions (userId: number, notBefore: number, now: number) {
      await transaction(async connection => {
        await connection.execute('UPDATE users SET tokens_not_before = ? WHERE id = ?', [notBefore, userId])
        await connection.execute('UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL', [now, userId])
      })
    },

    async pruneRefreshTokens (now: number, limit: number) {
      const [result] = await write<ResultSetHeader>(
        'DELETE FROM refresh_tokens WHERE expires_at < ? ORDER BY expires_at LIMIT ?', [now, String(limit)])
      return result.affectedRows
    },

    async recordLoginFailure (subjects: Buffer[], at: number) {
      const rows = subjects.map(() => '(?, ?)').join(', ')
      await write(`INSERT INTO login_failures (subject, failed_at) VALUES ${rows}`, subjects.flatMap(s => [s, at]))
    },

    async countLoginFailures (subjects: Buffer[], since: number) {
      const count = await causal('SELECT COUNT(*) AS count, MIN(failed_at) AS oldest FROM login_failures WHERE subject = ? AND failed_at > ?')
      return Promise.all(subjects.map(async subject => {
        const [rows] = await execute<Array<RowDataPacket & { count: number, oldest: number | null }>>(count, [subject, since])
        return { subject, count: Number(rows[0]!.count), oldest: Number(rows[0]!.oldest ?? 0) } satisfies LoginFailures
      }))
    },

    async clearLoginFailures (subject: Buffer) {
      await write('DELETE FROM login_failures WHERE subject = ?', [subject])
    },

    async pruneLoginFailures (before: number, limit: number) {
      const [result] = await write<ResultSetHeader>(
        'DELETE FROM login_failures WHERE failed_at <= ? ORDER BY failed_at LIMIT ?', [before, String(limit)])
      return result.affectedRows
    },

    async ping () {
      await withConnection(connection => connection.query('SELECT 1'))
    }
  }
}

function toUser (row: UserRow | undefined): UserRecord | undefined {
  if (row === undefined) return undefined
  return {
    id: Number(row.id),
    email: row.email,
    passwordHash: row.password_hash,
    createdAt: row.created_at,
    tokensNotBefore: Number(row.tokens_not_before)
  }
}

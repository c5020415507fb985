import { setTimeout as sleep } from 'node:timers/promises'
import type { FieldPacket, Pool, PoolConnection, ResultSetHeader, RowDataPacket } from 'mysql2/promise'
import { EmailTaken } from '../errors.js'
import { perTurn } from './turn-batch.js'
import { answersFrom, authenticationQueries, batchedAuthentication, type AuthenticationRead, type AuthenticationRow } from './authentication-batch.js'
import { MAX_ROTATION_BATCH, OUTBOX_ENTRY_COLUMNS, toClaimedEmail, toOutboxEntry, type Authentication, type ClaimedEmail, type EmailTokenOutcome, type EmailTokenRequest, type ChainRow, type FirstRefreshToken, type LegacyRotation, type LoginFailures, type NewRefreshToken, type NewSession, type NewUser, type OutboxEntryRow, type OutboxRow as OutboxColumns, type OutgoingEmail, type Rotation, type RotationRequest, refreshChain, rotationAnswer, type SecurityEvent, type SessionRecord, type Store, type UserRecord } from './store.js'

interface UserRow extends RowDataPacket {
  id: number
  email: string
  password_hash: string
  created_at: Date
  tokens_not_before: number
  email_verified_at: number | null
  disabled_at: number | null
}

type OutboxRow = RowDataPacket & OutboxColumns

interface SpentRow extends RowDataPacket {
  user_id: number
  email: string
}

interface RefreshRow extends RowDataPacket {
  user_id: number
  family_id: Buffer
  used_at: number | null
  tokens_not_before: number
}

type ChainRows = RowDataPacket & ChainRow

/** The columns of a session's refresh-token chain, with what a rotation answers. */
const CHAIN_COLUMNS = 's.user_id, s.refresh_generation, s.refresh_hash, s.refresh_key, s.ended_at, s.expires_at, u.tokens_not_before'

/** The procedure's answer: a session's row after the call, with the rotation's place in the batch. */
type RotatedRows = ChainRows & { i: number }

/** The bytes of one rotation in the procedure's `batch`. */
const ROTATION_BYTES = 100

/** The procedure's `batch`: per rotation the session, the generation, both hashes, the time and the expiry. */
function encodeRotations (batch: RotationRequest[]): Buffer {
  const out = Buffer.alloc(batch.length * ROTATION_BYTES)
  batch.forEach(({ sessionId, generation, hash, nextHash, now, expiresAt }, i) => {
    const at = i * ROTATION_BYTES
    sessionId.copy(out, at)
    out.writeUInt32BE(generation, at + 16)
    hash.copy(out, at + 20)
    nextHash.copy(out, at + 52)
    out.writeBigInt64BE(BigInt(now), at + 84)
    out.writeBigInt64BE(BigInt(expiresAt), at + 92)
  })
  return out
}

const USER_COLUMNS = 'id, email, password_hash, created_at, tokens_not_before, email_verified_at, disabled_at'
const INSERT_REFRESH_TOKEN = 'INSERT INTO refresh_tokens (token_hash, user_id, family_id, created_at, expires_at) VALUES (?, ?, ?, ?, ?)'
const FIND_REFRESH_TOKEN = 'SELECT r.user_id, r.family_id, r.used_at, u.tokens_not_before FROM refresh_tokens r JOIN users u ON u.id = r.user_id WHERE r.token_hash = ?'
const USE_LEGACY_TOKEN = 'UPDATE refresh_tokens SET used_at = ? WHERE token_hash = ? AND used_at IS NULL AND revoked_at IS NULL AND expires_at > ?'
const START_CHAIN = `UPDATE sessions SET refresh_generation = refresh_generation + 1, refresh_hash = ?, refresh_key = ?, last_used_at = ?, expires_at = ?
  WHERE id = ? AND ended_at IS NULL AND expires_at > ?`
const FIND_CHAIN = `SELECT ${CHAIN_COLUMNS} FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?`
/**
 * Calls of the procedure at once, at most: rotations that arrive while they run wait and go
 * together in the next. Fewer, larger calls cost MariaDB less per rotation (its CPU per refresh
 * fell from 41–43 µs to 36–37 under `npm run bench -- --mysql`) and the refresh rate rose.
 */
const ROTATION_CALLS_IN_FLIGHT = 3

/** One round trip for a batch of rotations: the procedure of migration 0009, which answers one row per session found. */
const ROTATE_REFRESH_CHAINS = 'CALL rotate_refresh_chains(?)'
const INSERT_EMAIL = `INSERT INTO outbox (user_id, recipient, subject, text_body, html_body, link, created_at, expires_at, next_attempt_at)
  SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? FROM DUAL WHERE ? IS NULL OR EXISTS (SELECT 1 FROM users WHERE id = ?)`
const SPEND_TOKEN = 'UPDATE account_tokens SET used_at = ? WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?'
const SPENT_TOKEN = 'SELECT t.user_id, u.email FROM account_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = ?'

function emailValues (userId: number | null, message: OutgoingEmail, now: number): Values {
  return [userId, message.recipient, message.subject, message.text, message.html, message.link ?? null, now, message.expiresAt, now, userId, userId]
}

const END_FAMILY_SESSION = 'UPDATE sessions SET ended_at = ? WHERE id = ? AND ended_at IS NULL'
/**
 * A session only for an account that exists and is not disabled: the read of the user row locks
 * it, so a login racing a disabling either ends before it (and its session is ended with the
 * others) or finds the account disabled and starts nothing.
 */
const INSERT_SESSION = `INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, ip, user_agent, refresh_hash, refresh_key)
  SELECT ?, id, ?, ?, ?, ?, ?, ?, ? FROM users WHERE id = ? AND disabled_at IS NULL`
const AUTHENTICATION = authenticationQueries(USER_COLUMNS)

interface SessionRow extends RowDataPacket {
  id: Buffer
  created_at: number
  last_used_at: number
  ip: string | null
  user_agent: string | null
}

/** A row that names a user who is gone (deleted meanwhile). */
function isForeignKeyFailure (err: unknown): boolean {
  return (err as { code?: string }).code === 'ER_NO_REFERENCED_ROW_2'
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
  enableKeepAlive: true,
  // By default mysql2 captures a stack trace for every statement, to point a failed one's error
  // at its caller: about 13 µs a statement, and a refresh runs six. Without it an error keeps
  // mysql2's own stack, and its code and message still say what failed.
  trace: false
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
 * applied every write the cluster had ordered when the statement arrived; a transaction that
 * must see such writes starts with one such read. MariaDB's SET STATEMENT scopes it to the
 * statement.
 * @see https://mariadb.com/kb/en/galera-cluster-system-variables/#wsrep_sync_wait
 */
const SYNC_READ = 'SET STATEMENT wsrep_sync_wait = 1 FOR '
/** What a causal transaction starts with: a read that waits for the node to catch up. */
const CATCH_UP = `${SYNC_READ}SELECT 1 FROM users LIMIT 1`

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
  async function causal (sql: string): Promise<string> {
    return causalReads && await isGalera() ? SYNC_READ + sql : sql
  }

  /** A one-statement write, run again if it lost a deadlock or, on Galera, certification. */
  function write<T extends RowDataPacket[] | ResultSetHeader> (sql: string, values: Values) {
    return retried(connection => connection.execute<T>(sql, values))
  }

  /**
   * `fn` on a pooled connection, run again whole when it lost a deadlock or, on Galera,
   * certification; `causal`, it first waits, on that connection and so on its node, for the
   * writes the cluster had committed, before any of its statements runs.
   */
  async function retried<T> (fn: (connection: PoolConnection) => Promise<T>, { causal = false } = {}): Promise<T> {
    const wait = causal && causalReads && await isGalera()
    return retryOnDeadlock(() => withConnection(async connection => {
      if (wait) await connection.query(CATCH_UP)
      return fn(connection)
    }))
  }

  /** A transaction, retried (and causal) as `retried` says. */
  function transaction<T> (fn: (connection: PoolConnection) => Promise<T>, options: { causal?: boolean } = {}): Promise<T> {
    return retried(async connection => {
      await connection.beginTransaction()
      try {
        const result = await fn(connection)
        await connection.commit()
        return result
      } catch (err) {
        await connection.rollback().catch(() => {})
        throw err
      }
    }, options)
  }

  async function findAuthentications (batch: AuthenticationRead[]): Promise<Array<Authentication | undefined>> {
    if (batch.length === 1) {
      const { userId, sessionId } = batch[0]!
      const [rows] = await execute<Array<UserRow & { session_live: number }>>(await causal(AUTHENTICATION.one), [sessionId, userId])
      const row = rows[0]
      return [row === undefined ? undefined : { user: toUser(row)!, sessionLive: Number(row.session_live) === 1 }]
    }
    const { sql, values } = AUTHENTICATION.many(batch)
    const [rows] = await execute<Array<UserRow & AuthenticationRow>>(await causal(sql), values)
    return answersFrom(batch, rows, toUser)
  }

  /** The user and email of a live token of this purpose, now spent; undefined when it was not live. */
  async function spendToken (connection: PoolConnection, hash: Buffer, purpose: string, now: number) {
    const [result] = await connection.execute<ResultSetHeader>(SPEND_TOKEN, [now, hash, purpose, now])
    if (result.affectedRows !== 1) return undefined
    const [rows] = await connection.execute<SpentRow[]>(SPENT_TOKEN, [hash])
    return { userId: Number(rows[0]!.user_id), email: rows[0]!.email }
  }

  /**
   * The rotations that arrived in one turn, in one call of the procedure: one round trip and one
   * commit for all of them. On Galera it starts causal, like the other transactions; a batch
   * that lost certification is run again whole, and a rotation in it that did commit finds its
   * successor's hash in its session's row all the same.
   */
  async function rotateBatch (batch: RotationRequest[]): Promise<Rotation[]> {
    const rows = await retried(async connection => {
      const [results] = await connection.execute<RotatedRows[][]>(ROTATE_REFRESH_CHAINS, [encodeRotations(batch)])
      return results[0]!
    }, { causal: true })
    const byPlace: Array<ChainRow | undefined> = []
    for (const row of rows) byPlace[Number(row.i)] = row
    return batch.map((r, i) => rotationAnswer(r, byPlace[i]))
  }
  const rotate = perTurn(MAX_ROTATION_BATCH, rotateBatch, ROTATION_CALLS_IN_FLIGHT)

  async function findRefreshToken (hash: Buffer) {
    const [rows] = await execute<RefreshRow[]>(await causal(FIND_REFRESH_TOKEN), [hash])
    return rows[0]
  }

  function revokeFamily (familyId: Buffer, now: number) {
    return write(END_FAMILY_SESSION, [now, familyId])
  }

  /** False, and nothing written, when the user is gone or disabled. */
  async function insertSession (connection: PoolConnection, session: NewSession, token: FirstRefreshToken) {
    const [result] = await connection.execute<ResultSetHeader>(INSERT_SESSION,
      [session.id, session.createdAt, session.createdAt, session.expiresAt, session.ip, session.userAgent, token.hash, token.key, session.userId])
    return result.affectedRows === 1
  }

  async function endAllSessions (connection: PoolConnection, userId: number, now: number) {
    await connection.execute('UPDATE sessions SET ended_at = ? WHERE user_id = ? AND ended_at IS NULL', [now, userId])
  }

  return {
    dialect: 'mysql',

    async createUser ({ email, passwordHash, createdAt }: NewUser) {
      try {
        const [result] = await write<ResultSetHeader>(
          'INSERT INTO users (email, password_hash, created_at) VALUES (?, ?, ?)',
          [email, passwordHash, createdAt])
        return { id: result.insertId, email, passwordHash, createdAt, tokensNotBefore: 0, emailVerifiedAt: null, disabledAt: null }
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

    findAuthentication: batchedAuthentication(findAuthentications),

    async changePassword (userId, currentHash, newHash, next, token, now) {
      return transaction(async connection => {
        // The row lock this UPDATE takes makes a concurrent change wait, then find the hash changed.
        const [result] = await connection.execute<ResultSetHeader>(
          'UPDATE users SET password_hash = ? WHERE id = ? AND password_hash = ? AND disabled_at IS NULL', [newHash, userId, currentHash])
        if (result.affectedRows !== 1) return false
        await endAllSessions(connection, userId, now)
        return insertSession(connection, next, token)
      })
    },

    async deleteUser (userId: number) {
      return transaction(async connection => {
        const [result] = await connection.execute<ResultSetHeader>('DELETE FROM users WHERE id = ?', [userId])
        return result.affectedRows === 1
      })
    },

    async disableUser (userId: number, now: number) {
      return transaction(async connection => {
        const [result] = await connection.execute<ResultSetHeader>(
          'UPDATE users SET disabled_at = ?, tokens_not_before = ? WHERE id = ? AND disabled_at IS NULL', [now, now + 1, userId])
        if (result.affectedRows !== 1) return false
        await endAllSessions(connection, userId, now)
        return true
      }, { causal: true })
    },

    async enableUser (userId: number) {
      const [result] = await write<ResultSetHeader>('UPDATE users SET disabled_at = NULL WHERE id = ? AND disabled_at IS NOT NULL', [userId])
      return result.affectedRows === 1
    },

    async markEmailVerified (userId: number, now: number) {
      const [result] = await write<ResultSetHeader>('UPDATE users SET email_verified_at = ? WHERE id = ? AND email_verified_at IS NULL', [now, userId])
      return result.affectedRows === 1
    },

    async createSession (session: NewSession, token: FirstRefreshToken) {
      try {
        return await transaction(connection => insertSession(connection, session, token))
      } catch (err) {
        if (isForeignKeyFailure(err)) return false
        throw err
      }
    },

    async listSessions (userId: number, now: number) {
      const [rows] = await execute<SessionRow[]>(await causal(
        'SELECT id, created_at, last_used_at, ip, user_agent FROM sessions WHERE user_id = ? AND ended_at IS NULL AND expires_at > ? ORDER BY created_at DESC, id'),
      [userId, now])
      return rows.map(toSession)
    },

    async endSession (userId: number, sessionId: Buffer, now: number) {
      const [result] = await write<ResultSetHeader>(
        'UPDATE sessions SET ended_at = ? WHERE id = ? AND user_id = ? AND ended_at IS NULL AND expires_at > ?', [now, sessionId, userId, now])
      return result.affectedRows === 1
    },

    async pruneSessions (now: number, limit: number) {
      const [result] = await write<ResultSetHeader>('DELETE FROM sessions WHERE expires_at < ? ORDER BY expires_at LIMIT ?', [now, String(limit)])
      return result.affectedRows
    },

    async createRefreshToken ({ hash, userId, familyId, createdAt, expiresAt }: NewRefreshToken) {
      await write(INSERT_REFRESH_TOKEN, [hash, userId, familyId, createdAt, expiresAt])
    },

    rotateRefreshToken: rotate,

    async rotateLegacyRefreshToken (hash, next, now): Promise<LegacyRotation> {
      const outcome = await transaction(async connection => {
        const [used] = await connection.execute<ResultSetHeader>(USE_LEGACY_TOKEN, [now, hash, now])
        const [tokens] = await connection.execute<RefreshRow[]>(FIND_REFRESH_TOKEN, [hash])
        const token = tokens[0]
        if (token === undefined) return { outcome: 'invalid' as const }
        if (used.affectedRows !== 1) {
          if (token.used_at === null) return { outcome: 'invalid' as const }
          await connection.execute(END_FAMILY_SESSION, [now, token.family_id])
          return { outcome: 'reused' as const, userId: Number(token.user_id) }
        }
        const [started] = await connection.execute<ResultSetHeader>(START_CHAIN, [next.hash, next.key, now, next.expiresAt, token.family_id, now])
        if (started.affectedRows !== 1) return { outcome: 'invalid' as const }
        const [rows] = await connection.execute<ChainRows[]>(FIND_CHAIN, [token.family_id])
        return rotationAnswer({ sessionId: token.family_id, generation: 0, hash, nextHash: next.hash, expiresAt: next.expiresAt, now }, rows[0])
      }, { causal: true })
      return outcome.outcome === 'stale' ? { outcome: 'invalid' } : outcome
    },

    async findRefreshChain (sessionId: Buffer) {
      const [rows] = await execute<ChainRows[]>(await causal(FIND_CHAIN), [sessionId])
      return refreshChain(rows[0])
    },

    async endRefreshFamily (sessionId: Buffer, now: number) {
      await revokeFamily(sessionId, now)
    },

    async revokeRefreshTokenFamily (hash: Buffer, now: number) {
      const row = await findRefreshToken(hash)
      if (row === undefined) return false
      await revokeFamily(row.family_id, now)
      return true
    },

    async endSessions (userId: number, notBefore: number, now: number) {
      await transaction(async connection => {
        await connection.execute('UPDATE users SET tokens_not_before = ? WHERE id = ?', [notBefore, userId])
        await endAllSessions(connection, userId, now)
      }, { causal: true })
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

    async issueEmailToken ({ email, purpose, hash, now, expiresAt, since, limit, message, attemptSubject }: EmailTokenRequest) {
      // No account, or over the limit: the same statements run against user id 0, which matches
      // no row. The locking read makes concurrent requests for one account take turns, so the
      // hourly limit holds exactly.
      return transaction(async (connection): Promise<EmailTokenOutcome> => {
        if (attemptSubject !== undefined) await connection.execute('INSERT INTO login_failures (subject, failed_at) VALUES (?, ?)', [attemptSubject, now])
        const [users] = await connection.execute<Array<RowDataPacket & { id: number }>>('SELECT id FROM users WHERE email = ? FOR UPDATE', [email])
        const user = users[0]
        const [counts] = await connection.execute<Array<RowDataPacket & { count: number }>>(
          'SELECT COUNT(*) AS count FROM account_tokens WHERE user_id = ? AND purpose = ? AND created_at > ?', [user?.id ?? 0, purpose, since])
        const outcome = user === undefined ? 'no_account' as const : Number(counts[0]!.count) >= limit ? 'limited' as const : 'issued' as const
        const userId = outcome === 'issued' ? Number(user!.id) : 0
        await connection.execute('UPDATE account_tokens SET used_at = ? WHERE user_id = ? AND purpose = ? AND used_at IS NULL', [now, userId, purpose])
        await connection.execute('INSERT INTO account_tokens (token_hash, user_id, purpose, created_at, expires_at) SELECT ?, id, ?, ?, ? FROM users WHERE id = ?',
          [hash, purpose, now, expiresAt, userId])
        await connection.execute(INSERT_EMAIL, emailValues(userId, message, now))
        return outcome === 'issued' ? { outcome, userId } : { outcome }
      })
    },

    async isEmailTokenLive (hash: Buffer, purpose: string, now: number) {
      const [rows] = await execute<RowDataPacket[]>(await causal('SELECT 1 AS live FROM account_tokens WHERE token_hash = ? AND purpose = ? AND used_at IS NULL AND expires_at > ?'), [hash, purpose, now])
      return rows.length > 0
    },

    async resetPassword (hash: Buffer, passwordHash: string, now: number) {
      return transaction(async connection => {
        const spent = await spendToken(connection, hash, 'password_reset', now)
        if (spent === undefined) return undefined
        await connection.execute('UPDATE users SET password_hash = ? WHERE id = ?', [passwordHash, spent.userId])
        await connection.execute('UPDATE users SET tokens_not_before = ? WHERE id = ?', [now + 1, spent.userId])
        await endAllSessions(connection, spent.userId, now)
        return spent
      }, { causal: true })
    },

    async verifyEmail (hash: Buffer, now: number) {
      return transaction(async connection => {
        const spent = await spendToken(connection, hash, 'email_verification', now)
        if (spent === undefined) return undefined
        await connection.execute('UPDATE users SET email_verified_at = ? WHERE id = ? AND email_verified_at IS NULL', [now, spent.userId])
        return spent.userId
      }, { causal: true })
    },

    async enqueueEmail (message: OutgoingEmail & { userId?: number }, now: number) {
      await write(INSERT_EMAIL, emailValues(message.userId ?? null, message, now))
    },

    async claimEmails (claimId: Buffer, now: number, claimedUntil: number, limit: number): Promise<ClaimedEmail[]> {
      await write(
        `UPDATE outbox SET claim_id = ?, claimed_until = ? WHERE next_attempt_at <= ? AND expires_at > ?
          AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY id LIMIT ?`,
        [claimId, claimedUntil, now, now, now, String(limit)])
      const [rows] = await execute<OutboxRow[]>(await causal(
        'SELECT id, recipient, subject, text_body, html_body, link, attempts, expires_at FROM outbox WHERE claim_id = ? ORDER BY id'), [claimId])
      return rows.map(toClaimedEmail)
    },

    async deleteEmail (id: number, claimId: Buffer) {
      await write('DELETE FROM outbox WHERE id = ? AND claim_id = ?', [id, claimId])
    },

    async emailFailed (id: number, claimId: Buffer, nextAttemptAt: number, error: string) {
      await write(
        'UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?, claim_id = NULL, claimed_until = NULL, last_error = ? WHERE id = ? AND claim_id = ?',
        [nextAttemptAt, error.slice(0, 255), id, claimId])
    },

    async pruneOutbox (now: number, limit: number) {
      const [result] = await write<ResultSetHeader>(
        'DELETE FROM outbox WHERE expires_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY id LIMIT ?', [now, now, String(limit)])
      return result.affectedRows
    },

    async pruneEmailTokens (before: number, limit: number) {
      const [result] = await write<ResultSetHeader>(
        'DELETE FROM account_tokens WHERE expires_at < ? AND created_at < ? ORDER BY expires_at LIMIT ?', [before, before, String(limit)])
      return result.affectedRows
    },

    async recordSecurityEvent (userId: number, { type, at, ip, userAgent }: SecurityEvent) {
      // INSERT … SELECT: for a user deleted meanwhile nothing is inserted, and no foreign key fails.
      await write('INSERT INTO security_events (user_id, type, at, ip, user_agent) SELECT id, ?, ?, ?, ? FROM users WHERE id = ?',
        [type, at, ip, userAgent, userId])
    },

    async listSecurityEvents (userId: number, limit: number) {
      const [rows] = await execute<Array<RowDataPacket & { type: SecurityEvent['type'], at: number, ip: string | null, user_agent: string | null }>>(
        'SELECT type, at, ip, user_agent FROM security_events WHERE user_id = ? ORDER BY at DESC, id DESC LIMIT ?', [userId, String(limit)])
      return rows.map(row => ({ type: row.type, at: Number(row.at), ip: row.ip, userAgent: row.user_agent }))
    },

    async pruneSecurityEvents (before: number, limit: number) {
      const [result] = await write<ResultSetHeader>(
        'DELETE FROM security_events WHERE at < ? ORDER BY at LIMIT ?', [before, String(limit)])
      return result.affectedRows
    },

    async listOutbox () {
      const [rows] = await execute<Array<RowDataPacket & OutboxEntryRow>>(await causal(`SELECT ${OUTBOX_ENTRY_COLUMNS} FROM outbox ORDER BY id`), [])
      return rows.map(toOutboxEntry)
    },

    async retryFailedEmails (now: number) {
      const [result] = await write<ResultSetHeader>(
        `UPDATE outbox SET attempts = 0, next_attempt_at = ?, last_error = NULL
          WHERE attempts > 0 AND expires_at > ? AND (claimed_until IS NULL OR claimed_until <= ?)`, [now, now, now])
      return result.affectedRows
    },

    async outboxBacklog () {
      const [rows] = await execute<RowDataPacket[]>('SELECT COUNT(*) AS pending, MIN(created_at) AS oldest FROM outbox', [])
      const row = rows[0]!
      return { pending: Number(row.pending), oldestCreatedAt: row.oldest === null ? null : Number(row.oldest) }
    },

    async ping () {
      await withConnection(connection => connection.query('SELECT 1'))
    }
  }
}

function toSession (row: SessionRow): SessionRecord {
  return { id: row.id, createdAt: Number(row.created_at), lastUsedAt: Number(row.last_used_at), ip: row.ip, userAgent: row.user_agent }
}

function toUser (row: UserRow | undefined): UserRecord | undefined {
  if (row === undefined) return undefined
  return {
    id: Number(row.id),
    email: row.email,
    passwordHash: row.password_hash,
    createdAt: row.created_at,
    tokensNotBefore: Number(row.tokens_not_before),
    emailVerifiedAt: row.email_verified_at === null ? null : Number(row.email_verified_at),
    disabledAt: row.disabled_at === null ? null : Number(row.disabled_at)
  }
}

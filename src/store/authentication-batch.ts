import type { Authentication, UserRecord } from './store.js'
import { perTurn } from './turn-batch.js'

/** At most this many authentication reads share one query. */
export const MAX_AUTHENTICATION_BATCH = 64

/** One authentication read: the token's user and session. */
export interface AuthenticationRead {
  userId: number
  sessionId: Buffer
}

/** A row of the batched query: a user of the batch, with one of the batch's sessions that is theirs, or NULLs. */
export interface AuthenticationRow {
  id: number
  session_id: Buffer | null
  session_ended_at: number | null
}

/** The statements that read users with their sessions, given the user columns (`id, email, …`) both databases share. */
export function authenticationQueries (userColumns: string) {
  const columns = userColumns.split(', ').map(c => `u.${c}`).join(', ')
  const statements = new Map<string, string>()
  return {
    /** A lone read: the user, and whether the session is theirs and live. Values: session id, user id. */
    one: `SELECT ${columns}, s.id IS NOT NULL AND s.ended_at IS NULL AS session_live
  FROM users u LEFT JOIN sessions s ON s.id = ? AND s.user_id = u.id WHERE u.id = ?`,
    /**
     * The users of a batch, each with those of the batch's sessions that are theirs (one row per
     * match, or one with NULLs), and the values for it. IN lists come in powers of two (the last
     * value repeated), so a few prepared statements serve every batch.
     */
    many (batch: AuthenticationRead[]): { sql: string, values: Array<number | Buffer> } {
      const userIds = pad([...new Set(batch.map(b => b.userId))])
      const sessionIds = pad([...new Map(batch.map(b => [b.sessionId.toString('hex'), b.sessionId])).values()])
      const key = `${userIds.length}x${sessionIds.length}`
      let sql = statements.get(key)
      if (sql === undefined) {
        sql = `SELECT ${columns}, s.id AS session_id, s.ended_at AS session_ended_at
  FROM users u LEFT JOIN sessions s ON s.user_id = u.id AND s.id IN (${Array(sessionIds.length).fill('?').join(', ')})
  WHERE u.id IN (${Array(userIds.length).fill('?').join(', ')})`
        statements.set(key, sql)
      }
      return { sql, values: [...sessionIds, ...userIds] }
    }
  }
}

function pad<T> (values: T[]): T[] {
  const size = 2 ** Math.ceil(Math.log2(values.length))
  return values.length === size ? values : [...values, ...Array<T>(size - values.length).fill(values[values.length - 1]!)]
}

/** Each read's answer from the batched query's rows, as its own query would have given it. */
export function answersFrom<R extends AuthenticationRow> (batch: AuthenticationRead[], rows: R[], toUser: (row: R) => UserRecord | undefined): Array<Authentication | undefined> {
  const users = new Map<number, R>()
  const live = new Set<string>()
  for (const row of rows) {
    const id = Number(row.id)
    users.set(id, row)
    if (row.session_id !== null && row.session_ended_at === null) live.add(`${id}:${row.session_id.toString('hex')}`)
  }
  return batch.map(({ userId, sessionId }) => {
    const row = users.get(userId)
    // Each request gets a user object of its own.
    return row === undefined ? undefined : { user: toUser(row)!, sessionLive: live.has(`${userId}:${sessionId.toString('hex')}`) }
  })
}

/**
 * Authentication reads batched per turn of the event loop (perTurn): a logout committed before
 * a request came is seen by its read, as by a read of its own. `read` answers a batch of at most
 * MAX_AUTHENTICATION_BATCH, in order.
 */
export function batchedAuthentication (read: (batch: AuthenticationRead[]) => Promise<Array<Authentication | undefined>>) {
  const find = perTurn(MAX_AUTHENTICATION_BATCH, read)
  return (userId: number, sessionId: Buffer) => find({ userId, sessionId })
}

import { createRequire } from 'node:module'
import type BetterSqlite3 from 'better-sqlite3'

/**
 * The few calls the SQLite store and the migrator make, over whichever driver this Node has:
 * its built-in `node:sqlite` where it exists (Node >= 22.13), better-sqlite3 only where it
 * does not (Node 20). better-sqlite3 12 aborts the process on Node >= 24.19 when the GC
 * frees a statement, and 13 does not run on Node 20; `node:sqlite` needs no native build.
 */
export type SqliteDriver = 'node:sqlite' | 'better-sqlite3'

export type SqliteValue = null | number | bigint | string | Uint8Array
type Row = Record<string, unknown>

export interface SqliteStatement {
  run (...params: SqliteValue[]): { changes: number, lastInsertRowid: number }
  get (...params: SqliteValue[]): Row | undefined
  all (...params: SqliteValue[]): Row[]
}

export interface SqliteDatabase {
  readonly driver: SqliteDriver
  prepare (sql: string): SqliteStatement
  exec (sql: string): void
  /**
   * Runs `fn` in one `BEGIN IMMEDIATE` transaction (a savepoint when nested): committed when
   * it returns, rolled back when it throws. `fn` is synchronous, so nothing else runs between.
   */
  immediate<T> (fn: () => T): T
  close (): void
}

/** The parts of `node:sqlite` used here; @types/node 20 does not describe the module. */
interface NodeSqlite {
  DatabaseSync: new (path: string) => {
    prepare (sql: string): {
      run (...params: SqliteValue[]): { changes: number | bigint, lastInsertRowid: number | bigint }
      get (...params: SqliteValue[]): Row | undefined
      all (...params: SqliteValue[]): Row[]
    }
    exec (sql: string): void
    close (): void
  }
}

export function sqliteDriver (): SqliteDriver {
  return builtinSqlite() === undefined ? 'better-sqlite3' : 'node:sqlite'
}

export function openSqliteDriver (path: string): SqliteDatabase {
  const builtin = builtinSqlite()
  return builtin === undefined ? openBetterSqlite3(path) : openNodeSqlite(builtin, path)
}

let builtin: NodeSqlite | undefined | null = null

/**
 * Node 22 marks `node:sqlite` experimental and warns once on load; that one warning is not the
 * operator's concern, so it alone is kept quiet (Node 24 does not print it).
 */
function builtinSqlite (): NodeSqlite | undefined {
  if (builtin !== null) return builtin
  const emitWarning = process.emitWarning
  process.emitWarning = function (warning: string | Error, ...rest: unknown[]) {
    const type = typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type
    const message = typeof warning === 'string' ? warning : warning.message
    if (type === 'ExperimentalWarning' && message.startsWith('SQLite ')) return
    return (emitWarning as (...args: unknown[]) => void).call(process, warning, ...rest)
  } as typeof process.emitWarning
  try {
    builtin = process.getBuiltinModule('node:sqlite') as NodeSqlite | undefined
  } finally {
    process.emitWarning = emitWarning
  }
  return builtin
}

function openNodeSqlite ({ DatabaseSync }: NodeSqlite, path: string): SqliteDatabase {
  const db = new DatabaseSync(path)
  return withTransactions('node:sqlite', {
    prepare (sql) {
      const statement = guard(() => db.prepare(sql))
      return {
        run: (...params) => guard(() => {
          const { changes, lastInsertRowid } = statement.run(...params)
          return { changes: Number(changes), lastInsertRowid: Number(lastInsertRowid) }
        }),
        get: (...params) => guard(() => buffers(statement.get(...params))),
        all: (...params) => guard(() => statement.all(...params).map(row => buffers(row)!))
      }
    },
    exec: sql => guard(() => db.exec(sql)),
    close: () => db.close()
  })
}

function openBetterSqlite3 (path: string): SqliteDatabase {
  let Database: typeof BetterSqlite3
  try {
    Database = createRequire(import.meta.url)('better-sqlite3') as typeof BetterSqlite3
  } catch (err) {
    throw new Error(`SQLite needs Node >= 22.13 (node:sqlite) or the optional better-sqlite3 package on Node ${process.versions.node}: ${(err as Error).message}`)
  }
  const db = new Database(path)
  return withTransactions('better-sqlite3', {
    prepare (sql) {
      const statement = db.prepare(sql)
      return {
        run: (...params) => {
          const { changes, lastInsertRowid } = statement.run(...params)
          return { changes, lastInsertRowid: Number(lastInsertRowid) }
        },
        get: (...params) => statement.get(...params) as Row | undefined,
        all: (...params) => statement.all(...params) as Row[]
      }
    },
    exec: sql => { db.exec(sql) },
    close: () => { db.close() }
  })
}

function withTransactions (driver: SqliteDriver, db: Omit<SqliteDatabase, 'driver' | 'immediate'>): SqliteDatabase {
  let depth = 0
  const begin = lazy(() => db.prepare('BEGIN IMMEDIATE'))
  const commit = lazy(() => db.prepare('COMMIT'))
  const rollback = lazy(() => db.prepare('ROLLBACK'))
  return {
    driver,
    ...db,
    immediate<T> (fn: () => T): T {
      const savepoint = depth === 0 ? undefined : `nested_${depth}`
      if (savepoint === undefined) begin().run()
      else db.exec(`SAVEPOINT ${savepoint}`)
      depth++
      try {
        const result = fn()
        if (savepoint === undefined) commit().run()
        else db.exec(`RELEASE ${savepoint}`)
        return result
      } catch (err) {
        if (savepoint === undefined) rollBack(rollback())
        else db.exec(`ROLLBACK TO ${savepoint}; RELEASE ${savepoint}`)
        throw err
      } finally {
        depth--
      }
    }
  }
}

/** SQLite may have rolled back by itself (a full disk, an interrupt); then there is nothing to undo. */
function rollBack (rollback: SqliteStatement) {
  try {
    rollback.run()
  } catch (err) {
    if (!/no transaction is active/.test((err as Error).message)) throw err
  }
}

function lazy<T> (make: () => T): () => T {
  let value: T | undefined
  return () => (value ??= make())
}

/** The codes the service acts on, named as better-sqlite3 names them (node:sqlite gives numbers). */
const CODES: Record<number, string> = { 5: 'SQLITE_BUSY', 6: 'SQLITE_LOCKED', 787: 'SQLITE_CONSTRAINT_FOREIGNKEY', 2067: 'SQLITE_CONSTRAINT_UNIQUE' }

function guard<T> (fn: () => T): T {
  try {
    return fn()
  } catch (err) {
    const { errcode } = err as { errcode?: number }
    if (typeof errcode === 'number') {
      const code = CODES[errcode] ?? CODES[errcode & 0xff]
      if (code !== undefined) Object.assign(err as object, { code })
    }
    throw err
  }
}

/** node:sqlite returns BLOBs as Uint8Array; the store compares and passes on Buffers. */
function buffers (row: Row | undefined): Row | undefined {
  if (row === undefined) return undefined
  for (const key in row) {
    const value = row[key]
    if (value instanceof Uint8Array && !Buffer.isBuffer(value)) row[key] = Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  }
  return row
}

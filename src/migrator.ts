import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Pool, PoolConnection } from 'mysql2/promise'
import type { MigrationMeta, RunnableMigration, Umzug, UmzugStorage } from 'umzug'
import type { SqliteDatabase } from './store/sqlite.js'

export type MigrationTarget =
  | { dialect: 'mysql', pool: Pool }
  | { dialect: 'sqlite', db: SqliteDatabase }

export interface Migrator {
  up (): Promise<string[]>
  /** Reverts the last applied migration, or every one with `{ all: true }`. */
  down (options?: { all?: boolean }): Promise<string[]>
  pending (): Promise<string[]>
  executed (): Promise<string[]>
}

/** `migrations/` beside `src/` — and beside `dist/src/` once built, where the build copies it. */
const MIGRATIONS_DIR = fileURLToPath(new URL('../migrations/', import.meta.url))
const LOCK_TIMEOUT_MS = 60_000
/** A lock not renewed for this long belongs to an instance that died while migrating. */
const LOCK_LEASE_SECONDS = 30
const LOCK_RENEW_MS = 5_000

interface Logger { info (msg: string): void }

/**
 * One numbered history for both databases: `0001-users.mysql.sql` and `0001-users.sqlite.sql`
 * are both the migration `0001-users`. Each file holds an `-- migrate:up` and a
 * `-- migrate:down` section.
 */
export function createMigrator (target: MigrationTarget, logger?: Logger, now: () => number = Date.now): Migrator {
  const run = target.dialect === 'mysql' ? mysqlRunner(target.pool, now) : sqliteRunner(target.db, now)
  const migrations = loadMigrations(target.dialect, run.exec)
  // Umzug is loaded only to apply or revert: it brings its command-line tools with it, which a
  // start that finds nothing pending would keep for its lifetime (about 3 MiB of RSS).
  let umzug: Promise<Umzug<object>> | undefined
  const loadUmzug = () => (umzug ??= import('umzug').then(({ Umzug }) =>
    new Umzug({ migrations, storage: run.storage, logger: undefined })))
  const executed = () => run.storage.executed({ context: {} })
  const pending = async () => {
    const applied = new Set(await executed())
    return migrations.map(m => m.name).filter(name => !applied.has(name))
  }
  const names = (list: MigrationMeta[]) => list.map(m => m.name)
  const report = (verb: string, list: string[]) => {
    for (const name of list) logger?.info(`migration ${name} ${verb}`)
    return list
  }

  return {
    up: () => run.exclusive(async () => {
      if ((await pending()).length === 0) return []
      return report('applied', names(await (await loadUmzug()).up()))
    }),
    down: ({ all = false } = {}) => run.exclusive(async () =>
      report('reverted', names(await (await loadUmzug()).down(all ? { to: 0 } : undefined)))),
    pending,
    executed
  }
}

function loadMigrations (dialect: string, exec: (sql: string) => Promise<void>): RunnableMigration<object>[] {
  const suffix = `.${dialect}.sql`
  return readdirSync(MIGRATIONS_DIR)
    .filter(file => file.endsWith(suffix))
    .sort()
    .map(file => {
      const path = MIGRATIONS_DIR + file
      const { up, down } = parseSections(readFileSync(path, 'utf8'), file)
      return {
        name: file.slice(0, -suffix.length),
        path,
        up: () => exec(up),
        down: () => exec(down)
      }
    })
}

function parseSections (text: string, file: string) {
  const match = /--\s*migrate:up\s*\n([\s\S]*?)--\s*migrate:down\s*\n([\s\S]*)$/.exec(text)
  if (match === null) throw new Error(`${file}: expected "-- migrate:up" then "-- migrate:down" sections`)
  return { up: match[1] ?? '', down: match[2] ?? '' }
}

/**
 * Splits a script into statements as the mysql client does: at the delimiter where it ends a
 * line, `;` until a `DELIMITER //` line changes it, so that a procedure body, whose statements
 * end in semicolons, is one statement. Comment lines are left out.
 */
export function statementsOf (script: string): string[] {
  const statements: string[] = []
  let delimiter = ';'
  let lines: string[] = []
  const end = () => {
    const statement = lines.join('\n').trim()
    if (statement !== '') statements.push(statement)
    lines = []
  }
  for (const line of script.split('\n')) {
    if (/^\s*--/.test(line)) continue
    const changed = /^\s*DELIMITER\s+(\S+)\s*$/i.exec(line)
    if (changed !== null) {
      end()
      delimiter = changed[1]!
      continue
    }
    const text = line.trimEnd()
    if (text.endsWith(delimiter)) {
      lines.push(text.slice(0, -delimiter.length))
      end()
    } else {
      lines.push(line)
    }
  }
  end()
  return statements
}

function mysqlRunner (pool: Pool, now: () => number) {
  // While the lock is held, the whole run uses the connection that claimed it: on a cluster,
  // one node, which has applied every write ordered before the claim.
  let db: Pick<Pool, 'query' | 'execute'> = pool
  const ensureTable = () => db.query(
    'CREATE TABLE IF NOT EXISTS schema_migrations (name VARCHAR(255) NOT NULL PRIMARY KEY, applied_at DATETIME(3) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4')
  const storage: UmzugStorage = {
    async executed () {
      await ensureTable()
      const [rows] = await db.query('SELECT name FROM schema_migrations ORDER BY name')
      return (rows as Array<{ name: string }>).map(r => r.name)
    },
    async logMigration ({ name }) {
      await db.execute('INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)', [name, new Date(now())])
    },
    async unlogMigration ({ name }) {
      await db.execute('DELETE FROM schema_migrations WHERE name = ?', [name])
    }
  }

  return {
    storage,
    async exec (script: string) {
      for (const statement of statementsOf(script)) await db.query(statement)
    },
    /**
     * MySQL DDL commits by itself, so a lock keeps two starting instances apart. Not GET_LOCK:
     * on a Galera cluster it is local to one node. The lock is a row, claimed with an INSERT
     * that every node certifies, so one claimant wins cluster-wide (the others get a duplicate
     * key, or a deadlock at commit); the holder renews its lease, and a lease that ran out
     * belongs to an instance that died and may be taken over. Times are the database's own.
     */
    async exclusive<T> (fn: () => Promise<T>): Promise<T> {
      const owner = randomUUID()
      const connection = await pool.getConnection()
      try {
        await claim(connection, owner)
      } catch (err) {
        connection.release()
        throw err
      }
      const renew = setInterval(() => {
        pool.query('UPDATE schema_migrations_lock SET expires_at = NOW(3) + INTERVAL ? SECOND WHERE id = 1 AND owner = ?', [LOCK_LEASE_SECONDS, owner])
          .catch(() => {})
      }, LOCK_RENEW_MS)
      db = connection
      try {
        return await fn()
      } finally {
        db = pool
        clearInterval(renew)
        // Should this fail, the lease runs out and the next instance takes the lock then.
        await pool.query('DELETE FROM schema_migrations_lock WHERE id = 1 AND owner = ?', [owner]).catch(() => {})
        connection.release()
      }
    }
  }
}

async function claim (connection: PoolConnection, owner: string) {
  await connection.query(
    'CREATE TABLE IF NOT EXISTS schema_migrations_lock (id TINYINT UNSIGNED NOT NULL PRIMARY KEY, owner CHAR(36) NOT NULL, expires_at DATETIME(3) NOT NULL) ENGINE=InnoDB')
  const started = performance.now()
  for (;;) {
    try {
      await connection.query('DELETE FROM schema_migrations_lock WHERE id = 1 AND expires_at < NOW(3)')
      await connection.query(
        'INSERT INTO schema_migrations_lock (id, owner, expires_at) VALUES (1, ?, NOW(3) + INTERVAL ? SECOND)', [owner, LOCK_LEASE_SECONDS])
      break
    } catch (err) {
      const code = (err as { code?: string }).code
      if (code !== 'ER_DUP_ENTRY' && code !== 'ER_LOCK_DEADLOCK') throw err
    }
    if (performance.now() - started > LOCK_TIMEOUT_MS) {
      throw new Error(`could not take the migration lock within ${LOCK_TIMEOUT_MS / 1000} s`)
    }
    await sleep(100 + Math.random() * 200)
  }
}

function sqliteRunner (db: SqliteDatabase, now: () => number) {
  const ensureTable = () => db.exec(
    'CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT NOT NULL PRIMARY KEY, applied_at TEXT NOT NULL)')
  const storage: UmzugStorage = {
    async executed () {
      ensureTable()
      return (db.prepare('SELECT name FROM schema_migrations ORDER BY name').all() as Array<{ name: string }>).map(r => r.name)
    },
    async logMigration ({ name }) {
      db.prepare('INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)').run(name, new Date(now()).toISOString())
    },
    async unlogMigration ({ name }) {
      db.prepare('DELETE FROM schema_migrations WHERE name = ?').run(name)
    }
  }

  return {
    storage,
    async exec (script: string) {
      db.exec(script)
    },
    /** SQLite DDL is transactional: the whole run commits or none of it does. */
    async exclusive<T> (fn: () => Promise<T>): Promise<T> {
      db.exec('BEGIN IMMEDIATE')
      try {
        const result = await fn()
        db.exec('COMMIT')
        return result
      } catch (err) {
        db.exec('ROLLBACK')
        throw err
      }
    }
  }
}

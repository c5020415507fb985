import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Pool } from 'mysql2/promise'
import { Umzug, type MigrationMeta, type RunnableMigration, type UmzugStorage } from 'umzug'
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
const LOCK_NAME = 'auth_service_migrations'
const LOCK_TIMEOUT_SECONDS = 60

interface Logger { info (msg: string): void }

/**
 * One numbered history for both databases: `0001-users.mysql.sql` and `0001-users.sqlite.sql`
 * are both the migration `0001-users`. Each file holds an `-- migrate:up` and a
 * `-- migrate:down` section.
 */
export function createMigrator (target: MigrationTarget, logger?: Logger, now: () => number = Date.now): Migrator {
  const run = target.dialect === 'mysql' ? mysqlRunner(target.pool, now) : sqliteRunner(target.db, now)
  const umzug = new Umzug({
    migrations: loadMigrations(target.dialect, run.exec),
    storage: run.storage,
    logger: undefined
  })
  const names = (list: MigrationMeta[]) => list.map(m => m.name)
  const report = (verb: string, list: string[]) => {
    for (const name of list) logger?.info(`migration ${name} ${verb}`)
    return list
  }

  return {
    up: () => run.exclusive(async () => report('applied', names(await umzug.up()))),
    down: ({ all = false } = {}) => run.exclusive(async () => report('reverted', names(await umzug.down(all ? { to: 0 } : undefined)))),
    pending: async () => names(await umzug.pending()),
    executed: async () => names(await umzug.executed())
  }
}

function loadMigrations (dialect: string, exec: (sql: string) => Promise<void>): RunnableMigration<unknown>[] {
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

/** Splits a script into statements at semicolons that end a line (no procedures here). */
function statementsOf (script: string): string[] {
  return script
    .split('\n').filter(line => !/^\s*--/.test(line)).join('\n')
    .split(/;\s*(?:\n|$)/).map(s => s.trim()).filter(Boolean)
}

function mysqlRunner (pool: Pool, now: () => number) {
  const ensureTable = () => pool.query(
    'CREATE TABLE IF NOT EXISTS schema_migrations (name VARCHAR(255) NOT NULL PRIMARY KEY, applied_at DATETIME(3) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4')
  const storage: UmzugStorage = {
    async executed () {
      await ensureTable()
      const [rows] = await pool.query('SELECT name FROM schema_migrations ORDER BY name')
      return (rows as Array<{ name: string }>).map(r => r.name)
    },
    async logMigration ({ name }) {
      await pool.execute('INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)', [name, new Date(now())])
    },
    async unlogMigration ({ name }) {
      await pool.execute('DELETE FROM schema_migrations WHERE name = ?', [name])
    }
  }

  return {
    storage,
    async exec (script: string) {
      for (const statement of statementsOf(script)) await pool.query(statement)
    },
    /** MySQL DDL commits by itself, so a named lock keeps two starting instances apart. */
    async exclusive<T> (fn: () => Promise<T>): Promise<T> {
      const connection = await pool.getConnection()
      try {
        const [rows] = await connection.query('SELECT GET_LOCK(?, ?) AS locked', [LOCK_NAME, LOCK_TIMEOUT_SECONDS])
        if ((rows as Array<{ locked: number | null }>)[0]?.locked !== 1) {
          throw new Error(`could not take the migration lock within ${LOCK_TIMEOUT_SECONDS} s`)
        }
        try {
          return await fn()
        } finally {
          await connection.query('SELECT RELEASE_LOCK(?)', [LOCK_NAME])
        }
      } finally {
        connection.release()
      }
    }
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

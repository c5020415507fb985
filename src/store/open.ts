import mysql from 'mysql2/promise'
import type { Database } from '../config.js'
import type { MigrationTarget } from '../migrator.js'
import { poolOptions } from './mysql.js'
import { openSqlite } from './sqlite.js'

/**
 * The configured database opened outside the server, for the command-line tools
 * (`npm run migrate`, `npm run admin`): a mysql2 pool or a SQLite handle, and how to close it.
 */
export function openDatabase (database: Database, { connectionLimit }: { connectionLimit?: number } = {}): { target: MigrationTarget, close: () => Promise<void> } {
  if (database.kind === 'mysql') {
    const pool = mysql.createPool({ uri: database.url, ...poolOptions, ...(connectionLimit !== undefined && { connectionLimit }) })
    return { target: { dialect: 'mysql', pool }, close: () => pool.end() }
  }
  const db = openSqlite(database.path)
  return { target: { dialect: 'sqlite', db }, close: async () => { db.close() } }
}

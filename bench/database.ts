import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import mysql from 'mysql2/promise'
import { listenerPid } from './processes.js'

export interface BenchDatabase {
  kind: 'sqlite' | 'mysql'
  /** The service's DATABASE_URL. */
  url: string
  /** What the report shows: never a password. */
  label: string
  /** A MySQL server on this machine: its process, whose CPU time per response the report shows. */
  pid?: number
  drop (): Promise<void>
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]'])

/** A SQLite file in the bench's temporary folder, removed with it. */
export function sqliteDatabase (dir: string): BenchDatabase {
  const path = join(dir, 'auth.db')
  return { kind: 'sqlite', url: `sqlite:${path}`, label: 'sqlite (file)', drop: async () => {} }
}

/** A throwaway database on the MySQL server at `serverUrl`, dropped at the end of the bench. */
export async function mysqlDatabase (serverUrl: string): Promise<BenchDatabase> {
  const server = new URL(serverUrl)
  server.pathname = ''
  const name = `auth_bench_${randomBytes(6).toString('hex')}`
  const admin = await mysql.createConnection({ uri: server.href })
  try {
    await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`)
  } finally {
    await admin.end()
  }
  const url = new URL(server.href)
  url.pathname = `/${name}`
  return {
    kind: 'mysql',
    url: url.href,
    label: `mysql ${server.host}/${name}`,
    pid: LOOPBACK.has(server.hostname) ? listenerPid(Number(server.port || 3306)) : undefined,
    async drop () {
      const admin = await mysql.createConnection({ uri: server.href })
      try {
        await admin.query(`DROP DATABASE IF EXISTS \`${name}\``)
      } finally {
        await admin.end()
      }
    }
  }
}

import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { FastifyInstance } from 'fastify'
import mysql from 'mysql2/promise'
import type { Test } from 'tap'
import { buildApp } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'

export type Dialect = 'sqlite' | 'mysql'

/** Where the MySQL tests create their throwaway databases (one per test). */
export const MYSQL_URL = process.env.TEST_MYSQL_URL ?? 'mysql://root@127.0.0.1:3306'
export const TEST_SECRET = 'test-secret-that-is-long-enough-0123456789'

/** A low argon2 cost keeps the suite fast; the production cost is measured by the bench. */
export const TEST_ENV: Record<string, string> = {
  NODE_ENV: 'test',
  LOG_LEVEL: 'silent',
  ARGON2_MEMORY_KIB: '1024',
  ARGON2_ITERATIONS: '1',
  ARGON2_PARALLELISM: '1',
  PUBLIC_URL: 'http://auth.test',
  // Tests that want mail give SMTP_URL (test/smtp.ts); the others' development outbox goes here.
  MAIL_OUTBOX_DIR: join(tmpdir(), `auth-test-outbox-${process.pid}`)
}
process.on('exit', () => rmSync(TEST_ENV.MAIL_OUTBOX_DIR!, { recursive: true, force: true }))

/**
 * The service never reads the wall clock: every app a test builds runs on an injected clock,
 * shifted by TEST_CLOCK_SHIFT_DAYS (`npm run test:clock` runs the time-bound tests years in
 * the past and in the future of the real date, where they must pass the same).
 */
export const CLOCK_SHIFT_MS = Number(process.env.TEST_CLOCK_SHIFT_DAYS ?? 0) * 86_400_000

/** Now, on the clock the tests' apps run on (epoch ms). */
export function testNow (): number {
  return Date.now() + CLOCK_SHIFT_MS
}

let mysqlReachable: Promise<string | undefined> | undefined

/** undefined when MariaDB answers, otherwise why it does not. */
function mysqlProblem (): Promise<string | undefined> {
  mysqlReachable ??= (async () => {
    try {
      const connection = await mysql.createConnection({ uri: MYSQL_URL, connectTimeout: 3000 })
      await connection.end()
      return undefined
    } catch (err) {
      return (err as Error).message
    }
  })()
  return mysqlReachable
}

/**
 * Runs `fn` once per database. Without a reachable MySQL the MySQL run is skipped with the
 * reason, except in CI (CI=true), where it fails: CI must never pass on SQLite alone.
 */
export function eachDialect (t: Test, name: string, fn: (t: Test, dialect: Dialect) => Promise<void>) {
  onDialects(t, name, ['sqlite', 'mysql'], fn)
}

/** Like eachDialect, for a test that only means something on some databases. */
export function onDialects (t: Test, name: string, dialects: Dialect[], fn: (t: Test, dialect: Dialect) => Promise<void>) {
  for (const dialect of dialects) {
    t.test(`${name} [${dialect}]`, async t => {
      if (dialect === 'mysql') {
        const problem = await mysqlProblem()
        if (problem !== undefined) {
          if (process.env.CI === 'true') throw new Error(`MySQL is required in CI but ${MYSQL_URL} is unreachable: ${problem}`)
          const reason = `MySQL at ${MYSQL_URL} is unreachable (${problem}); set TEST_MYSQL_URL to run these`
          t.test(name, { skip: reason }, async () => {})
          return
        }
      }
      await fn(t, dialect)
    })
  }
}

/** A fresh, empty database of the dialect, dropped when the test ends. */
export async function freshDatabase (t: Test, dialect: Dialect): Promise<string> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'auth-test-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    return `sqlite:${join(dir, 'auth.db')}`
  }
  const name = `auth_test_${randomBytes(6).toString('hex')}`
  const admin = await mysql.createConnection({ uri: MYSQL_URL })
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`)
  await admin.end()
  t.teardown(async () => {
    const admin = await mysql.createConnection({ uri: MYSQL_URL })
    await admin.query(`DROP DATABASE IF EXISTS \`${name}\``)
    await admin.end()
  })
  return `${MYSQL_URL.replace(/\/+$/, '')}/${name}`
}

export function testConfig (databaseUrl: string, env: Record<string, string> = {}): Config {
  return loadConfig({ ...TEST_ENV, DATABASE_URL: databaseUrl, JWT_SECRET: TEST_SECRET, ...env })
}

export interface BuildOptions {
  /** Reuse a database (for several instances on one database); a fresh one by default. */
  databaseUrl?: string
  env?: Record<string, string>
  now?: () => number
}

/** The real app on a real database, closed when the test ends. */
export async function build (t: Test, dialect: Dialect, options: BuildOptions = {}): Promise<FastifyInstance> {
  const databaseUrl = options.databaseUrl ?? await freshDatabase(t, dialect)
  const app = await buildApp({ config: testConfig(databaseUrl, options.env), now: options.now ?? testNow })
  t.teardown(() => app.close())
  await app.ready()
  return app
}

export const PASSWORD = 'correct horse battery staple'

export async function createUser (app: FastifyInstance, email = 'ada@example.com', password = PASSWORD) {
  const res = await app.inject({ method: 'POST', url: '/users', payload: { email, password } })
  if (res.statusCode !== 201) throw new Error(`signup failed: ${res.statusCode} ${res.body}`)
  return res.json<{ id: number, email: string, created_at: string }>()
}

export async function login (app: FastifyInstance, email = 'ada@example.com', password = PASSWORD) {
  const res = await app.inject({
    method: 'POST',
    url: '/token',
    payload: new URLSearchParams({ grant_type: 'password', username: email, password }).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' }
  })
  if (res.statusCode !== 200) throw new Error(`login failed: ${res.statusCode} ${res.body}`)
  return res.json<{ access_token: string, token_type: string, expires_in: number, refresh_token?: string }>()
}

export function form (params: Record<string, string>): { payload: string, headers: Record<string, string> } {
  return {
    payload: new URLSearchParams(params).toString(),
    headers: { 'content-type': 'application/x-www-form-urlencoded' }
  }
}

/**
 * What test/cluster/galera.cluster.ts drives: the cluster script, instances of the service as
 * child processes, and plain HTTP and SQL against them.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import mysql from 'mysql2/promise'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SCRIPT = fileURLToPath(new URL('./cluster.sh', import.meta.url))
const run = promisify(execFile)

export const NODE_PORTS = [3311, 3312, 3313] as const
export const HAPROXY_PORT = 3320
export const PASSWORD = 'correct horse battery staple'
export const LOGIN_LIMIT = 5

export async function cluster (...args: string[]): Promise<string> {
  const { stdout } = await run('bash', [SCRIPT, ...args], { timeout: 300_000, maxBuffer: 1 << 24 })
  return stdout
}

export function stopClusterNow (): void {
  execFileSync('bash', [SCRIPT, 'stop'], { stdio: 'ignore', timeout: 60_000 })
}

export function nodeUrl (port: number, database = 'auth'): string {
  return `mysql://root@127.0.0.1:${port}/${database}`
}

export async function sql<T = Array<Record<string, unknown>>> (port: number, query: string, values: unknown[] = []): Promise<T> {
  const connection = await mysql.createConnection({ uri: `mysql://root@127.0.0.1:${port}`, connectTimeout: 3000 })
  try {
    const [rows] = await connection.query(query, values)
    return rows as T
  } finally {
    await connection.end()
  }
}

export async function freshDatabase (name: string): Promise<void> {
  await sql(NODE_PORTS[0], `DROP DATABASE IF EXISTS \`${name}\``)
  await sql(NODE_PORTS[0], `CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`)
}

/** Every table's and procedure's definition (tables without the AUTO_INCREMENT counter) and the applied migrations. */
export async function schemaOf (port: number, database: string): Promise<string[]> {
  const tables = await sql<Array<{ name: string }>>(port,
    'SELECT table_name AS name FROM information_schema.tables WHERE table_schema = ? ORDER BY table_name', [database])
  const out: string[] = []
  for (const { name } of tables) {
    const [row] = await sql<Array<Record<string, string>>>(port, `SHOW CREATE TABLE \`${database}\`.\`${name}\``)
    out.push(row!['Create Table']!.replace(/ AUTO_INCREMENT=\d+/, ''))
  }
  const routines = await sql<Array<{ name: string }>>(port,
    'SELECT routine_name AS name FROM information_schema.routines WHERE routine_schema = ? ORDER BY routine_name', [database])
  for (const { name } of routines) {
    const [row] = await sql<Array<Record<string, string>>>(port, `SHOW CREATE PROCEDURE \`${database}\`.\`${name}\``)
    out.push(row!['Create Procedure']!)
  }
  const applied = await sql<Array<{ name: string }>>(port, `SELECT name FROM \`${database}\`.schema_migrations ORDER BY name`)
  out.push(`migrations: ${applied.map(r => r.name).join(', ')}`)
  return out
}

export interface Instance {
  url: string
  process: ChildProcess
  output: () => string
  exited: () => number | null
  stop: () => Promise<void>
}

let nextPort = 3341

/** One instance of the service, as `npm run dev` runs it, on its own port. */
export function startInstance (databaseUrl: string, env: Record<string, string> = {}): Instance {
  const port = nextPort++
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: databaseUrl,
      // Every instance of one service shares the issuer, the audience and the signing key.
      PUBLIC_URL: 'http://auth.cluster.test',
      JWT_SECRET: 'cluster-test-secret-that-is-long-enough-0123456789',
      ARGON2_MEMORY_KIB: '1024',
      ARGON2_ITERATIONS: '1',
      LOGIN_LIMIT_PER_ACCOUNT: String(LOGIN_LIMIT),
      LOGIN_LIMIT_PER_ADDRESS: '100000',
      LOG_LEVEL: 'warn',
      ...env
    }
  })
  let output = ''
  const keep = (chunk: Buffer) => { output = (output + chunk.toString()).slice(-20_000) }
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  let code: number | null = null
  const exit = new Promise<void>(resolve => child.once('exit', (c, signal) => { code = c ?? (signal === null ? -1 : 128); resolve() }))
  return {
    url: `http://127.0.0.1:${port}`,
    process: child,
    output: () => output,
    exited: () => code,
    async stop () {
      if (code !== null) return
      child.kill('SIGTERM')
      const killed = await Promise.race([exit.then(() => true), sleep(15_000).then(() => false)])
      if (!killed) {
        child.kill('SIGKILL')
        await exit
      }
    }
  }
}

/** Resolves once /health answers 200; rejects when the instance exits first. */
export async function ready (instance: Instance, timeoutMs = 60_000): Promise<void> {
  const until = performance.now() + timeoutMs
  while (performance.now() < until) {
    if (instance.exited() !== null) throw new Error(`instance exited with ${instance.exited()}:\n${instance.output()}`)
    try {
      const res = await fetch(`${instance.url}/health`, { signal: AbortSignal.timeout(2000) })
      if (res.status === 200) return
    } catch {}
    await sleep(200)
  }
  throw new Error(`instance not ready in ${timeoutMs} ms:\n${instance.output()}`)
}

export interface Answer { status: number, body: Record<string, unknown>, ms: number }

export async function call (base: string, method: string, path: string, options: { json?: unknown, form?: Record<string, string>, token?: string, timeoutMs?: number } = {}): Promise<Answer> {
  const headers: Record<string, string> = {}
  let body: string | undefined
  if (options.json !== undefined) {
    headers['content-type'] = 'application/json'
    body = JSON.stringify(options.json)
  } else if (options.form !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded'
    body = new URLSearchParams(options.form).toString()
  }
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`
  const started = performance.now()
  const res = await fetch(base + path, { method, headers, body, signal: AbortSignal.timeout(options.timeoutMs ?? 10_000) })
  const text = await res.text()
  return { status: res.status, body: text === '' ? {} : JSON.parse(text) as Record<string, unknown>, ms: performance.now() - started }
}

export const signup = (base: string, email: string) => call(base, 'POST', '/users', { json: { email, password: PASSWORD } })
export const login = (base: string, email: string, password = PASSWORD) =>
  call(base, 'POST', '/token', { form: { grant_type: 'password', username: email, password } })
export const refresh = (base: string, token: string) =>
  call(base, 'POST', '/token', { form: { grant_type: 'refresh_token', refresh_token: token } })
export const me = (base: string, token: string) => call(base, 'GET', '/users/me', { token })
export const logout = (base: string, token: string) => call(base, 'POST', '/logout', { token })

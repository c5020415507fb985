/**
 * The one query an authenticated request makes, measured in-process against the store: the
 * user row alone (`findUserById`, what authentication read before sessions) and the user row
 * with the token's session row LEFT JOINed (`findAuthentication`, what it reads now). The two
 * alternate in rounds so a machine whose load drifts weighs on both alike.
 *
 *   npx tsx bench/auth-query.ts [--mysql] [--rounds 10] [--calls 5000] [--concurrency 16]
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { buildApp } from '../src/app.js'
import { loadConfig } from '../src/config.js'
import { mysqlDatabase, sqliteDatabase } from './database.js'

const { values } = parseArgs({
  options: {
    mysql: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '10' },
    calls: { type: 'string', default: '5000' },
    concurrency: { type: 'string', default: '16' }
  }
})
const rounds = Number(values.rounds)
const calls = Number(values.calls)
const concurrency = Number(values.concurrency)

const dir = mkdtempSync(join(tmpdir(), 'auth-query-'))
const database = values.mysql ? await mysqlDatabase(process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306') : sqliteDatabase(dir)
const app = await buildApp({
  config: loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    DATABASE_URL: database.url,
    JWT_SECRET: 'bench-secret-that-is-long-enough-0123456789',
    ARGON2_MEMORY_KIB: '1024',
    ARGON2_ITERATIONS: '1'
  })
})
await app.ready()

try {
  const users: Array<{ id: number, sessionId: Buffer }> = []
  for (let i = 0; i < 8; i++) {
    const user = await app.store.createUser({ email: `bench${i}@example.com`, passwordHash: 'x', createdAt: new Date(app.now()) })
    const { session, token } = app.sessions.prepare(user)
    await app.store.createSession(session, token)
    users.push({ id: user.id, sessionId: session.id })
  }

  async function run (query: (user: typeof users[number]) => Promise<unknown>): Promise<number> {
    let next = 0
    const start = process.hrtime.bigint()
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < calls) await query(users[next++ % users.length]!)
    }))
    return calls / (Number(process.hrtime.bigint() - start) / 1e9)
  }

  const userOnly = (u: typeof users[number]) => app.store.findUserById(u.id)
  const withSession = (u: typeof users[number]) => app.store.findAuthentication(u.id, u.sessionId)
  await run(userOnly)
  await run(withSession)
  const rates: { userOnly: number[], withSession: number[] } = { userOnly: [], withSession: [] }
  for (let round = 0; round < rounds; round++) {
    const first = round % 2 === 0
    if (first) rates.userOnly.push(await run(userOnly))
    rates.withSession.push(await run(withSession))
    if (!first) rates.userOnly.push(await run(userOnly))
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const a = median(rates.userOnly)
  const b = median(rates.withSession)
  console.log(`${database.kind}: ${rounds} rounds of ${calls} calls, ${concurrency} in flight; median queries/s`)
  console.log(`  findUserById (user row only)        ${a.toFixed(0)}`)
  console.log(`  findAuthentication (+ session row)  ${b.toFixed(0)}  (${((b / a - 1) * 100).toFixed(1)}%)`)
} finally {
  await app.close()
  await database.drop()
  rmSync(dir, { recursive: true, force: true })
}

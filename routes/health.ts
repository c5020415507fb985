import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { ServiceUnavailable } from '../src/errors.js'
import { commonProblems, json, problem, RETRY_AFTER } from '../src/schemas/components.js'
import type { ReadinessChecks } from '../src/schemas/status.js'

/**
 * The migrator queries outside the store's time limit: a database that stops answering between
 * the ping and this check must not hold the probe.
 */
const MIGRATIONS_CHECK_TIMEOUT_MS = 5_000

async function within<T> (promise: Promise<T>, ms: number): Promise<T | undefined> {
  const timer = new AbortController()
  try {
    return await Promise.race([promise, sleep(ms, undefined, { signal: timer.signal })])
  } finally {
    timer.abort()
  }
}

const UNKNOWN = { status: 'fail' as const, detail: 'Unknown while the database is not answering' }
const UNREACHABLE: ReadinessChecks = {
  database: { status: 'fail', detail: 'The database is not answering' },
  migrations: UNKNOWN,
  outbox: UNKNOWN
}

const health: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/health', {
    schema: {
      operationId: 'getHealth',
      tags: ['operations'],
      summary: 'Liveness: the process is up',
      response: { 200: json('Health', 'The process answers.'), 429: commonProblems[429] }
    }
  }, async () => ({ status: 'ok' as const }))

  /** Each check says what it found; the first that fails decides the problem's detail. */
  async function readiness (request: FastifyRequest): Promise<ReadinessChecks> {
    try {
      await fastify.store.ping()
    } catch (err) {
      request.log.warn({ err }, 'database is not answering')
      return UNREACHABLE
    }
    const database = { status: 'pass' as const, detail: 'The database answers' }
    const pending = await within(fastify.migrator.pending(), MIGRATIONS_CHECK_TIMEOUT_MS)
    if (pending === undefined) return UNREACHABLE
    const migrations = pending.length === 0
      ? { status: 'pass' as const, detail: 'Every migration is applied' }
      : { status: 'fail' as const, detail: `${pending.length} database migration(s) not applied: ${pending.join(', ')}` }
    if (pending.length > 0) return { database, migrations, outbox: { status: 'fail', detail: 'Unknown while migrations are pending' } }
    return { database, migrations, outbox: await outboxCheck() }
  }

  /** Mail that waits longer than READY_OUTBOX_MAX_AGE means the sender or the SMTP server is stuck. */
  async function outboxCheck (): Promise<ReadinessChecks['outbox']> {
    const backlog = await within(fastify.store.outboxBacklog(), MIGRATIONS_CHECK_TIMEOUT_MS)
    if (backlog === undefined) return UNKNOWN
    if (backlog.pending === 0 || backlog.oldestCreatedAt === null) return { status: 'pass', detail: 'The outbox is empty' }
    const waited = Math.max(Math.floor((fastify.now() - backlog.oldestCreatedAt) / 1000), 0)
    const maxAge = fastify.config.readyOutboxMaxAge
    if (maxAge > 0 && waited > maxAge) {
      return { status: 'fail', detail: `The outbox is stuck: the oldest of ${backlog.pending} message(s) has waited ${waited} s, more than READY_OUTBOX_MAX_AGE (${maxAge} s)` }
    }
    return { status: 'pass', detail: `${backlog.pending} message(s) waiting, the oldest for ${waited} s` }
  }

  fastify.get('/ready', {
    schema: {
      operationId: 'getReadiness',
      tags: ['operations'],
      summary: 'Readiness: the database answers and is migrated, and mail is not stuck',
      description: 'Each check (`database`, `migrations`, `outbox`) is `pass` or `fail` with a detail saying what was found; the 503 problem carries the same checks, and its `detail` is that of the first check that failed.',
      response: {
        200: json('Readiness', 'Ready to serve: every check passed.'),
        429: commonProblems[429],
        503: problem('The database does not answer, migrations are pending, or the oldest outbox message has waited longer than `READY_OUTBOX_MAX_AGE`: the checks say which.', RETRY_AFTER, 'NotReady')
      }
    }
  }, async (request) => {
    // A database that fails (rather than times out) halfway through the checks is unreachable too.
    const checks = await readiness(request).catch(err => {
      request.log.warn({ err }, 'database is not answering')
      return UNREACHABLE
    })
    const failed = Object.values(checks).find(check => check.status === 'fail')
    if (failed !== undefined) throw Object.assign(new ServiceUnavailable(failed.detail), { extensions: { checks } })
    return { status: 'ok' as const, checks }
  })
}

export default health

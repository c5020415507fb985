import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ServiceUnavailable } from '../src/errors.js'
import { commonProblems, json, problem, RETRY_AFTER } from '../src/schemas/components.js'

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

const health: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/health', {
    schema: {
      operationId: 'getHealth',
      tags: ['operations'],
      summary: 'Liveness: the process is up',
      response: { 200: json('Health', 'The process answers.'), 429: commonProblems[429] }
    }
  }, async () => ({ status: 'ok' as const }))

  fastify.get('/ready', {
    schema: {
      operationId: 'getReadiness',
      tags: ['operations'],
      summary: 'Readiness: the database answers and is migrated',
      response: {
        200: json('Health', 'Ready to serve.'),
        429: commonProblems[429],
        503: problem('The database does not answer, or migrations are pending.', RETRY_AFTER)
      }
    }
  }, async (request) => {
    try {
      await fastify.store.ping()
    } catch (err) {
      request.log.warn({ err }, 'database is not answering')
      throw new ServiceUnavailable('The database is not answering')
    }
    const pending = await within(fastify.migrator.pending(), MIGRATIONS_CHECK_TIMEOUT_MS)
    if (pending === undefined) throw new ServiceUnavailable('The database is not answering')
    if (pending.length > 0) throw new ServiceUnavailable(`${pending.length} database migration(s) not applied`)
    return { status: 'ok' as const }
  })
}

export default health

import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { ServiceUnavailable } from '../src/errors.js'
import { Problem } from '../src/schemas/problems.js'
import { Health } from '../src/schemas/status.js'

const health: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/health', {
    schema: { response: { 200: Health } }
  }, async () => ({ status: 'ok' as const }))

  fastify.get('/ready', {
    schema: { response: { 200: Health, 503: Problem } }
  }, async (request) => {
    try {
      await fastify.store.ping()
    } catch (err) {
      request.log.warn({ err }, 'database is not answering')
      throw new ServiceUnavailable('The database is not answering')
    }
    const pending = await fastify.migrator.pending()
    if (pending.length > 0) throw new ServiceUnavailable(`${pending.length} database migration(s) not applied`)
    return { status: 'ok' as const }
  })
}

export default health

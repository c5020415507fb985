import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Tracing } from '../src/tracing.js'

declare module 'fastify' {
  interface FastifyInstance {
    /** Set when OTEL_EXPORTER_OTLP_ENDPOINT is: the store and the password hashing add their spans. */
    tracing: Pick<Tracing, 'tracer' | 'traceStore'> | undefined
  }
}

/**
 * OpenTelemetry traces, when an OTLP endpoint is configured. Registered before every other
 * plugin and route, since @fastify/otel instruments the hooks and routes added after it.
 */
async function tracingPlugin (fastify: FastifyInstance) {
  const endpoint = fastify.config.otlpEndpoint
  if (endpoint === undefined) {
    fastify.decorate('tracing', undefined)
    return
  }
  const { startTracing } = await import('../src/tracing.js')
  const tracing = startTracing(endpoint)
  await fastify.register(tracing.plugin)
  fastify.decorate('tracing', { tracer: tracing.tracer, traceStore: tracing.traceStore })
  // Last of all (onClose hooks run in reverse order): the spans of the close itself are sent too.
  fastify.addHook('onClose', async () => {
    try {
      await tracing.shutdown()
    } catch (err) {
      fastify.log.warn({ err }, 'sending the last spans failed')
    }
  })
  fastify.log.info({ endpoint }, 'tracing to an OTLP endpoint')
}

export default fp(tracingPlugin, { name: 'tracing', dependencies: ['config'] })

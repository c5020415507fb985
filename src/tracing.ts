// Loaded only when OTEL_EXPORTER_OTLP_ENDPOINT is set (plugins/tracing.ts imports it dynamically),
// so a service without tracing never loads the OpenTelemetry SDK.
import { FastifyOtelInstrumentation } from '@fastify/otel'
import { context, propagation, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api'
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks'
import { W3CTraceContextPropagator } from '@opentelemetry/core'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace'
import type { FastifyPluginCallback } from 'fastify'
import type { Store } from './store/store.js'

export const SERVICE_NAME = 'auth-service'

export interface Tracing {
  tracer: Tracer
  /** @fastify/otel's plugin: a span per request (continuing the caller's `traceparent`) and per hook. */
  plugin: FastifyPluginCallback
  /** The store with a span around each call. */
  traceStore (store: Store): Store
  /** Sends the spans still buffered and unregisters the global provider. */
  shutdown (): Promise<void>
}

/**
 * The global tracer provider, context manager (AsyncLocalStorage, so a span started in a handler
 * is the parent of those its awaited calls start) and W3C propagator, exporting OTLP/HTTP JSON
 * to `${endpoint}/v1/traces` in batches.
 */
export function startTracing (endpoint: string): Tracing {
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable())
  propagation.setGlobalPropagator(new W3CTraceContextPropagator())
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': SERVICE_NAME }),
    spanProcessors: [new BatchSpanProcessor({ exporter: new OTLPTraceExporter({ url: `${endpoint}/v1/traces` }) })]
  })
  trace.setGlobalTracerProvider(provider)

  const instrumentation = new FastifyOtelInstrumentation({ registerOnInitialization: false })
  instrumentation.setTracerProvider(provider)

  const tracer = provider.getTracer(SERVICE_NAME)
  return {
    tracer,
    plugin: instrumentation.plugin(),
    traceStore: store => tracedStore(store, tracer),
    async shutdown () {
      await provider.shutdown()
      instrumentation.disable()
      trace.disable()
      propagation.disable()
      context.disable()
    }
  }
}

/**
 * The store with a client span around each call (`db.<method>`), children of the request's span.
 * One wrapper for both databases: better-sqlite3 has no instrumentation, and mysql2's patches
 * the CommonJS module only when loaded before it (see README, Tracing).
 */
export function tracedStore (store: Store, tracer: Tracer): Store {
  const attributes = { 'db.system.name': store.dialect === 'mysql' ? 'mysql' : 'sqlite' }
  const traced: Record<string, unknown> = { ...store }
  for (const [name, method] of Object.entries(store)) {
    if (typeof method !== 'function') continue
    traced[name] = (...args: unknown[]) => tracer.startActiveSpan(`db.${name}`, {
      kind: SpanKind.CLIENT,
      attributes: { ...attributes, 'db.operation.name': name }
    }, async span => {
      try {
        return await (method as (...a: unknown[]) => Promise<unknown>).apply(store, args)
      } catch (err) {
        span.recordException(err as Error)
        span.setStatus({ code: SpanStatusCode.ERROR })
        throw err
      } finally {
        span.end()
      }
    })
  }
  return traced as unknown as Store
}

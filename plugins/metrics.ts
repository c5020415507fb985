import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { once } from 'node:events'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry, type Metric } from 'prom-client'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Metrics
  }
}

export const LOGIN_OUTCOMES = ['success', 'invalid_credentials', 'locked', 'unverified', 'disabled', 'unavailable'] as const
export type LoginOutcome = typeof LOGIN_OUTCOMES[number]
const REFRESH_OUTCOMES = ['rotated', 'reused', 'invalid'] as const
const LOCKOUT_SCOPES = ['account', 'address'] as const
const EMAIL_OUTCOMES = ['sent', 'retried', 'failed'] as const

/** What the hashing gauges read at each scrape: the password limiter's own counts. */
export interface HashingQueue {
  readonly active: number
  readonly queued: number
}

export interface Metrics {
  readonly registry: Registry
  readonly logins: Counter<'outcome'>
  readonly signups: Counter
  readonly refreshes: Counter<'outcome'>
  readonly lockouts: Counter<'scope'>
  readonly passwordHashSeconds: Histogram
  readonly emails: Counter<'outcome'>
  readonly outboxPending: Gauge
  /** The hashing gauges follow this queue (plugins/passwords.ts hands over its limiter). */
  watchHashing (queue: HashingQueue): void
  /** auth_outbox_pending reads this at each scrape (plugins/mailer.ts hands over the store's count). */
  watchOutbox (pending: () => Promise<number>): void
  /** Where GET /metrics is served, once listening; undefined when METRICS_PORT is unset. */
  address (): AddressInfo | undefined
}

/** Requests to a path no route serves share one series, so a scan cannot add series per URL. */
export const UNMATCHED_ROUTE = 'unmatched'

/** From half a millisecond: a `me` or a refresh on a warm instance takes about that. */
const REQUEST_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** argon2id at the OWASP cost takes tens of milliseconds per hash; a queue shows as seconds. */
const HASH_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

/** The route pattern as the OpenAPI document writes it: `/users/me/sessions/{id}`. */
function routeLabel (pattern: string): string {
  return pattern.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
}

async function metricsPlugin (fastify: FastifyInstance) {
  const registry = new Registry()
  const registers = [registry]
  let hashing: HashingQueue = { active: 0, queued: 0 }
  let outbox: () => Promise<number> = async () => 0

  const logins = new Counter({ name: 'auth_logins_total', help: 'Password-grant logins, by outcome', labelNames: ['outcome'], registers })
  const refreshes = new Counter({ name: 'auth_refresh_total', help: 'Refresh-token presentations, by outcome (reused: a retired token came back and its family was revoked)', labelNames: ['outcome'], registers })
  const lockouts = new Counter({ name: 'auth_lockouts_total', help: 'Failed logins that brought an account or an address to its failed-login limit', labelNames: ['scope'], registers })
  const emails = new Counter({ name: 'auth_emails_total', help: 'Outbox delivery attempts, by outcome', labelNames: ['outcome'], registers })
  for (const outcome of LOGIN_OUTCOMES) logins.inc({ outcome }, 0)
  for (const outcome of REFRESH_OUTCOMES) refreshes.inc({ outcome }, 0)
  for (const scope of LOCKOUT_SCOPES) lockouts.inc({ scope }, 0)
  for (const outcome of EMAIL_OUTCOMES) emails.inc({ outcome }, 0)

  const metrics: Metrics = {
    registry,
    logins,
    signups: new Counter({ name: 'auth_signups_total', help: 'Accounts created', registers }),
    refreshes,
    lockouts,
    passwordHashSeconds: new Histogram({ name: 'auth_password_hash_seconds', help: 'Time to hash or verify one password (argon2id), queueing excluded', buckets: HASH_BUCKETS, registers }),
    emails,
    outboxPending: new Gauge({
      name: 'auth_outbox_pending',
      help: 'Messages in the outbox waiting to be sent',
      registers,
      async collect () {
        try {
          this.set(await outbox())
        } catch (err) {
          // A scrape still answers while the database does not; the gauge keeps its last value.
          fastify.log.debug({ err }, 'the outbox could not be counted for /metrics')
        }
      }
    }),
    watchHashing (queue) { hashing = queue },
    watchOutbox (pending) { outbox = pending },
    address: () => undefined
  }
  /* eslint-disable no-new -- a prom-client metric registers itself; its collect() reads the live value */
  new Gauge({ name: 'auth_password_hash_in_flight', help: 'Password hashes running now', registers, collect () { this.set(hashing.active) } })
  new Gauge({ name: 'auth_password_hash_queued', help: 'Password hashes waiting for a slot (past PASSWORD_HASH_QUEUE they are refused with 503)', registers, collect () { this.set(hashing.queued) } })
  /* eslint-enable no-new */
  fastify.decorate('metrics', metrics)

  const listen = fastify.config.metrics
  if (listen === undefined) return

  collectDefaultMetrics({ register: registry })
  const requestDuration = new RequestDurations(REQUEST_BUCKETS)
  registry.registerMetric(requestDuration as unknown as Metric)
  const labels = new Map<string, string>()
  fastify.addHook('onRoute', ({ url }) => { labels.set(url, routeLabel(url)) })
  fastify.addHook('onResponse', (request, reply, done) => {
    const pattern = request.routeOptions.url
    requestDuration.observe(
      (pattern === undefined ? undefined : labels.get(pattern)) ?? UNMATCHED_ROUTE,
      request.method,
      reply.statusCode,
      reply.elapsedTime / 1000)
    done()
  })

  const server = createMetricsServer(registry, fastify)
  metrics.address = () => server.listening ? server.address() as AddressInfo : undefined
  // Listening in onReady: a taken port fails the start, as the API's own port would.
  fastify.addHook('onReady', async () => {
    server.listen(listen.port, listen.host)
    await once(server, 'listening')
    fastify.log.info({ address: server.address() }, 'metrics listening')
  })
  fastify.addHook('onClose', async () => {
    if (!server.listening) return
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
  })
}

function createMetricsServer (registry: Registry, fastify: FastifyInstance): Server {
  return createServer((req, res) => {
    const path = req.url?.split('?', 1)[0]
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Only GET /metrics is served here\n')
      return
    }
    registry.metrics().then(body => {
      res.writeHead(200, { 'content-type': registry.contentType, 'cache-control': 'no-store' })
      res.end(req.method === 'HEAD' ? undefined : body)
    }, (err: unknown) => {
      fastify.log.error({ err }, 'collecting metrics failed')
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('Collecting metrics failed\n')
    })
  })
}

export default fp(metricsPlugin, { name: 'metrics', dependencies: ['config'] })

interface Series {
  labels: { method: string, route: string, status_code: number }
  /** Observations per bucket, not cumulative: the last slot counts those above every bound. */
  counts: Float64Array
  sum: number
  count: number
}

/**
 * `http_request_duration_seconds`, a histogram that the registry reads like one of its own (the
 * same name, help, type and values prom-client's Histogram hands it, so the exposition is
 * prom-client's) but that counts an answer with three map lookups and a bucket search. A
 * prom-client Histogram validates and hashes the label object on every observation, which cost
 * `me` about a tenth of its throughput; this one found the series by route, method and status.
 */
export class RequestDurations {
  readonly name = 'http_request_duration_seconds'
  readonly help = 'Time from the request\'s arrival to its answer, by route pattern'
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  private readonly byRoute = new Map<string, Map<string, Map<number, Series>>>()

  constructor (private readonly bounds: readonly number[]) {}

  observe (route: string, method: string, statusCode: number, seconds: number): void {
    let byMethod = this.byRoute.get(route)
    if (byMethod === undefined) this.byRoute.set(route, byMethod = new Map())
    let byStatus = byMethod.get(method)
    if (byStatus === undefined) byMethod.set(method, byStatus = new Map())
    let series = byStatus.get(statusCode)
    if (series === undefined) {
      series = { labels: { method, route, status_code: statusCode }, counts: new Float64Array(this.bounds.length + 1), sum: 0, count: 0 }
      byStatus.set(statusCode, series)
    }
    let bucket = 0
    while (bucket < this.bounds.length && seconds > this.bounds[bucket]!) bucket++
    series.counts[bucket]!++
    series.sum += seconds
    series.count++
  }

  async get () {
    const values: Array<{ labels: object, value: number, metricName: string }> = []
    for (const byMethod of this.byRoute.values()) {
      for (const byStatus of byMethod.values()) {
        for (const { labels, counts, sum, count } of byStatus.values()) {
          let cumulative = 0
          for (let i = 0; i < this.bounds.length; i++) {
            cumulative += counts[i]!
            values.push({ labels: { le: this.bounds[i]!, ...labels }, value: cumulative, metricName: `${this.name}_bucket` })
          }
          values.push({ labels: { le: '+Inf', ...labels }, value: count, metricName: `${this.name}_bucket` })
          values.push({ labels, value: sum, metricName: `${this.name}_sum` })
          values.push({ labels, value: count, metricName: `${this.name}_count` })
        }
      }
    }
    return { name: this.name, help: this.help, type: this.type, values, aggregator: this.aggregator }
  }

  reset (): void {
    this.byRoute.clear()
  }
}

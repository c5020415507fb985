import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'
import { createRequire } from 'node:module'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { buildApp } from '../src/app.js'
import { createUser, eachDialect, form, freshDatabase, testConfig, testNow } from './helper.js'

interface OtlpSpan {
  traceId: string
  spanId: string
  parentSpanId?: string
  name: string
  kind: number
  attributes: Array<{ key: string, value: { stringValue?: string, intValue?: number | string } }>
}

interface OtlpExport {
  resourceSpans: Array<{
    resource: { attributes: Array<{ key: string, value: { stringValue?: string } }> }
    scopeSpans: Array<{ spans: OtlpSpan[] }>
  }>
}

/** An OTLP/HTTP receiver in the test process: what the service's exporter POSTs to /v1/traces. */
async function otlpReceiver () {
  const exports: OtlpExport[] = []
  const requests: Array<{ method?: string, url?: string, contentType?: string }> = []
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', chunk => chunks.push(chunk))
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, contentType: req.headers['content-type'] })
      if (req.method === 'POST' && req.url === '/v1/traces' && req.headers['content-type'] === 'application/json') {
        exports.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpExport)
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}')
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    spans: () => exports.flatMap(e => e.resourceSpans.flatMap(r => r.scopeSpans.flatMap(s => s.spans))),
    serviceNames: () => exports.flatMap(e => e.resourceSpans.map(r => r.resource.attributes.find(a => a.key === 'service.name')?.value.stringValue)),
    close: () => new Promise(resolve => server.close(resolve))
  }
}

const attribute = (span: OtlpSpan, key: string) => span.attributes.find(a => a.key === key)?.value.stringValue

/**
 * OpenTelemetry's CommonJS modules in this process (@fastify/otel and what it requires), less
 * @opentelemetry/api: prom-client loads that no-op facade for its exemplars anyway.
 */
const otelModules = () => Object.keys(createRequire(import.meta.url).cache)
  .filter(path => /[\\/]@(opentelemetry|fastify[\\/]otel)[\\/]/.test(path) && !/[\\/]@opentelemetry[\\/]api[\\/]/.test(path))

// First, while nothing in this process has loaded OpenTelemetry yet.
t.test('without OTEL_EXPORTER_OTLP_ENDPOINT the OpenTelemetry SDK is not even loaded', async t => {
  const app = await buildApp({ config: testConfig('sqlite::memory:'), now: testNow })
  t.teardown(() => app.close())
  await app.ready()
  t.equal(app.tracing, undefined)
  await createUser(app)
  t.same(otelModules(), [])
})

eachDialect(t, 'tracing to an OTLP/HTTP endpoint', async (t, dialect) => {
  const receiver = await otlpReceiver()
  t.teardown(receiver.close)
  const config = testConfig(await freshDatabase(t, dialect), { OTEL_EXPORTER_OTLP_ENDPOINT: `${receiver.url}/` })
  const app = await buildApp({ config, now: testNow })
  let closed = false
  t.teardown(() => closed ? undefined : app.close())
  await app.ready()
  t.ok(otelModules().length > 0, 'with an endpoint, the SDK is loaded')
  await createUser(app)

  const traceId = randomBytes(16).toString('hex')
  const callerSpanId = randomBytes(8).toString('hex')
  const res = await app.inject({
    method: 'POST',
    url: '/token',
    ...form({ grant_type: 'password', username: 'ada@example.com', password: 'correct horse battery staple' }),
    headers: { ...form({}).headers, traceparent: `00-${traceId}-${callerSpanId}-01` }
  })
  t.equal(res.statusCode, 200)
  const untraced = await app.inject({ method: 'GET', url: '/health' })
  t.equal(untraced.statusCode, 200)
  // Closing flushes the batch: every span of those requests has been POSTed once close resolves.
  await app.close()
  closed = true

  t.ok(receiver.requests.length > 0 && receiver.requests.every(r => r.method === 'POST' && r.url === '/v1/traces' && r.contentType === 'application/json'),
    'the exporter POSTs JSON to /v1/traces under the configured endpoint')
  t.ok(receiver.serviceNames().every(name => name === 'auth-service'), 'service.name is auth-service')

  const spans = receiver.spans()
  const login = spans.filter(s => s.traceId === traceId)
  const byId = new Map(login.map(s => [s.spanId, s]))
  const request = login.find(s => s.name === 'request')
  t.ok(request, 'the login is a request span in the caller\'s trace')
  t.equal(request?.parentSpanId, callerSpanId, 'its parent is the caller\'s span (traceparent honoured)')
  t.equal(request?.kind, 2, 'a SERVER span')
  t.equal(attribute(request!, 'http.route'), '/token')

  /** The span's ancestors, nearest first, up to the root of what the service exported. */
  const ancestors = (span: OtlpSpan) => {
    const chain: OtlpSpan[] = []
    for (let parent = byId.get(span.parentSpanId ?? ''); parent !== undefined; parent = byId.get(parent.parentSpanId ?? '')) chain.push(parent)
    return chain
  }

  const db = login.filter(s => s.name.startsWith('db.'))
  const names = new Set(db.map(s => s.name))
  for (const name of ['db.countLoginFailures', 'db.findUserByEmail', 'db.createSession', 'db.recordSecurityEvent']) t.ok(names.has(name), `a span for ${name}`)
  for (const span of db) {
    t.equal(span.kind, 3, `${span.name} is a CLIENT span`)
    t.equal(attribute(span, 'db.system.name'), dialect === 'mysql' ? 'mysql' : 'sqlite')
    t.ok(ancestors(span).includes(request!), `${span.name} descends from the request span`)
  }
  const hash = login.filter(s => s.name === 'argon2.verify')
  t.equal(hash.length, 1, 'one span for the password check')
  t.ok(ancestors(hash[0]!).includes(request!), 'the hash span descends from the request span')

  const health = spans.filter(s => s.name === 'request' && attribute(s, 'http.route') === '/health')
  t.equal(health.length, 1)
  t.notOk(health[0]?.parentSpanId, 'a request without traceparent starts its own trace')
  t.not(health[0]?.traceId, traceId)
})

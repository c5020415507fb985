import type { AddressInfo } from 'node:net'
import t from 'tap'
import type { FastifyInstance } from 'fastify'
import parsePrometheusTextFormat, { type MetricFamily } from 'parse-prometheus-text-format'
import { build, eachDialect, onDialects, PASSWORD } from './helper.js'

/** Every name docs/API.md promises, and some of the Node.js defaults it names. */
const CONTRACT = [
  'http_request_duration_seconds', 'auth_logins_total', 'auth_signups_total', 'auth_refresh_total',
  'auth_lockouts_total', 'auth_password_hash_in_flight', 'auth_password_hash_queued',
  'auth_password_hash_seconds', 'auth_emails_total', 'auth_outbox_pending',
  'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_gc_duration_seconds',
  'process_cpu_seconds_total', 'process_resident_memory_bytes'
]

async function listen (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
}

function metricsUrl (app: FastifyInstance): string {
  const address = app.metrics.address()
  if (address === undefined) throw new Error('the metrics listener is not listening')
  return `http://${address.address}:${address.port}/metrics`
}

interface Scrape {
  text: string
  families: Map<string, MetricFamily>
  /** The value of a counter or gauge sample with exactly these labels (0 when absent). */
  value (name: string, labels?: Record<string, string>): number
  /**
   * A histogram's observation count over all its series matching these labels, read from its
   * `_count` lines (parse-prometheus-text-format merges a histogram's labelled series into one).
   */
  count (name: string, labels?: Record<string, string>): number
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g

function samples (text: string) {
  return text.split('\n').filter(l => l !== '' && !l.startsWith('#')).map(line => {
    const [, name, labels = '', value] = SAMPLE.exec(line)!
    return { name: name!, labels: Object.fromEntries([...labels.matchAll(LABEL)].map(([, k, v]) => [k!, v!])), value: Number(value) }
  })
}

async function scrape (app: FastifyInstance): Promise<Scrape> {
  const res = await fetch(metricsUrl(app))
  if (res.status !== 200) throw new Error(`scrape answered ${res.status}`)
  const text = await res.text()
  const families = new Map(parsePrometheusTextFormat(text).map(f => [f.name, f]))
  const matches = (sample: { labels?: Record<string, string> }, labels: Record<string, string>) =>
    Object.entries(labels).every(([k, v]) => sample.labels?.[k] === v)
  return {
    text,
    families,
    value (name, labels = {}) {
      const sample = families.get(name)?.metrics.find(m => matches(m, labels) && Object.keys(m.labels ?? {}).length === Object.keys(labels).length)
      return sample === undefined ? 0 : Number(sample.value)
    },
    count (name, labels = {}) {
      return samples(text).filter(s => s.name === `${name}_count` && matches(s, labels)).reduce((sum, s) => sum + s.value, 0)
    }
  }
}

function post (base: string, path: string, body: Record<string, string>) {
  return fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(body).toString()
  })
}

function signup (base: string, email: string) {
  return fetch(`${base}/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD }) })
}

const passwordGrant = (base: string, username: string, password = PASSWORD) => post(base, '/token', { grant_type: 'password', username, password })
const refreshGrant = (base: string, token: string) => post(base, '/token', { grant_type: 'refresh_token', refresh_token: token })

eachDialect(t, 'metrics', async (t, dialect) => {
  const app = await build(t, dialect, { env: { METRICS_PORT: '0', LOGIN_LIMIT_PER_ACCOUNT: '3', LOGIN_LIMIT_PER_ADDRESS: '5' } })
  const base = await listen(app)

  t.test('the metrics listener is its own socket, on METRICS_HOST, and serves only GET /metrics', async t => {
    const address = app.metrics.address()!
    t.equal(address.address, '127.0.0.1')
    t.not(address.port, (app.server.address() as AddressInfo).port)
    const res = await fetch(metricsUrl(app))
    t.equal(res.status, 200)
    t.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8')
    t.equal((await fetch(metricsUrl(app).replace('/metrics', '/'))).status, 404)
    t.equal((await fetch(metricsUrl(app), { method: 'POST' })).status, 404)
  })

  t.test('the API port does not serve /metrics', async t => {
    const res = await fetch(`${base}/metrics`)
    t.equal(res.status, 404)
    t.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8')
  })

  t.test('the scrape parses as the Prometheus text format and holds every name of the contract', async t => {
    const { families, text } = await scrape(app)
    for (const name of CONTRACT) t.ok(families.has(name), `${name} is exposed`)
    t.equal(families.get('http_request_duration_seconds')?.type, 'HISTOGRAM')
    t.equal(families.get('auth_password_hash_seconds')?.type, 'HISTOGRAM')
    t.equal(families.get('auth_logins_total')?.type, 'COUNTER')
    t.equal(families.get('auth_outbox_pending')?.type, 'GAUGE')
    t.match(text, /^http_request_duration_seconds_bucket\{le="0\.0005",/m, 'the first request bucket is 0.5 ms')
    // Every sample line is `name{labels} value`: nothing the parser may have skipped over. NaN is
    // matched without case as Prometheus reads it (Go's ParseFloat): prom-client writes `Nan` for
    // the event-loop lag's mean before its first sample.
    for (const line of text.split('\n').filter(l => l !== '' && !l.startsWith('#'))) {
      t.match(line, /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? -?(\d+(\.\d+)?(e[+-]?\d+)?|\+Inf|-Inf|[Nn][Aa][Nn])$/, `a valid sample line: ${line}`)
    }
  })

  t.test('the counters move by exactly what a scripted session did', async t => {
    const before = await scrape(app)
    const email = `metrics-${dialect}@example.com`
    t.equal((await signup(base, email)).status, 201)
    const good = await passwordGrant(base, email)
    t.equal(good.status, 200)
    const first = (await good.json() as { refresh_token: string }).refresh_token
    const rotated = await refreshGrant(base, first)
    t.equal(rotated.status, 200)
    t.equal((await refreshGrant(base, first)).status, 400, 'the retired token is reused')
    t.equal((await refreshGrant(base, 'never-issued')).status, 400)
    // LOGIN_LIMIT_PER_ACCOUNT=3: the third failure locks the account, the next try is refused.
    for (let i = 0; i < 3; i++) t.equal((await passwordGrant(base, email, 'wrong password, surely')).status, 400)
    t.equal((await passwordGrant(base, email)).status, 429)
    // LOGIN_LIMIT_PER_ADDRESS=5: two more failures from this address, on an unknown account, lock the address.
    for (let i = 0; i < 2; i++) t.equal((await passwordGrant(base, 'nobody@example.com', 'wrong password, surely')).status, 400)
    t.equal((await passwordGrant(base, 'someone-else@example.com')).status, 429)
    t.equal((await post(base, '/token', { grant_type: 'password', username: email })).status, 400, 'a request without a password is no login attempt')
    const after = await scrape(app)

    const delta = (name: string, labels?: Record<string, string>) => after.value(name, labels) - before.value(name, labels)
    t.equal(delta('auth_signups_total'), 1)
    t.equal(delta('auth_logins_total', { outcome: 'success' }), 1)
    t.equal(delta('auth_logins_total', { outcome: 'invalid_credentials' }), 5)
    t.equal(delta('auth_logins_total', { outcome: 'locked' }), 2)
    for (const outcome of ['unverified', 'disabled', 'unavailable']) t.equal(delta('auth_logins_total', { outcome }), 0, `${outcome} did not move`)
    t.equal(delta('auth_refresh_total', { outcome: 'rotated' }), 1)
    t.equal(delta('auth_refresh_total', { outcome: 'reused' }), 1)
    t.equal(delta('auth_refresh_total', { outcome: 'invalid' }), 1)
    t.equal(delta('auth_lockouts_total', { scope: 'account' }), 1)
    t.equal(delta('auth_lockouts_total', { scope: 'address' }), 1)
    // One hash at signup, one verify per login that reached the password: 1 + 1 + 3 + 2.
    t.equal(after.count('auth_password_hash_seconds') - before.count('auth_password_hash_seconds'), 7)
    t.equal(after.value('auth_password_hash_in_flight'), 0)
    t.equal(after.value('auth_password_hash_queued'), 0)
    t.equal(after.value('auth_outbox_pending'), 0)
    const tokenRequests = (s: Scrape, status: string) => s.count('http_request_duration_seconds', { method: 'POST', route: '/token', status_code: status })
    t.equal(tokenRequests(after, '200') - tokenRequests(before, '200'), 2)
    t.equal(tokenRequests(after, '400') - tokenRequests(before, '400'), 8)
    t.equal(tokenRequests(after, '429') - tokenRequests(before, '429'), 2)
  })

  t.test('the route label is the pattern; unknown paths share one series', async t => {
    for (const path of ['/nope/1', '/nope/2', '/wp-admin.php?x=1']) t.equal((await fetch(base + path)).status, 404)
    t.equal((await fetch(`${base}/users/me`)).status, 401)
    const { text, count } = await scrape(app)
    const routes = new Set(samples(text).filter(s => s.name === 'http_request_duration_seconds_count').map(s => s.labels.route))
    t.ok(routes.has('/users/me'))
    t.ok(routes.has('unmatched'))
    t.notOk([...routes].some(r => r?.startsWith('/nope') || r?.startsWith('/wp-admin')), 'no series per unknown URL')
    t.equal(count('http_request_duration_seconds', { route: 'unmatched', method: 'GET', status_code: '404' }) >= 3, true)
  })
})

onDialects(t, 'the hashing gauges show the limiter while hashes run', ['sqlite'], async (t, dialect) => {
  // A slow hash (64 MiB) and one slot: the first of three runs, two wait.
  const app = await build(t, dialect, { env: { METRICS_PORT: '0', PASSWORD_HASH_CONCURRENCY: '1', ARGON2_MEMORY_KIB: '65536', ARGON2_ITERATIONS: '3' } })
  const hashes = Array.from({ length: 3 }, () => app.passwords.hash('a password to hash slowly'))
  const during = await scrape(app)
  await Promise.all(hashes)
  const after = await scrape(app)
  t.equal(during.value('auth_password_hash_in_flight'), 1)
  t.equal(during.value('auth_password_hash_queued'), 2)
  t.equal(after.value('auth_password_hash_in_flight'), 0)
  t.equal(after.value('auth_password_hash_queued'), 0)
  t.equal(after.count('auth_password_hash_seconds') - during.count('auth_password_hash_seconds'), 3)
})

onDialects(t, 'a login refused because the hashing queue is full counts as unavailable', ['sqlite'], async (t, dialect) => {
  // One slot, no queue, a slow hash: of concurrent logins, those that find the slot taken get 503.
  const app = await build(t, dialect, { env: { METRICS_PORT: '0', PASSWORD_HASH_CONCURRENCY: '1', PASSWORD_HASH_QUEUE: '0', ARGON2_MEMORY_KIB: '65536', ARGON2_ITERATIONS: '3' } })
  const base = await listen(app)
  t.equal((await signup(base, 'queue@example.com')).status, 201)
  const before = await scrape(app)
  const answers = await Promise.all(Array.from({ length: 4 }, () => passwordGrant(base, 'queue@example.com')))
  const statuses = answers.map(a => a.status)
  t.ok(statuses.includes(503), `some logins found the queue full (${statuses.join(', ')})`)
  const after = await scrape(app)
  const delta = (outcome: string) => after.value('auth_logins_total', { outcome }) - before.value('auth_logins_total', { outcome })
  t.equal(delta('unavailable'), statuses.filter(s => s === 503).length)
  t.equal(delta('success'), statuses.filter(s => s === 200).length)
})

t.test('without METRICS_PORT nothing listens and nothing is timed', async t => {
  const app = await build(t, 'sqlite')
  t.equal(app.metrics.address(), undefined)
  await app.inject({ method: 'GET', url: '/health' })
  const text = await app.metrics.registry.metrics()
  t.notMatch(text, /http_request_duration_seconds/)
  t.notMatch(text, /nodejs_eventloop_lag_seconds/)
})

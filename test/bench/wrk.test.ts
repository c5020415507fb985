import { once } from 'node:events'
import { createServer } from 'node:http'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { hasWrk, parse, runWrk } from '../../bench/wrk.js'

const expectOk = { status: 200, body: (body: string) => body.startsWith('ok ') }

t.test('parse reads the summary, counts each (status, body) and checks each body', async t => {
  const stdout = [
    'Running 2s test @ http://127.0.0.1:3000', // wrk's own lines are ignored
    'wrk-summary 10 2000000 0 1 0 2 3',
    'wrk-latency p50 1500',
    'wrk-latency p90 2000',
    'wrk-latency p99 4000',
    'wrk-latency p99.9 9000',
    'wrk-latency mean 1700.5',
    'wrk-latency max 12000',
    'wrk-seen 6 200 ok {"a": "b c"}',
    'wrk-seen 1 200 not ok',
    'wrk-seen 2 401 {"status":401}',
    'wrk-unchecked 1 200',
    '0m0.010000s 0m0.020000s',
    '0m0.500000s 0m0.250000s'
  ].join('\n')
  const { result, cpuSeconds } = parse(stdout, 64, expectOk)
  t.equal(result.requests.average, 5, '10 responses in 2 s')
  t.same(result.statusCodeStats, { 200: { count: 8 }, 401: { count: 2 } })
  t.equal(result.non2xx, 2)
  t.equal(result.mismatches, 4, 'the wrong 200, both 401 bodies, and the one the hook could not keep')
  t.equal(result.errors, 3, 'read errors and timeouts')
  t.equal(result.timeouts, 2)
  t.equal(result.latency.p99, 4, 'milliseconds')
  t.equal(result.connections, 64)
  t.equal(cpuSeconds, 0.75, "the children's line of `times`")
  t.throws(() => parse(stdout.replace('wrk-summary 10', 'wrk-summary 11'), 64, expectOk), /counted 11 responses and its hook 10/)
  t.throws(() => parse('Running 2s test', 64, expectOk), /no summary/)
})

const reason = hasWrk() ? undefined : 'wrk is not installed (apt-get install wrk; .ci/run does); the bench then runs every scenario on autocannon'
if (reason !== undefined && process.env.CI === 'true') throw new Error(`CI needs the wrk test but ${reason}`)

t.test('a real wrk run checks every response and sends the requests in turn', { skip: reason }, async t => {
  const tmp = mkdtempSync(join(tmpdir(), 'wrk-test-'))
  t.teardown(() => rmSync(tmp, { recursive: true, force: true }))
  const seen = new Map<string, number>()
  let answered = 0
  let wrong = 0
  const server = createServer((req, res) => {
    const who = req.headers.authorization ?? '-'
    seen.set(`${req.url} ${who}`, (seen.get(`${req.url} ${who}`) ?? 0) + 1)
    // Every 50th answer is wrong, and the check must count each of them.
    const bad = ++answered % 50 === 0
    if (bad) wrong++
    res.setHeader('content-type', 'text/plain')
    res.end(bad ? 'wrong' : `ok ${who}`)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => { server.close() })
  const { port } = server.address() as { port: number }

  const { result, cpuSeconds } = await runWrk(`http://127.0.0.1:${port}/ignored`, [
    { method: 'GET', path: '/a', headers: { authorization: 'Bearer one' } },
    { method: 'GET', path: '/b', headers: { authorization: 'Bearer two' } }
  ], 4, 1, 5, expectOk, tmp)

  // wrk stops with requests in flight: the server answered those too, but wrk did not count them.
  const counted = result.statusCodeStats?.['200']?.count ?? 0
  t.ok(counted > 100 && counted <= answered && answered - counted <= 4, `${counted} counted, ${answered} answered`)
  t.ok(Math.abs(result.mismatches - wrong) <= 4, `${result.mismatches} wrong bodies found, ${wrong} sent`)
  t.ok(result.mismatches > 0)
  t.same([...seen.keys()].sort(), ['/a Bearer one', '/b Bearer two'], 'each request, with its headers, and no other')
  t.ok(Math.abs(seen.get('/a Bearer one')! - seen.get('/b Bearer two')!) <= 4, 'sent in turn on each connection')
  t.equal(result.errors, 0)
  t.ok(cpuSeconds > 0 && cpuSeconds < 2, `wrk used ${cpuSeconds} s of CPU`)
})

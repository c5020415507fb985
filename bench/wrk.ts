// The read scenarios (`status_out`, `status_in`, `me`, `me_bad`) and their ceilings on wrk, when
// it is installed. autocannon parses responses in JavaScript (http-parser-js): on this project's
// VM it spent 15 µs of its core per ceiling response and 17.5 µs per `status_out` response of
// the service (three more headers), more than either server spent answering (11-13 µs). With
// `--pin` giving each side one core, autocannon set the pace of those rows, and their req/s
// compared its parser on two responses rather than the two servers. wrk, in C, spends a third
// of that, so the server is the limit and req/s measures it.
//
// Every response is still checked: a Lua `response` hook counts each distinct (status, body),
// and the bench applies the scenario's check to each of them, weighted by its count.
import { spawn, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type autocannon from 'autocannon'
import type { Expectation } from './scenarios.js'

/** One request of a read scenario, sent in turn with the others on every connection. */
export interface PlainRequest {
  method: 'GET'
  path: string
  headers?: Record<string, string>
}

/** The (status, body) pairs the Lua hook keeps apart; beyond them a response is counted, not checked. */
const DISTINCT_LIMIT = 1000

export function hasWrk (): boolean {
  return spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error === undefined
}

/** A Lua string literal (long brackets cannot be closed by anything in a URL path or a token). */
const lua = (s: string) => `[==[${s}]==]`

/** The script: cycles through the requests, counts each (status, body), and reports at the end. */
function script (requests: PlainRequest[]): string {
  const formatted = requests.map(r => {
    const headers = Object.entries(r.headers ?? {}).map(([k, v]) => `[ ${lua(k)} ] = ${lua(v)}`).join(', ')
    return `wrk.format(${lua(r.method)}, ${lua(r.path)}, { ${headers} })`
  })
  return `
local requests, n, i = {}, 0, 0
-- Formatted in init, once wrk knows the host for the Host header.
init = function (args)
  requests = { ${formatted.join(',\n    ')} }
  n = #requests
end
request = function ()
  i = i % n + 1
  return requests[i]
end

seen, distinct, unchecked = {}, 0, {}
response = function (status, headers, body)
  local key = status .. " " .. (body or ""):gsub("\\n", "\\\\n")
  local count = seen[key]
  if count ~= nil then
    seen[key] = count + 1
  elseif distinct < ${DISTINCT_LIMIT} then
    seen[key] = 1
    distinct = distinct + 1
  else
    unchecked[status] = (unchecked[status] or 0) + 1
  end
end

local threads = {}
setup = function (thread) table.insert(threads, thread) end

done = function (summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk-summary %d %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    e.connect, e.read, e.write, e.timeout, e.status))
  for _, p in ipairs({ 50, 90, 99, 99.9 }) do
    io.write(string.format("wrk-latency p%s %d\\n", p, latency:percentile(p)))
  end
  io.write(string.format("wrk-latency mean %f\\nwrk-latency max %d\\n", latency.mean, latency.max))
  for _, thread in ipairs(threads) do
    for key, count in pairs(thread:get("seen")) do io.write(string.format("wrk-seen %d %s\\n", count, key)) end
    for status, count in pairs(thread:get("unchecked")) do io.write(string.format("wrk-unchecked %d %d\\n", count, status)) end
  end
end
`
}

/** What the bench reads of a run, in autocannon's shape, so both drivers feed the same rows. */
export interface WrkRun {
  result: autocannon.Result
  /** wrk's CPU time (user + system), from the shell that ran it. */
  cpuSeconds: number
}

/** Numbers each run's script: two runs may start in the same millisecond (the bench's rounds at once). */
let scripts = 0

/**
 * Runs wrk (one thread, `connections` connections) for `duration` whole seconds against `url`'s
 * origin, sending `requests` in turn, and checks every response against `expect`.
 */
export async function runWrk (url: string, requests: PlainRequest[], connections: number, duration: number, timeout: number, expect: Expectation, tmp: string): Promise<WrkRun> {
  const file = join(tmp, `wrk-${process.pid}-${Date.now()}-${++scripts}.lua`)
  writeFileSync(file, script(requests))
  const seconds = Math.max(1, Math.round(duration))
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', `${timeout}s`, '-s', file, new URL(url).origin]
  // `times` after wrk prints the shell's children's CPU time: wrk's, which the bench cannot read
  // from /proc once wrk has exited.
  const child = spawn('sh', ['-c', 'wrk "$@"; status=$?; times; exit $status', 'sh', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const code = await new Promise<number | null>(resolve => child.once('close', resolve))
  if (code !== 0 || !stdout.includes('wrk-summary ')) throw new Error(`wrk exited with ${code}: ${(stderr + stdout).trim().slice(-500)}`)
  return parse(stdout, connections, expect)
}

export function parse (stdout: string, connections: number, expect: Expectation): WrkRun {
  const lines = stdout.split('\n')
  const summary = lines.find(l => l.startsWith('wrk-summary '))?.split(' ').slice(1).map(Number)
  if (summary === undefined || summary.length !== 7 || summary.some(Number.isNaN)) throw new Error(`wrk printed no summary:\n${stdout.slice(-500)}`)
  const [requests, durationMicros, connect, read, write, timeouts] = summary as [number, number, number, number, number, number]
  const latency = new Map<string, number>()
  for (const line of lines.filter(l => l.startsWith('wrk-latency '))) {
    const [, name, value] = line.split(' ')
    latency.set(name!, Number(value) / 1000)
  }

  const statusCodeStats: Record<string, { count: number }> = {}
  const count = (status: string, n: number) => { statusCodeStats[status] = { count: (statusCodeStats[status]?.count ?? 0) + n } }
  let mismatches = 0
  for (const line of lines.filter(l => l.startsWith('wrk-seen '))) {
    const [, n, status] = line.split(' ', 3) as [string, string, string]
    const body = line.slice(`wrk-seen ${n} ${status} `.length)
    count(status, Number(n))
    if (!expect.body(body)) mismatches += Number(n)
  }
  for (const line of lines.filter(l => l.startsWith('wrk-unchecked '))) {
    const [, n, status] = line.split(' ') as [string, string, string]
    count(status, Number(n))
    mismatches += Number(n)
  }
  const counted = Object.values(statusCodeStats).reduce((sum, { count }) => sum + count, 0)
  if (counted !== requests) throw new Error(`wrk counted ${requests} responses and its hook ${counted}`)

  // `times`: the shell's own user and system time, then its children's.
  const times = lines.filter(l => /^\d+m[\d.]+s \d+m[\d.]+s$/.test(l.trim())).at(-1)
  const cpuSeconds = times === undefined
    ? Number.NaN
    : [...times.matchAll(/(\d+)m([\d.]+)s/g)].reduce((sum, m) => sum + Number(m[1]) * 60 + Number(m[2]), 0)

  const seconds = durationMicros / 1e6
  const non2xx = Object.entries(statusCodeStats).filter(([s]) => !s.startsWith('2')).reduce((sum, [, { count }]) => sum + count, 0)
  const ms = (name: string) => latency.get(name) ?? Number.NaN
  const result = {
    connections,
    duration: seconds,
    requests: { average: requests / seconds, total: requests },
    latency: { p50: ms('p50'), p90: ms('p90'), p99: ms('p99'), p99_9: ms('p99.9'), mean: ms('mean'), max: ms('max') },
    statusCodeStats,
    non2xx,
    errors: connect + read + write + timeouts,
    timeouts,
    mismatches
  } as unknown as autocannon.Result
  return { result, cpuSeconds }
}

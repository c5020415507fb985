import type autocannon from 'autocannon'
import type { Argon2Rate } from './argon2-rate.js'
import type { HeapPeak, LoopDelay } from './processes.js'
import type { Expectation } from './scenarios.js'

export type Target = 'service' | 'service, metrics on' | 'ceiling (a)' | 'ceiling (b)' | 'argon2'

export interface Row {
  scenario: string
  target: Target
  /** Connections, or argon2 verifies in flight. */
  connections: number
  seconds?: number
  reqPerSec?: number
  p50Ms?: number
  p99Ms?: number
  /** More of autocannon's latency histogram, for the JSON. */
  latencyMs?: { mean: number, p90: number, p99_9: number, max: number }
  non2xx?: number
  /** Connection errors and timeouts. */
  errors?: number
  /** Responses whose body failed the scenario's check. */
  wrongBodies?: number
  expectedStatus?: number
  statusCodes?: Record<string, number>
  check: string
  failed: boolean
  skipped?: boolean
  peakRssMiB?: number
  /** The V8 heap's peak in the measured process over the run (its probe's). */
  heap?: HeapPeak
  /** The measured process's CPU time (user + system, all threads) per response, from /proc. */
  cpuMicrosPerRequest?: number
  /** A local database server's CPU time per response over the same run (MySQL on loopback only). */
  dbMicrosPerRequest?: number
  /** The share of one core the measured process used over the run (its CPU time ÷ wall time). */
  serverCpu?: number
  /** The same for the load generator (this process with autocannon in it, or wrk): near 1 it, not the server, is the limit. */
  loadCpu?: number
  /** What sent the requests: autocannon, or wrk for the read scenarios when it is installed (bench/wrk.ts). */
  driver?: 'autocannon' | 'wrk'
  loop?: LoopDelay
  ratio?: { value: number, of: string }
  /** p99 latency ÷ that of the row the ratio is against (read scenarios against their ceiling). */
  p99Ratio?: number
  /**
   * The ceiling's µs/req ÷ the service's: the same ratio in server CPU per response, which the
   * load generator's share of the machine does not move (see cpuMicrosPerRequest).
   */
  cpuRatio?: number
}

/** A row from one autocannon run, with its verdict: every response had the expected status and body. */
export function loadRow (scenario: string, target: Target, result: autocannon.Result, expect: Expectation): Row {
  const statusCodes: Record<string, number> = {}
  for (const [code, { count = 0 }] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = count
  const problems: string[] = []
  for (const [code, count] of Object.entries(statusCodes)) {
    if (Number(code) !== expect.status) problems.push(`${count}×${code}`)
  }
  if (result.errors > 0) problems.push(`${result.errors} errors${result.timeouts > 0 ? ` (${result.timeouts} timeouts)` : ''}`)
  if (result.mismatches > 0) problems.push(`${result.mismatches} wrong bodies`)
  const responses = Object.values(statusCodes).reduce((a, b) => a + b, 0)
  if (responses === 0) problems.push('no response')

  return {
    scenario,
    target,
    connections: result.connections,
    seconds: result.duration,
    reqPerSec: result.requests.average,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    latencyMs: { mean: result.latency.mean, p90: result.latency.p90, p99_9: result.latency.p99_9, max: result.latency.max },
    non2xx: result.non2xx,
    errors: result.errors,
    wrongBodies: result.mismatches,
    expectedStatus: expect.status,
    statusCodes,
    check: problems.length === 0 ? `ok (${responses}×${expect.status})` : `FAIL: ${problems.join(', ')}`,
    failed: problems.length > 0
  }
}

/** How many responses a row counted, by the status codes it saw. */
const responsesOf = (r: Row) => Object.values(r.statusCodes ?? {}).reduce((a, b) => a + b, 0)

/**
 * One row from the rounds of one scenario on one target: rates and CPU figures over the whole
 * time, counts summed, latencies the median of the rounds' (neither load generator keeps a histogram to
 * merge), peaks and the event loop's p99 the highest. A failed or skipped round makes the row that round's.
 */
export function mergeRounds (rounds: Row[]): Row {
  if (rounds.length === 1) return rounds[0]!
  const bad = rounds.find(r => r.failed || r.skipped)
  if (bad !== undefined) return bad
  const sum = (pick: (r: Row) => number | undefined) => rounds.reduce((total, r) => total + (pick(r) ?? 0), 0)
  const median = (pick: (r: Row) => number | undefined) => {
    const values = rounds.map(pick).filter((v): v is number => v !== undefined).sort((a, b) => a - b)
    return values.length === 0 ? undefined : values[Math.floor(values.length / 2)]
  }
  const max = (pick: (r: Row) => number | undefined) => {
    const values = rounds.map(pick).filter((v): v is number => v !== undefined)
    return values.length === 0 ? undefined : Math.max(...values)
  }
  const seconds = sum(r => r.seconds)
  const statusCodes: Record<string, number> = {}
  for (const r of rounds) for (const [code, count] of Object.entries(r.statusCodes ?? {})) statusCodes[code] = (statusCodes[code] ?? 0) + count
  const responses = sum(responsesOf)
  const perResponse = (pick: (r: Row) => number | undefined) => rounds.some(r => pick(r) === undefined)
    ? undefined
    : rounds.reduce((total, r) => total + pick(r)! * responsesOf(r), 0) / responses
  const perSecond = (pick: (r: Row) => number | undefined) => rounds.some(r => pick(r) === undefined)
    ? undefined
    : rounds.reduce((total, r) => total + pick(r)! * (r.seconds ?? 0), 0) / seconds
  const first = rounds[0]!
  return {
    ...first,
    seconds,
    reqPerSec: responses / seconds,
    p50Ms: median(r => r.p50Ms),
    p99Ms: median(r => r.p99Ms),
    latencyMs: first.latencyMs && {
      mean: perResponse(r => r.latencyMs?.mean)!,
      p90: median(r => r.latencyMs?.p90)!,
      p99_9: median(r => r.latencyMs?.p99_9)!,
      max: max(r => r.latencyMs?.max)!
    },
    non2xx: sum(r => r.non2xx),
    errors: sum(r => r.errors),
    wrongBodies: sum(r => r.wrongBodies),
    statusCodes,
    check: `ok (${responses}×${first.expectedStatus}, ${rounds.length} rounds)`,
    peakRssMiB: max(r => r.peakRssMiB),
    heap: first.heap && { heapMiB: max(r => r.heap?.heapMiB)!, externalMiB: max(r => r.heap?.externalMiB)! },
    cpuMicrosPerRequest: perResponse(r => r.cpuMicrosPerRequest),
    dbMicrosPerRequest: perResponse(r => r.dbMicrosPerRequest),
    serverCpu: perSecond(r => r.serverCpu),
    loadCpu: perSecond(r => r.loadCpu),
    loop: first.loop && {
      samples: sum(r => r.loop?.samples),
      meanMs: median(r => r.loop?.meanMs)!,
      p50Ms: median(r => r.loop?.p50Ms)!,
      p99Ms: max(r => r.loop?.p99Ms)!,
      maxMs: max(r => r.loop?.maxMs)!
    }
  }
}

export function argon2Row (scenario: string, rate: Argon2Rate, peakRssMiB: number | undefined): Row {
  return {
    scenario,
    target: 'argon2',
    connections: rate.inFlight,
    seconds: rate.seconds,
    reqPerSec: rate.perSecond,
    p50Ms: rate.p50Ms,
    p99Ms: rate.p99Ms,
    check: rate.verifies > 0 ? `ok (${rate.verifies} verifies)` : 'FAIL: no verify finished',
    failed: rate.verifies === 0,
    peakRssMiB
  }
}

export function failedRow (scenario: string, target: Target, connections: number, err: unknown): Row {
  const message = (err as Error).message?.split('\n')[0] ?? String(err)
  return { scenario, target, connections, check: `FAIL: ${message}`, failed: true }
}

export function skippedRow (scenario: string, target: Target, connections: number, reason: string): Row {
  return { scenario, target, connections, check: `skipped: ${reason}`, failed: false, skipped: true }
}

/** The suffix of a read scenario's rows run at once with the ceilings (bench/run.ts). */
export const AT_ONCE = ', at once'

/**
 * The ratios the issue reads the service by: me and status_in against ceiling (b), status_out
 * against ceiling (a), me_bad against me, token and signup against the raw argon2 rate with as
 * many hashes in flight as the thread pool runs, on the CPUs the server had, flood against solo,
 * a scenario with metrics on against the same scenario with them off, and status_out on
 * ceiling (b) against (a), an A/A pair. A read scenario run at once with its ceiling reads
 * against that ceiling in the same rounds.
 */
export function addRatios (rows: Row[], argon2Reference: string): void {
  const find = (scenario: string, target: Target) =>
    rows.find(r => r.scenario === scenario && r.target === target && !r.failed && r.reqPerSec !== undefined)
  const against: Record<string, [string, Target, string]> = {
    me: ['me', 'ceiling (b)', 'of (b)'],
    status_in: ['status_in', 'ceiling (b)', 'of (b)'],
    status_out: ['status_out', 'ceiling (a)', 'of (a)'],
    me_bad: ['me', 'service', 'of me'],
    token: [argon2Reference, 'argon2', 'of argon2'],
    signup: [argon2Reference, 'argon2', 'of argon2'],
    refresh: ['me, beside refresh', 'service', 'of me beside it'],
    'flood: me': ['me, beside flood', 'service', 'of me solo'],
    'flood: token': ['token, beside flood', 'service', 'of token solo']
  }
  for (const row of rows) {
    if (row.target === 'service, metrics on') {
      compare(row, find(row.scenario, 'service'), 'metrics off')
      continue
    }
    const atOnce = row.scenario.endsWith(AT_ONCE)
    const scenario = atOnce ? row.scenario.slice(0, -AT_ONCE.length) : row.scenario
    const when = atOnce ? ' at once' : ''
    if (row.target === 'ceiling (b)' && scenario === 'status_out') {
      // Without a token ceiling (b) runs exactly what (a) runs: two identical servers, whose
      // ratio is how far apart this run measures the same thing.
      compare(row, find(row.scenario, 'ceiling (a)'), `of (a)${when}, the same code`)
    } else if (row.target === 'service') {
      const reference = against[scenario]
      // At once, against that ceiling's row of the same rounds (only read scenarios run at once).
      if (reference !== undefined) compare(row, find(atOnce ? row.scenario : reference[0], reference[1]), `${reference[2]}${when}`)
    }
  }
}

/** Sets `row`'s ratio to `base`, and against a ceiling its µs/req and p99 ratios as well. */
function compare (row: Row, base: Row | undefined, of: string): void {
  if (row.reqPerSec === undefined || !base?.reqPerSec) return
  row.ratio = { value: row.reqPerSec / base.reqPerSec, of }
  if (!base.target.startsWith('ceiling')) return
  if (base.p99Ms && row.p99Ms !== undefined) row.p99Ratio = row.p99Ms / base.p99Ms
  if (base.cpuMicrosPerRequest && row.cpuMicrosPerRequest) row.cpuRatio = base.cpuMicrosPerRequest / row.cpuMicrosPerRequest
}

/** "82% of (a), 88% in µs/req, p99 1.14×": req/s first, as the targets read. */
function ratioCell (ratio: NonNullable<Row['ratio']>, { cpuRatio, p99Ratio }: Row): string {
  return [
    `${num(ratio.value * 100)}% ${ratio.of}`,
    ...(cpuRatio === undefined ? [] : [`${num(cpuRatio * 100)}% in µs/req`]),
    ...(p99Ratio === undefined ? [] : [`p99 ${num(p99Ratio, 2)}×`])
  ].join(', ')
}

const COLUMNS = ['scenario', 'target', 'conns', 'req/s', 'µs/req', 'db µs/req', 'CPU server / load', 'p50 ms', 'p99 ms', 'non-2xx', 'errors', 'check', 'peak RSS MiB', 'peak heap MiB', 'loop p99 ms', 'ratio']

function num (value: number | undefined, digits = 0): string {
  if (value === undefined || Number.isNaN(value)) return '–'
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

/** autocannon's latencies are whole milliseconds; the probe's and argon2's are not. */
function ms (value: number | undefined): string {
  if (value === undefined) return '–'
  return num(value, Number.isInteger(value) || value >= 100 ? 0 : value < 10 ? 2 : 1)
}

export function markdownTable (rows: Row[]): string {
  const lines = rows.map(r => [
    r.scenario,
    r.target,
    r.target === 'argon2' ? `${r.connections} in flight` : String(r.connections),
    num(r.reqPerSec, r.target === 'argon2' ? 1 : 0),
    num(r.cpuMicrosPerRequest),
    num(r.dbMicrosPerRequest),
    r.serverCpu === undefined ? '–' : `${num(r.serverCpu * 100)}% / ${num((r.loadCpu ?? Number.NaN) * 100)}%`,
    ms(r.p50Ms),
    ms(r.p99Ms),
    num(r.non2xx),
    num(r.errors),
    r.driver === 'wrk' ? `${r.check}, wrk` : r.check,
    num(r.peakRssMiB, 1),
    r.heap === undefined ? '–' : `${num(r.heap.heapMiB, 1)} + ${num(r.heap.externalMiB, 1)}`,
    ms(r.loop?.p99Ms),
    r.ratio === undefined ? '–' : ratioCell(r.ratio, r)
  ])
  const escape = (cell: string) => cell.replaceAll('|', '\\|')
  return [
    `| ${COLUMNS.join(' | ')} |`,
    `| ${COLUMNS.map((_, i) => i < 2 || i === 11 ? '---' : '---:').join(' | ')} |`,
    ...lines.map(cells => `| ${cells.map(escape).join(' | ')} |`)
  ].join('\n')
}

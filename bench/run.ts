// `npm run bench`: the service under load (wrk for the read scenarios where it is installed, autocannon
// otherwise and for the rest), read against a bare Fastify ceiling and the raw argon2 rate measured in the same run. See bench/README.md.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { availableParallelism, cpus as cpuInfo, tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { loadConfig, type Config } from '../src/config.js'
import type { Argon2Rate, Argon2Request } from './argon2-rate.js'
import { createAccount, inParallel, logIn, type Credentials, type Grant } from './client.js'
import { mysqlDatabase, sqliteDatabase, type BenchDatabase } from './database.js'
import { parseOptions, UsageError, USAGE, type BenchOptions, type ScenarioName } from './options.js'
import { Child, chooseCpus, cpuSecondsOf, freePort, nodeArgsFor, ROOT, samplePeakRss, type Cpus } from './processes.js'
import { AT_ONCE, addRatios, argon2Row, failedRow, loadRow, markdownTable, mergeRounds, skippedRow, type Row, type Target } from './report.js'
import { buildLoad, type Fixture, type Load, type LoadName } from './scenarios.js'
import { hasWrk, runWrk } from './wrk.js'

const log = (message: string) => process.stderr.write(`[bench] ${message}\n`)

/** Enough accounts that the token scenario's connections do not all log in as one user. */
const MIN_USERS = 8
/** Access tokens spread over the read scenarios' connections (each its own user). */
const TOKENS = 8
const CEILING_SCENARIOS: ScenarioName[] = ['status_out', 'status_in', 'me']
const CEILINGS = [['fixed', 'ceiling (a)'], ['jwt', 'ceiling (b)']] as const
/** The scenarios `--metrics` also runs on a server with METRICS_PORT set. */
const METRICS_SCENARIOS: ScenarioName[] = ['me']
/**
 * The scenarios read against other scenarios on the service, which run again beside them and are
 * reported as `<name>, beside <scenario>`, so that a ratio compares measurements of the same
 * minutes. `refresh` alternates with `me` in rounds, as the read scenarios with their ceilings.
 * `flood` runs whole, between two halves of each of the others (before it and after it, in
 * mirror order): its logins take 400-800 ms each, and in 2 s rounds most would end a round in
 * flight, their hashing lost to the count and carried into the next round.
 */
const BESIDE: Partial<Record<ScenarioName, LoadName[]>> = { refresh: ['me'], flood: ['me', 'token'] }
const BRACKETED: ScenarioName[] = ['flood']
/** The scenarios read against the raw argon2 rate. */
const ARGON2_BOUND: ScenarioName[] = ['token', 'signup', 'flood']

interface Ceiling {
  target: Target
  child: Child
  url: string
  startError?: unknown
}

/** Things to undo at the end, or on Ctrl-C: children, the throwaway database, the temporary folder. */
class Cleanup {
  private tasks: Array<() => Promise<void> | void> = []
  push (task: () => Promise<void> | void) { this.tasks.push(task) }
  async run () {
    for (const task of this.tasks.splice(0).reverse()) {
      try {
        await task()
      } catch (err) {
        log(`cleanup: ${(err as Error).message}`)
      }
    }
  }
}

interface Named { name: string, load: Load }

/** Where wrk runs the read scenarios (bench/wrk.ts): its scripts' folder; undefined for autocannon only. */
type WrkDir = string | undefined

/**
 * One measured run (several autocannon instances at once for flood) against `target`; with
 * `databasePid`, that process's CPU time per response too. A single load that has a plain form
 * runs on wrk when `wrkDir` is set.
 */
async function measure (child: Child, target: Target, make: () => Named[], options: BenchOptions, warmup: boolean, databasePid?: number, wrkDir?: WrkDir): Promise<Row[]> {
  const onWrk = (loads: Named[]) => wrkDir !== undefined && loads.length === 1 && loads[0]!.load.plain !== undefined
  const wrk = ({ load }: Named, duration: number) =>
    runWrk(load.options.url, load.plain!, load.options.connections ?? options.connections, duration, Number(load.options.timeout ?? 10), load.expect, wrkDir!)
  if (warmup && options.warmup > 0) {
    const warm = make()
    if (onWrk(warm)) await wrk(warm[0]!, options.warmup)
    else await Promise.all(warm.map(({ load }) => autocannon({ ...load.options, duration: options.warmup })))
  }
  const loads = make()
  const driver = onWrk(loads) ? 'wrk' : 'autocannon'
  await child.resetProbe()
  const cpuBefore = await child.cpuSeconds()
  const dbBefore = await cpuSecondsOf(databasePid)
  const loadBefore = process.cpuUsage()
  const startedAt = performance.now()
  const { value: runs, peakRssMiB } = await samplePeakRss(child, (): Promise<Array<{ result: autocannon.Result, cpuSeconds?: number }>> => driver === 'wrk'
    ? wrk(loads[0]!, Number(loads[0]!.load.options.duration)).then(run => [run])
    : Promise.all(loads.map(async ({ load }) =>
      ({ result: await autocannon({ ...load.options, verifyBody: body => load.expect.body(String(body)) }), cpuSeconds: undefined }))))
  const seconds = (performance.now() - startedAt) / 1000
  const { user, system } = process.cpuUsage(loadBefore)
  // The load generator's share of a core: this process (autocannon runs in it; beside wrk it only
  // samples) plus wrk's own time.
  const loadCpu = ((user + system) / 1e6 + runs.reduce((sum, r) => sum + (r.cpuSeconds ?? 0), 0)) / seconds
  const results = runs.map(r => r.result)
  const cpuAfter = await child.cpuSeconds()
  const dbAfter = await cpuSecondsOf(databasePid)
  const { loop, heap } = await child.probeReport()
  // The process's CPU time over the run per response; loads run at once (flood) share one figure.
  const responses = results.reduce((sum, r) => sum + Object.values(r.statusCodeStats ?? {}).reduce((a, { count = 0 }) => a + count, 0), 0)
  const cpuMicrosPerRequest = cpuBefore === undefined || cpuAfter === undefined || responses === 0
    ? undefined
    : (cpuAfter - cpuBefore) * 1e6 / responses
  const dbMicrosPerRequest = dbBefore === undefined || dbAfter === undefined || responses === 0
    ? undefined
    : (dbAfter - dbBefore) * 1e6 / responses
  const serverCpu = cpuBefore === undefined || cpuAfter === undefined ? undefined : (cpuAfter - cpuBefore) / seconds
  return results.map((result, i) => ({ ...loadRow(loads[i]!.name, target, result, loads[i]!.load.expect), driver, peakRssMiB, heap, loop, cpuMicrosPerRequest, dbMicrosPerRequest, serverCpu, loadCpu }))
}

/** The rows of several rounds of one run (each round's rows in the same order), merged row by row. */
function mergeEach (rounds: Row[][]): Row[] {
  return rounds[0]!.map((_, j) => mergeRounds(rounds.map(round => round[j] ?? round[0]!)))
}

function describe (rows: Row[]) {
  for (const r of rows) {
    const rate = r.reqPerSec === undefined ? '' : `${Math.round(r.reqPerSec)} req/s, p99 ${r.p99Ms} ms, `
    log(`  ${r.scenario} (${r.target}): ${rate}${r.check}`)
  }
}

async function argon2Rates (config: Config, cpus: Cpus, options: BenchOptions, tmp: string): Promise<{ rows: Row[], reference: string }> {
  const runs: Array<{ name: string, inFlight: number, cpu?: number }> = []
  const allCores = `${cpus.available.length || availableParallelism()} cores`
  if (cpus.server !== undefined) {
    runs.push({ name: 'argon2 ×1, 1 core', inFlight: 1, cpu: cpus.server }, { name: 'argon2 ×4, 1 core', inFlight: 4, cpu: cpus.server })
  } else {
    runs.push({ name: `argon2 ×1, ${allCores}`, inFlight: 1 })
  }
  if (!cpus.pinned) runs.push({ name: `argon2 ×4, ${allCores}`, inFlight: 4 })

  const rows: Row[] = []
  for (const run of runs) {
    log(`${run.name}: ${options.argon2Duration} s`)
    const request: Argon2Request = { ...config.argon2, inFlight: [run.inFlight], seconds: options.argon2Duration }
    const logFile = join(tmp, `argon2-${rows.length}.log`)
    const child = new Child({
      name: 'argon2',
      args: [...nodeArgsFor('bench/argon2-rate.ts', { tsx: true, probe: false }), JSON.stringify(request)],
      // The service's allocator setting (below), so the raw rate and its memory compare with it.
      env: { ...process.env, MALLOC_ARENA_MAX: '1' },
      cpu: run.cpu,
      logFile
    })
    const { value: code, peakRssMiB } = await samplePeakRss(child, () => child.exit())
    const output = child.logTail(1)
    try {
      if (code !== 0) throw new Error(`exited with ${code}: ${child.logTail()}`)
      const [rate] = JSON.parse(output) as Argon2Rate[]
      rows.push(argon2Row(run.name, rate!, peakRssMiB))
    } catch (err) {
      rows.push(failedRow(run.name, 'argon2', run.inFlight, err))
    }
    describe(rows.slice(-1))
  }
  // The token ratio compares like with like: the rate on the CPUs the server had, four in flight
  // as libuv's default thread pool runs them.
  const reference = cpus.pinned ? 'argon2 ×4, 1 core' : `argon2 ×4, ${allCores}`
  return { rows, reference }
}

/** Access tokens, logged in afresh when half their lifetime has gone, so long runs stay valid. */
class Sessions {
  private grants: Grant[] = []
  private at = 0
  constructor (private baseUrl: string, private users: Credentials[], private ttlSeconds: number) {}

  async current (): Promise<Grant[]> {
    if (this.grants.length === 0 || Date.now() - this.at > this.ttlSeconds * 500) {
      this.grants = await inParallel(this.users.slice(0, TOKENS), 4, user => logIn(this.baseUrl, user))
      this.at = Date.now()
    }
    return this.grants
  }

  /** Refresh tokens, each from its own password grant, so each connection rotates its own family. */
  async refreshTokens (count: number): Promise<string[]> {
    const grants = await inParallel(Array.from({ length: count }, (_, i) => this.users[i % this.users.length]!), 4,
      user => logIn(this.baseUrl, user))
    return grants.map(g => g.refresh_token).filter((t): t is string => typeof t === 'string')
  }
}

function badToken (token: string): string {
  const [header, payload] = token.split('.')
  return `${header}.${payload}.${randomBytes(32).toString('base64url')}`
}

async function main (): Promise<number> {
  let parsed
  try {
    parsed = parseOptions(process.argv.slice(2))
  } catch (err) {
    if (!(err instanceof UsageError)) throw err
    console.error(`${err.message}\n\n${USAGE}`)
    return 2
  }
  if (parsed === 'help') {
    console.log(USAGE)
    return 0
  }
  const options: BenchOptions = parsed

  const startedAt = new Date()
  const cleanup = new Cleanup()
  const interrupted = async () => {
    log('interrupted: cleaning up')
    await cleanup.run()
    process.exit(130)
  }
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)

  try {
    if (options.build) {
      log('npm run build')
      const build = spawnSync('npm', ['run', 'build'], { cwd: ROOT, stdio: ['ignore', 2, 2] })
      if (build.status !== 0) throw new Error('npm run build failed')
    }

    // Before --pin narrows this process to one CPU.
    const machineCpus = availableParallelism()
    const cpus = chooseCpus(options.pin, log)
    const tmp = mkdtempSync(join(tmpdir(), 'auth-bench-'))
    cleanup.push(() => rmSync(tmp, { recursive: true, force: true }))
    // The read scenarios on wrk where it is installed: on autocannon, its parser was their limit (bench/wrk.ts).
    const wrkDir: WrkDir = !options.autocannonOnly && hasWrk() ? tmp : undefined
    if (wrkDir === undefined && !options.autocannonOnly) log('wrk is not installed: the read scenarios run on autocannon, which may be what limits them')

    let database: BenchDatabase
    if (options.mysqlUrl !== undefined) {
      database = await mysqlDatabase(options.mysqlUrl)
      cleanup.push(() => database.drop())
    } else {
      database = sqliteDatabase(tmp)
    }

    const port = await freePort()
    const baseUrl = `http://127.0.0.1:${port}`
    // HS256: ceiling (b) verifies the service's tokens with the same secret.
    const secret = randomBytes(48).toString('base64url')
    const serverEnv: NodeJS.ProcessEnv = {
      ...process.env,
      NODE_ENV: process.env.NODE_ENV || 'production',
      HOST: '127.0.0.1',
      PORT: String(port),
      DATABASE_URL: database.url,
      // As `npm run serve` and the Dockerfile run it (with --max-semi-space-size=8 below).
      MALLOC_ARENA_MAX: '1',
      JWT_ALGORITHM: 'HS256',
      JWT_SECRET: secret,
      BENCH_LOOP_PROBE: '1'
    }
    delete serverEnv.PUBLIC_URL
    // The service's own reading of that environment: argon2 cost, issuer, token lifetime.
    const config = loadConfig(serverEnv)

    // Migrated first, as `npm run migrate -- up` does in a deployment, so the server starts as
    // it does every time after the first: a process that migrates loads umzug and its
    // command-line tools, which patch `fs` (graceful-fs) and so stay, about 3 MiB of heap.
    log('applying the migrations (npm run migrate -- up)')
    const migrate = spawnSync(process.execPath, ['dist/src/migrate.js', 'up'], { cwd: ROOT, env: serverEnv, encoding: 'utf8' })
    if (migrate.status !== 0) throw new Error(`the migrations failed: ${(migrate.stderr || migrate.stdout).trim()}`)

    log(`starting the service on ${baseUrl} (${database.label}${cpus.pinned ? `, CPU ${cpus.server}` : ''})`)
    const server = new Child({
      name: 'server',
      args: ['--max-semi-space-size=8', ...nodeArgsFor('dist/src/server.js')],
      env: serverEnv,
      cpu: cpus.pinned ? cpus.server : undefined,
      logFile: join(tmp, 'server.log')
    })
    cleanup.push(() => server.stop())
    await server.waitUntilReady(`${baseUrl}/health`)
    const rssAtStartMiB = (await server.memory())?.rssMiB

    // The same service on the same database with metrics on, idle beside the first until a
    // scenario has run there and then runs here: the cost of metrics, measured seconds apart.
    let withMetrics: { child: Child, url: string, metricsUrl: string, startError?: unknown } | undefined
    if (options.metrics && METRICS_SCENARIOS.some(s => options.scenarios.includes(s))) {
      const [apiPort, metricsPort] = [await freePort(), await freePort()]
      const url = `http://127.0.0.1:${apiPort}`
      log(`starting the service with METRICS_PORT=${metricsPort} on ${url}`)
      const child = new Child({
        name: 'server (metrics on)',
        args: ['--max-semi-space-size=8', ...nodeArgsFor('dist/src/server.js')],
        // The first server's PUBLIC_URL, so the tokens it issued name this one's issuer and audience.
        env: { ...serverEnv, PORT: String(apiPort), PUBLIC_URL: baseUrl, METRICS_PORT: String(metricsPort) },
        cpu: cpus.pinned ? cpus.server : undefined,
        logFile: join(tmp, 'server-metrics.log')
      })
      cleanup.push(() => child.stop())
      withMetrics = { child, url, metricsUrl: `http://127.0.0.1:${metricsPort}/metrics` }
      try {
        await child.waitUntilReady(`${url}/health`)
      } catch (err) {
        withMetrics.startError = err
      }
    }

    // The ceilings idle beside the server and each read scenario runs on them right after the
    // service, so a machine whose load drifts during the bench skews the ratios less.
    const ceilingScenarios = CEILING_SCENARIOS.filter(s => options.scenarios.includes(s))
    const ceilings: Ceiling[] = []
    for (const [kind, target] of ceilingScenarios.length === 0 ? [] : CEILINGS) {
      const ceilingPort = await freePort()
      const url = `http://127.0.0.1:${ceilingPort}`
      log(`starting ${target} on ${url}`)
      const child = new Child({
        name: target,
        args: nodeArgsFor('bench/ceiling.ts', { tsx: true }),
        env: {
          ...process.env,
          CEILING: kind,
          PORT: String(ceilingPort),
          JWT_SECRET: secret,
          JWT_ISSUER: config.jwt.issuer,
          JWT_AUDIENCE: config.jwt.audience,
          JWT_CLOCK_SKEW: String(config.jwt.clockSkew),
          BENCH_LOOP_PROBE: '1'
        },
        cpu: cpus.pinned ? cpus.server : undefined,
        logFile: join(tmp, `ceiling-${kind}.log`)
      })
      cleanup.push(() => child.stop())
      const ceiling: Ceiling = { target, child, url }
      try {
        await child.waitUntilReady(`${url}/health`)
      } catch (err) {
        ceiling.startError = err
      }
      ceilings.push(ceiling)
    }

    const users: Credentials[] = Array.from({ length: Math.max(MIN_USERS, options.argon2Connections) }, (_, i) => ({
      email: `bench-${i}@example.com`,
      password: `bench-${randomBytes(12).toString('base64url')}`
    }))
    log(`seeding ${users.length} accounts at the configured argon2 cost`)
    await inParallel(users, 4, user => createAccount(baseUrl, user))
    const rssAfterSeedingMiB = (await server.memory())?.rssMiB
    const sessions = new Sessions(baseUrl, users, config.jwt.accessTokenTtl)

    const fixture = async (url: string, refreshTokens: string[] = []): Promise<Fixture> => {
      const accessTokens = (await sessions.current()).map(g => g.access_token)
      return {
        baseUrl: url,
        users,
        accessTokens,
        badToken: badToken(accessTokens[0]!),
        refreshTokens,
        signupPrefix: 'bench-signup',
        signupPassword: `bench-${randomBytes(12).toString('base64url')}`
      }
    }
    const connectionsFor = (name: LoadName) => name === 'token' || name === 'signup' ? options.argon2Connections : options.connections

    async function onService (scenario: ScenarioName, duration = options.duration, warmup = true, wrk?: WrkDir): Promise<Row[]> {
      if (!server.running) return [failedRow(scenario, 'service', options.connections, new Error('the server is no longer running'))]
      log(`${scenario}: ${duration} s`)
      try {
        if (scenario === 'flood') {
          const f = await fixture(baseUrl)
          return await measure(server, 'service', () => [
            { name: 'flood: me', load: buildLoad('me', f, options.connections, duration) },
            { name: 'flood: token', load: buildLoad('token', f, options.argon2Connections, duration) }
          ], options, false, database.pid)
        }
        if (scenario === 'refresh') {
          if ((await sessions.current())[0]?.refresh_token === undefined) {
            return [skippedRow(scenario, 'service', options.connections, 'server issued no refresh_token')]
          }
          // One family per connection, and spares for connections whose chain breaks. Each run
          // (each round) starts from families of its own: a run's end cuts every chain whose
          // request was in flight, and presenting its token again would be a reuse.
          const pool = await sessions.refreshTokens(options.connections + Math.max(4, Math.ceil(options.connections / 4)))
          const f = await fixture(baseUrl, pool)
          // No warm-up: it would spend the pool's tokens.
          return await measure(server, 'service', () => [
            { name: scenario, load: buildLoad(scenario, f, options.connections, duration) }
          ], options, false, database.pid)
        }
        const f = await fixture(baseUrl)
        return await measure(server, 'service', () => [
          { name: scenario, load: buildLoad(scenario, f, connectionsFor(scenario), duration) }
        ], options, warmup, database.pid, wrk)
      } catch (err) {
        return [failedRow(scenario, 'service', options.connections, err)]
      } finally {
        if (!server.running) log(`the server exited:\n${server.logTail()}`)
      }
    }

    async function onCeiling ({ target, child, url, startError }: Ceiling, scenario: LoadName, duration = options.duration, warmup = true): Promise<Row[]> {
      if (startError !== undefined) return [failedRow(scenario, target, options.connections, startError)]
      log(`${scenario} on ${target}: ${duration} s`)
      try {
        const f = await fixture(url)
        return await measure(child, target, () => [
          { name: scenario, load: buildLoad(scenario, f, options.connections, duration) }
        ], options, warmup, undefined, wrkDir)
      } catch (err) {
        return [failedRow(scenario, target, options.connections, err)]
      }
    }

    async function onMetricsServer (scenario: LoadName): Promise<Row[]> {
      const target = 'service, metrics on'
      if (withMetrics?.startError !== undefined) return [failedRow(scenario, target, options.connections, withMetrics.startError)]
      log(`${scenario} with metrics on: ${options.duration} s`)
      try {
        const f = await fixture(withMetrics!.url)
        const rows = await measure(withMetrics!.child, target, () => [
          { name: scenario, load: buildLoad(scenario, f, options.connections, options.duration) }
        ], options, true, database.pid, wrkDir)
        // The scrape must answer and have seen those requests, or the row measured nothing.
        const scrape = await fetch(withMetrics!.metricsUrl)
        const text = await scrape.text()
        const counted = /^http_request_duration_seconds_count\{method="GET",route="\/users\/me",status_code="200"\} (\d+)$/m.exec(text)?.[1]
        if (rows.every(r => !r.failed) && (scrape.status !== 200 || counted === undefined || Number(counted) === 0)) {
          return rows.map(r => ({ ...r, check: `FAIL: /metrics answered ${scrape.status} without the requests`, failed: true }))
        }
        return rows
      } catch (err) {
        return [failedRow(scenario, target, options.connections, err)]
      }
    }

    const serviceRows: Row[] = []
    const ceilingRows: Row[] = []
    let argon2: Awaited<ReturnType<typeof argon2Rates>> | undefined
    for (const scenario of options.scenarios) {
      // The hashing limit is measured just before the scenarios read against it, for the same reason.
      if (argon2 === undefined && ARGON2_BOUND.includes(scenario)) argon2 = await argon2Rates(config, cpus, options, tmp)
      const beside = BESIDE[scenario]
      if (beside !== undefined) {
        // The scenario and the ones it is read against in turn, round after round.
        const ownRounds: Row[][] = []
        const besideRounds: Row[][][] = beside.map(() => [])
        const runBeside = async (i: number, duration: number, warmup: boolean) => {
          const other = beside[i]!
          const rows = await onService(other, duration, warmup)
          besideRounds[i]!.push(rows.map(r => ({ ...r, scenario: `${other}, beside ${scenario}` })))
        }
        if (BRACKETED.includes(scenario)) {
          for (const i of beside.keys()) await runBeside(i, options.duration / 2, true)
          ownRounds.push(await onService(scenario))
          for (const i of [...beside.keys()].reverse()) await runBeside(i, options.duration / 2, false)
        } else {
          const duration = options.duration / options.rounds
          for (let round = 0; round < options.rounds; round++) {
            ownRounds.push(await onService(scenario, duration, round === 0))
            for (const i of beside.keys()) await runBeside(i, duration, round === 0)
          }
        }
        for (const rows of [mergeEach(ownRounds), ...besideRounds.map(mergeEach)]) {
          describe(rows)
          serviceRows.push(...rows)
        }
        continue
      }
      if (!ceilingScenarios.includes(scenario)) {
        const rows = await onService(scenario, options.duration, true, wrkDir)
        describe(rows)
        serviceRows.push(...rows)
        continue
      }
      // The service and its ceilings in turn, round after round (see BenchOptions.rounds).
      const duration = options.duration / options.rounds
      const serviceRounds: Row[][] = []
      const ceilingRounds: Row[][][] = ceilings.map(() => [])
      for (let round = 0; round < options.rounds; round++) {
        serviceRounds.push(await onService(scenario, duration, round === 0, wrkDir))
        for (const [i, ceiling] of ceilings.entries()) ceilingRounds[i]!.push(await onCeiling(ceiling, scenario as LoadName, duration, round === 0))
      }
      const rows = mergeEach(serviceRounds)
      describe(rows)
      serviceRows.push(...rows)
      // Then the service and both ceilings at once, all on the server's core (under --pin) under
      // a load generator each: the machine's slow and fast moments fall on all three alike, where
      // rounds in turn leave each side its own (see bench/README.md).
      const atOnce = (rows: Row[]) => rows.map(r => ({ ...r, scenario: scenario + AT_ONCE }))
      const serviceTogether: Row[][] = []
      const ceilingsTogether: Row[][][] = ceilings.map(() => [])
      for (let round = 0; round < options.together; round++) {
        const [own, ...theirs] = await Promise.all([
          onService(scenario, duration, false, wrkDir),
          ...ceilings.map(ceiling => onCeiling(ceiling, scenario as LoadName, duration, false))
        ])
        serviceTogether.push(atOnce(own))
        theirs.forEach((rows, i) => ceilingsTogether[i]!.push(atOnce(rows)))
      }
      if (serviceTogether.length > 0) {
        const rows = mergeEach(serviceTogether)
        describe(rows)
        serviceRows.push(...rows)
      }
      if (withMetrics !== undefined && METRICS_SCENARIOS.includes(scenario)) {
        const rows = await onMetricsServer(scenario as LoadName)
        describe(rows)
        serviceRows.push(...rows)
      }
      for (const rounds of [...ceilingRounds, ...ceilingsTogether]) {
        if (rounds.length === 0) continue
        const rows = mergeEach(rounds)
        describe(rows)
        ceilingRows.push(...rows)
      }
    }
    argon2 ??= await argon2Rates(config, cpus, options, tmp)
    const { rows: argon2Rows, reference } = argon2
    for (const { child } of ceilings) await child.stop()
    await withMetrics?.child.stop()

    const serverPeakRssMiB = (await server.memory())?.hwmMiB
    await server.stop()

    const rows = [...serviceRows, ...ceilingRows, ...argon2Rows]
    addRatios(rows, reference)
    const finishedAt = new Date()
    const title = [
      `auth-service bench, ${startedAt.toISOString()}`,
      database.kind,
      options.smoke ? 'SMOKE (not a measurement)' : `${options.duration} s per scenario${options.rounds > 1 ? ` (read scenarios with a ceiling in ${options.rounds} alternating rounds${options.together > 0 ? `, then ${options.together} at once` : ''})` : ''}`,
      cpus.pinned ? `server on CPU ${cpus.server}, load on CPU ${cpus.load}` : 'unpinned',
      `LOG_LEVEL=${config.logLevel}`,
      `argon2id m=${config.argon2.memoryCost} t=${config.argon2.timeCost} p=${config.argon2.parallelism}`,
      `Node ${process.version}`,
      `${machineCpus} CPUs`
    ].join(', ')

    const resultsDir = fileURLToPath(new URL('bench/results/', ROOT))
    mkdirSync(resultsDir, { recursive: true })
    const resultsFile = join(resultsDir, `${startedAt.toISOString().replace(/[:.]/g, '-')}.json`)
    const failed = rows.filter(r => r.failed)
    writeFileSync(resultsFile, JSON.stringify({
      title,
      startedAt,
      finishedAt,
      options: { ...options, mysqlUrl: options.mysqlUrl === undefined ? undefined : database.label },
      machine: { cpus: machineCpus, cpuModel: cpuInfo()[0]?.model, node: process.version, platform: process.platform },
      pinning: cpus,
      service: {
        database: database.kind,
        logLevel: config.logLevel,
        argon2: config.argon2,
        rssAtStartMiB,
        rssAfterSeedingMiB,
        peakRssMiB: serverPeakRssMiB
      },
      argon2Reference: reference,
      passed: failed.length === 0,
      rows
    }, null, 2) + '\n')

    console.log(`### ${title}\n\n${markdownTable(rows)}\n`)
    const mib = (value: number | undefined) => value === undefined ? 'unknown' : `${value.toFixed(1)} MiB`
    console.log([
      `Server RSS: ${mib(rssAtStartMiB)} once listening, ${mib(rssAfterSeedingMiB)} after seeding, peak over the whole bench (VmHWM) ${mib(serverPeakRssMiB)}.`,
      'loop p99: event-loop delay beyond the probe\'s 10 ms timer.',
      `Results: ${relative(process.cwd(), resultsFile)}`
    ].join(' '))
    if (failed.length > 0) {
      log(`${failed.length} row(s) failed their check: ${failed.map(r => `${r.scenario} (${r.target})`).join(', ')}`)
      return 1
    }
    return 0
  } finally {
    await cleanup.run()
  }
}

process.exitCode = await main()

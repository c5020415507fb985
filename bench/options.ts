import { parseArgs } from 'node:util'

export const SCENARIOS = ['status_out', 'status_in', 'me', 'me_bad', 'token', 'signup', 'refresh', 'flood'] as const
export type ScenarioName = typeof SCENARIOS[number]

export interface BenchOptions {
  /** Seconds of measured load per scenario. */
  duration: number
  /** Seconds of unmeasured load before each scenario (JIT, caches, connection pools). */
  warmup: number
  /** Connections for the scenarios that do not hash (me, status_*, me_bad, refresh, flood's me). */
  connections: number
  /** Connections for the scenarios bound by argon2 (token, signup, flood's token). */
  argon2Connections: number
  /** Seconds per argon2 rate measurement. */
  argon2Duration: number
  scenarios: ScenarioName[]
  pin: boolean
  /** Set when the bench runs on MySQL: the server's URL, without a database. */
  mysqlUrl?: string
  smoke: boolean
  build: boolean
  /** Also runs `me` on a second server with METRICS_PORT set, right after the first. */
  metrics: boolean
  /**
   * The read scenarios measured against a ceiling run as this many rounds of duration ÷ rounds
   * seconds, service and ceilings in turn, so a machine that speeds up or slows down in the
   * middle of a scenario moves both sides of the ratio alike.
   */
  rounds: number
  /**
   * Then this many more rounds with the service and its ceiling at once, both on the server's
   * core under a load generator each: what the machine does in that time, it does to both.
   */
  together: number
  /** Every scenario on autocannon, even where wrk is installed (which then runs the read scenarios). */
  autocannonOnly: boolean
}

const DEFAULT_MYSQL_URL = 'mysql://root@127.0.0.1:3306'

export const USAGE = `npm run bench -- [options]

  --duration S            measured seconds per scenario (default 10, smoke 1)
  --warmup S              unmeasured seconds before each scenario (default 1, smoke 0)
  --connections N         connections for me, status_*, me_bad, refresh (default 64, smoke 4)
  --argon2-connections N  connections for token and signup, bound by argon2 (default 8, smoke 2)
  --scenarios a,b,c       subset of ${SCENARIOS.join(',')}
  --pin                   server (and ceilings) on one core with taskset, load generator on another
  --mysql                 run on MySQL: MYSQL_URL, or ${DEFAULT_MYSQL_URL} (a throwaway database is created and dropped)
  --metrics               also run me on a second server with METRICS_PORT set (metrics on vs off)
  --rounds N              read scenarios with a ceiling: N alternating rounds of service and ceilings (default 5, smoke 1)
  --together N            then N rounds of each with its ceiling at once, on the same core (default 5, smoke 1, 0: none)
  --autocannon            the read scenarios on autocannon too, even where wrk is installed
  --smoke                 1 s per scenario with few connections: checks the harness, measures nothing
  --skip-build            use the existing dist/ instead of running npm run build
  --help`

export class UsageError extends Error {
  override name = 'UsageError'
}

export function parseOptions (argv: string[], env: NodeJS.ProcessEnv = process.env): BenchOptions | 'help' {
  let values
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        duration: { type: 'string' },
        warmup: { type: 'string' },
        connections: { type: 'string' },
        'argon2-connections': { type: 'string' },
        scenarios: { type: 'string' },
        pin: { type: 'boolean', default: false },
        mysql: { type: 'boolean', default: false },
        smoke: { type: 'boolean', default: false },
        metrics: { type: 'boolean', default: false },
        rounds: { type: 'string' },
        together: { type: 'string' },
        'skip-build': { type: 'boolean', default: false },
        autocannon: { type: 'boolean', default: false },
        help: { type: 'boolean', default: false }
      }
    }))
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
  if (values.help) return 'help'

  const smoke = values.smoke
  const duration = positive('--duration', values.duration, smoke ? 1 : 10)
  const mysqlUrl = env.MYSQL_URL !== undefined && env.MYSQL_URL !== ''
    ? env.MYSQL_URL
    : values.mysql ? DEFAULT_MYSQL_URL : undefined

  return {
    duration,
    warmup: positive('--warmup', values.warmup, smoke ? 0 : 1, true),
    connections: positive('--connections', values.connections, smoke ? 4 : 64),
    argon2Connections: positive('--argon2-connections', values['argon2-connections'], smoke ? 2 : 8),
    argon2Duration: Math.min(duration, 5),
    scenarios: scenarioList(values.scenarios),
    pin: values.pin,
    mysqlUrl,
    smoke,
    build: !values['skip-build'],
    metrics: values.metrics,
    rounds: positive('--rounds', values.rounds, smoke ? 1 : 5),
    together: positive('--together', values.together, smoke ? 1 : 5, true),
    autocannonOnly: values.autocannon
  }
}

function positive (flag: string, raw: string | undefined, fallback: number, zeroOk = false): number {
  if (raw === undefined) return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value < 0 || (value === 0 && !zeroOk)) {
    throw new UsageError(`${flag} must be a ${zeroOk ? 'non-negative' : 'positive'} number, not ${JSON.stringify(raw)}`)
  }
  const count = flag.includes('connections') || flag === '--rounds' || flag === '--together'
  if (!count) return value
  return zeroOk ? Math.round(value) : Math.max(1, Math.round(value))
}

function scenarioList (raw: string | undefined): ScenarioName[] {
  if (raw === undefined) return [...SCENARIOS]
  const wanted = raw.split(',').map(s => s.trim()).filter(Boolean)
  const unknown = wanted.filter(s => !(SCENARIOS as readonly string[]).includes(s))
  if (unknown.length > 0) throw new UsageError(`unknown scenario(s) ${unknown.join(', ')}; choose from ${SCENARIOS.join(', ')}`)
  return SCENARIOS.filter(s => wanted.includes(s))
}

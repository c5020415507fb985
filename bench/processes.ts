import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

export const ROOT = new URL('../', import.meta.url)
export const LOOP_PROBE = new URL('bench/loop-probe.js', ROOT).href

/** USER_HZ, the unit of /proc's CPU times: 100 on every Linux this runs on, asked once anyway. */
const CLOCK_TICKS = (() => {
  const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout
  const value = Number(out?.trim())
  return Number.isFinite(value) && value > 0 ? value : 100
})()

/**
 * CPU seconds a process has used so far, user and system, every thread (libuv's pool, GC helpers,
 * a database server's connection threads) included: fields 14 and 15 of /proc/<pid>/stat.
 * Undefined off Linux, or when the process is gone.
 */
export async function cpuSecondsOf (pid: number | undefined): Promise<number | undefined> {
  if (pid === undefined) return undefined
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces; the fields after it are counted from its ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    const ticks = Number(fields[11]) + Number(fields[12])
    return Number.isNaN(ticks) ? undefined : ticks / CLOCK_TICKS
  } catch {
    return undefined
  }
}

/**
 * The process listening on this loopback TCP port (`ss -ltnpH`), to count a local database
 * server's CPU beside the service's; undefined when there is none, or it cannot be told.
 */
export function listenerPid (port: number): number | undefined {
  const out = spawnSync('ss', ['-ltnpH', `sport = :${port}`], { encoding: 'utf8' }).stdout ?? ''
  const pids = new Set([...out.matchAll(/pid=(\d+)/g)].map(m => Number(m[1])))
  return pids.size === 1 ? [...pids][0] : undefined
}

/** Which CPUs the benchmarked process and the load generator get; undefined where unpinned. */
export interface Cpus {
  /** The CPU that `--pin` gives the server and the ceilings, and the "one core" argon2 rate uses. */
  server?: number
  /** The CPU the bench itself (autocannon) moves to under `--pin`. */
  load?: number
  /** True when the server and the ceilings actually run pinned. */
  pinned: boolean
  /** CPUs this process may use. */
  available: number[]
}

export function hasTaskset (): boolean {
  return spawnSync('taskset', ['--version'], { stdio: 'ignore' }).status === 0
}

/** Parses taskset's list syntax: "0,1", "0-3", "0-3,8". */
export function parseCpuList (list: string): number[] {
  const cpus: number[] = []
  for (const part of list.trim().split(',')) {
    const [from, to = from] = part.split('-').map(Number)
    if (from === undefined || to === undefined || Number.isNaN(from) || Number.isNaN(to)) continue
    for (let cpu = from; cpu <= to; cpu++) cpus.push(cpu)
  }
  return cpus
}

export function chooseCpus (pin: boolean, warn: (message: string) => void): Cpus {
  if (!hasTaskset()) {
    if (pin) warn('--pin ignored: taskset is not installed (util-linux)')
    return { pinned: false, available: [] }
  }
  const out = spawnSync('taskset', ['-pc', String(process.pid)], { encoding: 'utf8' }).stdout
  const available = parseCpuList(out.slice(out.lastIndexOf(':') + 1))
  const [server, load] = available
  if (!pin) return { server, pinned: false, available }
  if (server === undefined || load === undefined) {
    warn(`--pin ignored: it needs two CPUs and this process may use ${available.length}`)
    return { server, pinned: false, available }
  }
  // -a: every thread of the bench, not only the main one.
  const moved = spawnSync('taskset', ['-a', '-pc', String(load), String(process.pid)], { stdio: 'ignore' })
  if (moved.status !== 0) {
    warn('--pin ignored: taskset could not move the load generator')
    return { server, pinned: false, available }
  }
  return { server, load, pinned: true, available }
}

/** A free TCP port on 127.0.0.1 (the usual small race is acceptable here). */
export async function freePort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve))
  const address = server.address()
  await new Promise(resolve => server.close(resolve))
  if (address === null || typeof address === 'string') throw new Error('no port')
  return address.port
}

export interface LoopDelay {
  samples: number
  meanMs: number
  p50Ms: number
  p99Ms: number
  maxMs: number
}

/** The V8 heap's peak in the measured process (bench/loop-probe.js), in MiB. */
export interface HeapPeak {
  /** total_heap_size: what V8 holds for its heap, used or not. */
  heapMiB: number
  /** external_memory: memory outside the heap that V8 is told of, Buffers among it. */
  externalMiB: number
}

interface ProbeMessage extends Partial<LoopDelay> {
  heapPeakMiB?: number
  externalPeakMiB?: number
  probe: 'reset' | 'report'
  id: number
}

export interface SpawnOptions {
  name: string
  /** Arguments after `node`. */
  args: string[]
  env: NodeJS.ProcessEnv
  /** Pins the process to this CPU with taskset. */
  cpu?: number
  /** Its stdout and stderr go there, so a failure can be explained without the bench reading every log line. */
  logFile: string
}

/** A process the bench started, measured from outside: resident memory and, when it preloads the probe, event-loop delay. */
export class Child {
  readonly process: ChildProcess
  readonly name: string
  readonly logFile: string
  private exited: Promise<void>
  private exitCode: number | null = null
  private nextProbeId = 0

  constructor ({ name, args, env, cpu, logFile }: SpawnOptions) {
    this.name = name
    this.logFile = logFile
    const fd = openSync(logFile, 'a')
    const command = cpu === undefined ? [process.execPath, ...args] : ['taskset', '-c', String(cpu), process.execPath, ...args]
    // taskset execs node, so the pid (and the IPC channel) are node's own.
    this.process = spawn(command[0]!, command.slice(1), { cwd: ROOT, env, stdio: ['ignore', fd, fd, 'ipc'] })
    closeSync(fd)
    this.exited = new Promise(resolve => this.process.once('exit', (code) => {
      this.exitCode = code
      resolve()
    }))
  }

  get pid (): number {
    return this.process.pid!
  }

  get running (): boolean {
    return this.process.exitCode === null && this.process.signalCode === null
  }

  /** Resolves with the exit code once the process has ended. */
  async exit (): Promise<number | null> {
    await this.exited
    return this.exitCode
  }

  /** Resolves when `url` answers 200; rejects, with the end of the log, when the process dies or the time runs out. */
  async waitUntilReady (url: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`${this.name} exited with ${this.exitCode} before answering:\n${this.logTail()}`)
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(2000) })
        await response.arrayBuffer()
        if (response.status === 200) return
      } catch {
        // not listening yet
      }
      await sleep(100)
    }
    throw new Error(`${this.name} did not answer ${url} within ${timeoutMs / 1000} s:\n${this.logTail()}`)
  }

  logTail (lines = 20): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
    } catch {
      return '(no log)'
    }
  }

  /** VmRSS and VmHWM (the peak RSS since the process started) in MiB, from /proc; undefined elsewhere. */
  async memory (): Promise<{ rssMiB: number, hwmMiB: number } | undefined> {
    try {
      const status = await readFile(`/proc/${this.pid}/status`, 'utf8')
      const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1])
      const rss = kib('VmRSS')
      const hwm = kib('VmHWM')
      return Number.isNaN(rss) || Number.isNaN(hwm) ? undefined : { rssMiB: rss / 1024, hwmMiB: hwm / 1024 }
    } catch {
      return undefined
    }
  }

  /** CPU seconds the process has used so far (cpuSecondsOf). */
  cpuSeconds (): Promise<number | undefined> {
    return cpuSecondsOf(this.pid)
  }

  /** Starts the probe's histogram and heap peak afresh. */
  async resetProbe (): Promise<void> {
    await this.probe('reset')
  }

  /** The event-loop delay and the heap's peak since the last reset; nothing when the process has no probe. */
  async probeReport (): Promise<{ loop?: LoopDelay, heap?: HeapPeak }> {
    const message = await this.probe('report')
    if (message === undefined || message.p99Ms === undefined) return {}
    const { samples = 0, meanMs = 0, p50Ms = 0, p99Ms, maxMs = 0, heapPeakMiB, externalPeakMiB } = message
    return {
      loop: { samples, meanMs, p50Ms, p99Ms, maxMs },
      heap: heapPeakMiB === undefined ? undefined : { heapMiB: heapPeakMiB, externalMiB: externalPeakMiB ?? 0 }
    }
  }

  private probe (kind: ProbeMessage['probe']): Promise<ProbeMessage | undefined> {
    if (!this.running || !this.process.connected) return Promise.resolve(undefined)
    const id = ++this.nextProbeId
    return new Promise(resolve => {
      const timer = setTimeout(() => done(undefined), 2000)
      const onMessage = (message: ProbeMessage) => {
        if (message?.probe === kind && message.id === id) done(message)
      }
      const done = (message: ProbeMessage | undefined) => {
        clearTimeout(timer)
        this.process.off('message', onMessage)
        resolve(message)
      }
      this.process.on('message', onMessage)
      this.process.send({ probe: kind, id })
    })
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  async stop (graceMs = 15_000): Promise<void> {
    if (!this.running) return
    this.process.kill('SIGTERM')
    const killed = sleep(graceMs).then(() => {
      if (this.running) this.process.kill('SIGKILL')
    })
    await Promise.race([this.exited, killed])
    await this.exited
  }
}

/** Peak VmRSS of a child while `during` runs, sampled every 100 ms. */
export async function samplePeakRss<T> (child: Child, during: () => Promise<T>): Promise<{ value: T, peakRssMiB?: number }> {
  let peak: number | undefined
  const stop = new AbortController()
  const sampler = (async () => {
    while (!stop.signal.aborted) {
      const memory = await child.memory()
      if (memory !== undefined) peak = Math.max(peak ?? 0, memory.rssMiB)
      await sleep(100)
    }
  })()
  try {
    const value = await during()
    return { value, peakRssMiB: peak }
  } finally {
    stop.abort()
    await sampler
  }
}

export function nodeArgsFor (script: string, { tsx = false, probe = true } = {}): string[] {
  return [
    ...(tsx ? ['--import', 'tsx'] : []),
    ...(probe ? ['--import', LOOP_PROBE] : []),
    fileURLToPath(new URL(script, ROOT))
  ]
}

import { readdirSync, readFileSync } from 'node:fs'
import { setPriority } from 'node:os'

/**
 * argon2 hashes on libuv's thread pool, and a login flood keeps those threads busy. On Linux
 * the nice value belongs to each thread, so the pool can run below the event loop: a
 * credential-stuffing wave then slows logins, not the requests of people already logged in.
 * Best effort: without /proc (other systems) nothing changes.
 *
 * Nice 3 weighs 526 against the event loop's 1024 in Linux's scheduler: on a core both want, a
 * hashing thread gets about a third of it, so logins keep about a third of their rate under a
 * read flood, and reads about two thirds of theirs. Nice 5 (335) left logins under 30%.
 */
export const POOL_NICENESS = 3

interface ThreadSample { ticks: number, name: string }

/** CPU time (clock ticks) and name of each of this process's threads; empty without /proc. */
function threadSamples (): Map<number, ThreadSample> {
  const samples = new Map<number, ThreadSample>()
  let tids: string[]
  try {
    tids = readdirSync('/proc/self/task')
  } catch {
    return samples
  }
  for (const tid of tids) {
    try {
      // Fields after "(comm) ": state is 3rd, utime the 14th and stime the 15th (proc(5)).
      const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')
      const name = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()
      samples.set(Number(tid), { ticks: Number(fields[11]) + Number(fields[12]), name })
    } catch {
      // The thread ended meanwhile.
    }
  }
  return samples
}

/** The name libuv 1.50 and later (Node 24's) gives its pool threads; older ones leave them unnamed. */
const POOL_THREAD_NAME = 'libuv-worker'

/**
 * Runs `work` (which must keep the pool busy: one argon2 hash per pool thread) and lowers the
 * priority of the pool's threads. Where libuv names them, those are the threads; where it does
 * not, they are the ones that used CPU during `work`, the busiest `poolSize` of them (V8's own
 * helper threads may wake for a tick meanwhile, and must keep their priority). Returns how many
 * threads were lowered.
 */
export async function lowerPriorityOfThreadsRunning (work: () => Promise<unknown>, poolSize: number, niceness = POOL_NICENESS): Promise<number> {
  const before = threadSamples()
  await work()
  if (before.size === 0) return 0
  const after = [...threadSamples()].filter(([tid]) => tid !== process.pid)
  const named = after.filter(([, { name }]) => name === POOL_THREAD_NAME)
  const pool = named.length > 0
    ? named.map(([tid]) => tid)
    : after
      .map(([tid, { ticks }]) => ({ tid, used: ticks - (before.get(tid)?.ticks ?? 0) }))
      .filter(({ used }) => used > 0)
      .sort((a, b) => b.used - a.used)
      .slice(0, poolSize)
      .map(({ tid }) => tid)
  let lowered = 0
  for (const tid of pool) {
    try {
      setPriority(tid, niceness)
      lowered++
    } catch {
      // Refused or gone: that thread keeps its priority.
    }
  }
  return lowered
}

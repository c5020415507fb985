import { readdirSync, readFileSync } from 'node:fs'
import { setPriority } from 'node:os'

/**
 * argon2 hashes on libuv's thread pool, and a login flood keeps those threads busy. On Linux
 * the nice value belongs to each thread, so the pool can run below the event loop: a
 * credential-stuffing wave then slows logins, not the requests of people already logged in.
 * Best effort: without /proc (other systems) nothing changes.
 */
export const POOL_NICENESS = 5

/** CPU time (clock ticks) of each of this process's threads; empty without /proc. */
function threadCpuTimes (): Map<number, number> {
  const times = new Map<number, number>()
  let tids: string[]
  try {
    tids = readdirSync('/proc/self/task')
  } catch {
    return times
  }
  for (const tid of tids) {
    try {
      // Fields after "(comm) ": state is 3rd, utime the 14th and stime the 15th (proc(5)).
      const fields = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')
      times.set(Number(tid), Number(fields[11]) + Number(fields[12]))
    } catch {
      // The thread ended meanwhile.
    }
  }
  return times
}

/**
 * Runs `work` (which must keep the pool busy, e.g. one argon2 hash per pool thread) and lowers
 * the priority of every thread other than the main one that used CPU during it: libuv does not
 * name its threads, but it is they that hash. Returns how many threads were lowered.
 */
export async function lowerPriorityOfThreadsRunning (work: () => Promise<unknown>, niceness = POOL_NICENESS): Promise<number> {
  const before = threadCpuTimes()
  await work()
  if (before.size === 0) return 0
  let lowered = 0
  for (const [tid, ticks] of threadCpuTimes()) {
    if (tid === process.pid || ticks <= (before.get(tid) ?? 0)) continue
    try {
      setPriority(tid, niceness)
      lowered++
    } catch {
      // Refused or gone: that thread keeps its priority.
    }
  }
  return lowered
}

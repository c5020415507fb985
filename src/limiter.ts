/**
 * At most `concurrency` tasks run at once and at most `maxQueued` wait; past that `run`
 * rejects at once with what `overflow()` makes, so a flood cannot grow latency or memory
 * without bound.
 */
export function createLimiter (concurrency: number, maxQueued: number, overflow: () => Error) {
  let active = 0
  const waiting: Array<() => void> = []

  return {
    get active () { return active },
    get queued () { return waiting.length },
    async run<T> (task: () => Promise<T>): Promise<T> {
      if (active < concurrency) {
        active++
      } else {
        if (waiting.length >= maxQueued) throw overflow()
        // The slot is handed over by the task that finishes, so `active` stays counted.
        await new Promise<void>(resolve => waiting.push(resolve))
      }
      try {
        return await task()
      } finally {
        const next = waiting.shift()
        if (next === undefined) active--
        else next()
      }
    }
  }
}

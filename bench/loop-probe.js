// Preloaded into a benchmarked process with `node --import ./bench/loop-probe.js`, so the
// service's own code stays untouched: it measures event-loop delay and answers the bench over
// the IPC channel the bench opened. Plain JavaScript because the built server runs without tsx.
import { monitorEventLoopDelay } from 'node:perf_hooks'

const RESOLUTION_MS = 10

if (process.env.BENCH_LOOP_PROBE === '1' && typeof process.send === 'function') {
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  histogram.enable()

  // Each sample includes the timer's own interval; like @fastify/under-pressure, report only the lag beyond it.
  const lagMs = (/** @type {number} */ ns) => Math.max(0, ns / 1e6 - RESOLUTION_MS)

  process.on('message', (/** @type {{ probe?: string, id?: number }} */ message) => {
    if (message?.probe === 'reset') {
      histogram.reset()
      process.send?.({ probe: 'reset', id: message.id })
    } else if (message?.probe === 'report') {
      process.send?.({
        probe: 'report',
        id: message.id,
        resolutionMs: RESOLUTION_MS,
        samples: histogram.count,
        meanMs: lagMs(histogram.mean),
        p50Ms: lagMs(histogram.percentile(50)),
        p99Ms: lagMs(histogram.percentile(99)),
        maxMs: lagMs(histogram.max)
      })
    }
  })
  // The channel must never keep the service alive once it is asked to close.
  process.channel?.unref()
}

// Preloaded into a benchmarked process with `node --import ./bench/loop-probe.js`, so the
// service's own code stays untouched: it measures event-loop delay and the V8 heap's peak, and
// answers the bench over the IPC channel the bench opened. Plain JavaScript because the built
// server runs without tsx.
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { getHeapStatistics } from 'node:v8'

const RESOLUTION_MS = 10
/** How often the heap is read: as often as the bench samples the process's RSS from outside. */
const HEAP_SAMPLE_MS = 100
const MiB = 1024 * 1024

if (process.env.BENCH_LOOP_PROBE === '1' && typeof process.send === 'function') {
  const histogram = monitorEventLoopDelay({ resolution: RESOLUTION_MS })
  histogram.enable()

  // The heap V8 holds (total_heap_size: what it took from the system for its spaces, used or not)
  // and the memory outside it that V8 is told of (Buffers among it): beside the RSS, they say
  // whether a peak is the JavaScript heap growing or native memory.
  let heapPeak = 0
  let externalPeak = 0
  const sampleHeap = () => {
    const { total_heap_size: heap, external_memory: external } = getHeapStatistics()
    if (heap > heapPeak) heapPeak = heap
    if (external > externalPeak) externalPeak = external
  }
  setInterval(sampleHeap, HEAP_SAMPLE_MS).unref()

  // Each sample includes the timer's own interval; like @fastify/under-pressure, report only the lag beyond it.
  const lagMs = (/** @type {number} */ ns) => Math.max(0, ns / 1e6 - RESOLUTION_MS)

  process.on('message', (/** @type {{ probe?: string, id?: number }} */ message) => {
    if (message?.probe === 'reset') {
      histogram.reset()
      heapPeak = externalPeak = 0
      sampleHeap()
      process.send?.({ probe: 'reset', id: message.id })
    } else if (message?.probe === 'report') {
      sampleHeap()
      process.send?.({
        probe: 'report',
        id: message.id,
        resolutionMs: RESOLUTION_MS,
        samples: histogram.count,
        meanMs: lagMs(histogram.mean),
        p50Ms: lagMs(histogram.percentile(50)),
        p99Ms: lagMs(histogram.percentile(99)),
        maxMs: lagMs(histogram.max),
        heapPeakMiB: heapPeak / MiB,
        externalPeakMiB: externalPeak / MiB
      })
    }
  })
  // The channel must never keep the service alive once it is asked to close.
  process.channel?.unref()
}

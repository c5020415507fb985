// Preloaded (--import) into the soak test's server: garbage on a timer, so that V8 collects on its
// own schedule (scavenges, incremental marking finished from its own tasks) many times a second,
// counted with every other collection. globalThis.gc() is not used: a collection forced from
// JavaScript runs inside a context, the one case where better-sqlite3 12 on Node 24 survived.
import { PerformanceObserver } from 'node:perf_hooks'

const interval = Number(process.env.GC_CHURN_INTERVAL_MS)
const counts = { minor: 0, major: 0, all: 0 }
new PerformanceObserver(list => {
  for (const entry of list.getEntries()) {
    counts.all++
    if (entry.detail?.kind === 1) counts.minor++
    if (entry.detail?.kind === 4) counts.major++
  }
}).observe({ entryTypes: ['gc'] })

let kept = []
setInterval(() => {
  // Some garbage lives long enough to be promoted, so the old generation is collected too.
  const churn = Array.from({ length: 20_000 }, (_, i) => ({ i, s: `x${i}` }))
  kept = kept.length > 5 ? [churn] : [...kept, churn]
}, interval).unref()

process.on('exit', () => process.stderr.write(`gc-pressure: ${counts.minor} minor, ${counts.major} major, ${counts.all} in all\n`))

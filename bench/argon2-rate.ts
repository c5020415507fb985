// The hashing limit: how many argon2id verifies per second this process manages at the
// configured cost, with N verifies in flight. Started by bench/run.ts (pinned to one core
// when taskset exists); prints one JSON line.
import { randomBytes } from 'node:crypto'
import argon2 from 'argon2'

export interface Argon2Request {
  memoryCost: number
  timeCost: number
  parallelism: number
  inFlight: number[]
  seconds: number
}

export interface Argon2Rate {
  inFlight: number
  verifies: number
  seconds: number
  perSecond: number
  p50Ms: number
  p99Ms: number
}

function percentile (sorted: number[], p: number): number {
  if (sorted.length === 0) return 0
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
}

async function measure (hash: string, password: string, inFlight: number, seconds: number): Promise<Argon2Rate> {
  const latencies: number[] = []
  const start = performance.now()
  const end = start + seconds * 1000
  async function lane () {
    while (performance.now() < end) {
      const t0 = performance.now()
      if (!await argon2.verify(hash, password)) throw new Error('argon2 verify failed on its own hash')
      latencies.push(performance.now() - t0)
    }
  }
  await Promise.all(Array.from({ length: inFlight }, lane))
  const elapsed = (performance.now() - start) / 1000
  latencies.sort((a, b) => a - b)
  return {
    inFlight,
    verifies: latencies.length,
    seconds: elapsed,
    perSecond: latencies.length / elapsed,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99)
  }
}

const request = JSON.parse(process.argv[2] ?? '') as Argon2Request
const password = randomBytes(12).toString('base64url')
const hash = await argon2.hash(password, {
  type: argon2.argon2id,
  memoryCost: request.memoryCost,
  timeCost: request.timeCost,
  parallelism: request.parallelism
})
// Warm the thread pool and the allocator before measuring.
await Promise.all(Array.from({ length: Math.max(...request.inFlight) }, () => argon2.verify(hash, password)))

const rates: Argon2Rate[] = []
for (const inFlight of request.inFlight) rates.push(await measure(hash, password, inFlight, request.seconds))
process.stdout.write(JSON.stringify(rates) + '\n')

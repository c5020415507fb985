import t from 'tap'
import { random } from '../src/random.js'

t.test('each size is served, from the pool or past it', async t => {
  for (const size of [0, 1, 16, 32, 4095, 4096, 4097, 10_000]) t.equal(random(size).length, size, `${size} bytes`)
})

t.test('no bytes are handed out twice, across refills of the pool', async t => {
  const seen = new Set<string>()
  // 1,000 draws of 32 bytes: about eight fillings of the 4 KiB pool.
  for (let i = 0; i < 1000; i++) seen.add(random(32).toString('hex'))
  t.equal(seen.size, 1000)
})

t.test('the bytes are spread evenly, not the wiped zeros of the pool', async t => {
  const counts = new Array<number>(256).fill(0)
  for (let i = 0; i < 4096; i++) for (const byte of random(16)) counts[byte]!++
  // 65,536 bytes: 256 of each value expected; chi-square with 255 degrees of freedom stays
  // below 350 unless something is badly wrong (p < 0.0001).
  const chi = counts.reduce((sum, n) => sum + (n - 256) ** 2 / 256, 0)
  t.ok(chi < 350, `chi-square ${chi.toFixed(1)}`)
})

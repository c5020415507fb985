import t from 'tap'
import { uuidv4 } from '../src/uuidv4.js'

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

t.test('each id is a version 4 UUID, and none repeats across batches', async t => {
  const seen = new Set<string>()
  // 1,000 ids: about eight batches of 128.
  for (let i = 0; i < 1000; i++) {
    const id = uuidv4()
    if (!UUID_V4.test(id)) t.fail(`not a version 4 UUID: ${id}`)
    seen.add(id)
  }
  t.equal(seen.size, 1000)
})

t.test('the random digits are spread evenly', async t => {
  const counts = new Map<string, number>()
  // 4,096 ids: 30 random hex digits each (the version digit and the top of the variant's are
  // not), 7,680 of each digit expected.
  for (let i = 0; i < 4096; i++) {
    const id = uuidv4().replaceAll('-', '')
    for (const [at, digit] of [...id].entries()) if (at !== 12 && at !== 16) counts.set(digit, (counts.get(digit) ?? 0) + 1)
  }
  t.equal(counts.size, 16)
  // chi-square with 15 degrees of freedom stays below 45 unless something is badly wrong (p < 0.0001).
  const chi = [...counts.values()].reduce((sum, n) => sum + (n - 7680) ** 2 / 7680, 0)
  t.ok(chi < 45, `chi-square ${chi.toFixed(1)}`)
})

import t from 'tap'
import { createLimiter } from '../../src/limiter.js'
import { build, createUser, eachDialect, form, PASSWORD } from '../helper.js'

t.test('the limiter runs at most N at once and refuses past its queue', async t => {
  const limiter = createLimiter(2, 3, () => new Error('full'))
  let running = 0
  let peak = 0
  const releases: Array<() => void> = []
  const task = () => limiter.run(async () => {
    running++
    peak = Math.max(peak, running)
    await new Promise<void>(resolve => releases.push(resolve))
    running--
    return 'done'
  })
  const accepted = Array.from({ length: 5 }, task)
  await t.rejects(task(), { message: 'full' })
  t.equal(limiter.queued, 3)
  for (let turn = 0; turn < 50 && (releases.length > 0 || limiter.queued > 0); turn++) {
    releases.shift()?.()
    await new Promise(resolve => setImmediate(resolve))
  }
  t.same(await Promise.all(accepted), ['done', 'done', 'done', 'done', 'done'])
  t.equal(peak, 2)
  t.equal(limiter.queued, 0)
  t.equal(await limiter.run(async () => 'again'), 'again', 'slots are all given back')
})

eachDialect(t, 'a login flood past the hashing queue gets 503 with Retry-After, not unbounded waits', async (t, dialect) => {
  const app = await build(t, dialect, { env: { ARGON2_MEMORY_KIB: '32768', ARGON2_ITERATIONS: '2', PASSWORD_HASH_CONCURRENCY: '1', PASSWORD_HASH_QUEUE: '2' } })
  await createUser(app)
  const responses = await Promise.all(Array.from({ length: 12 }, (_, i) => app.inject({
    method: 'POST', url: '/token', remoteAddress: `10.3.0.${i}`, ...form({ grant_type: 'password', username: 'ada@example.com', password: PASSWORD })
  })))
  const ok = responses.filter(r => r.statusCode === 200)
  const busy = responses.filter(r => r.statusCode === 503)
  t.equal(ok.length + busy.length, 12, `only 200s and 503s: ${responses.map(r => r.statusCode).join(',')}`)
  t.ok(ok.length >= 3, `${ok.length} logins went through`)
  t.ok(busy.length >= 1, `${busy.length} were turned away`)
  for (const res of busy) {
    t.equal(res.headers['retry-after'], '1')
    t.same(res.json(), { error: 'temporarily_unavailable', error_description: 'Too many logins are in progress; try again shortly' })
  }
})

import t from 'tap'
import { Registry, type Metric } from 'prom-client'
import { RequestDurations } from '../../plugins/metrics.js'

// The request histogram is counted by our own code and written out by prom-client's registry:
// its exposition must be what a prom-client Histogram with the same buckets would write.
t.test('buckets are cumulative, a value on a bound counts in it, and +Inf equals _count', async t => {
  const durations = new RequestDurations([0.0005, 0.001, 0.01])
  const registry = new Registry()
  registry.registerMetric(durations as unknown as Metric)
  for (const seconds of [0.0005, 0.0006, 0.001, 0.005, 20]) durations.observe('/users/me', 'GET', 200, seconds)
  durations.observe('/users/me', 'GET', 401, 0.0001)
  const text = await registry.metrics()
  const line = (suffix: string, labels: string) => new RegExp(`^http_request_duration_seconds_${suffix}\\{${labels}\\} (\\S+)$`, 'm').exec(text)?.[1]
  const ok = 'method="GET",route="/users/me",status_code="200"'
  t.equal(line('bucket', `le="0.0005",${ok}`), '1', 'exactly 0.5 ms is within le=0.0005')
  t.equal(line('bucket', `le="0.001",${ok}`), '3')
  t.equal(line('bucket', `le="0.01",${ok}`), '4')
  t.equal(line('bucket', `le="\\+Inf",${ok}`), '5')
  t.equal(line('count', ok), '5')
  t.equal(Number(line('sum', ok)), 0.0005 + 0.0006 + 0.001 + 0.005 + 20)
  t.equal(line('count', 'method="GET",route="/users/me",status_code="401"'), '1', 'each status its own series')
  t.match(text, /^# TYPE http_request_duration_seconds histogram$/m)
  durations.reset()
  t.notMatch(await registry.metrics(), /_count/, 'reset empties it')
})

import t from 'tap'
import { perTurn } from '../../src/store/turn-batch.js'

/** A `run` whose calls the test ends by hand, recording each batch it was given. */
function manualRun () {
  const batches: number[][] = []
  const pending: Array<{ resolve: (answers: string[]) => void, reject: (err: Error) => void, batch: number[] }> = []
  const run = async (batch: number[]) => {
    batches.push(batch)
    return await new Promise<string[]>((resolve, reject) => pending.push({ resolve, reject, batch }))
  }
  const finish = (index = 0) => {
    const [call] = pending.splice(index, 1)
    call!.resolve(call!.batch.map(n => `answer ${n}`))
  }
  return { run, batches, pending, finish }
}

const turn = () => new Promise(resolve => setImmediate(resolve))

t.test('calls made in one turn go to run together, answered each in its place', async t => {
  const { run, batches, finish } = manualRun()
  const call = perTurn(64, run)
  const answers = [call(1), call(2), call(3)]
  t.same(batches, [], 'nothing runs before the end of the turn')
  await turn()
  t.same(batches, [[1, 2, 3]])
  finish()
  t.same(await Promise.all(answers), ['answer 1', 'answer 2', 'answer 3'])
})

t.test('a turn with more than max calls is split into runs of at most max', async t => {
  const { run, batches, pending, finish } = manualRun()
  const call = perTurn(2, run)
  const answers = [1, 2, 3, 4, 5].map(call)
  await turn()
  t.same(batches, [[1, 2], [3, 4], [5]])
  while (pending.length > 0) finish()
  t.same(await Promise.all(answers), [1, 2, 3, 4, 5].map(n => `answer ${n}`))
})

t.test('with inFlight, calls beyond it wait for a run to end and then go together', async t => {
  const { run, batches, pending, finish } = manualRun()
  const call = perTurn(64, run, 2)
  const first = [call(1)]
  await turn()
  const second = [call(2)]
  await turn()
  t.equal(pending.length, 2, 'two runs at once')
  const waiting = [call(3), call(4)]
  await turn()
  const later = [call(5)]
  await turn()
  t.same(batches, [[1], [2]], 'the third run waits while two go on')
  finish(1)
  t.equal(await second[0], 'answer 2')
  await turn()
  t.same(batches, [[1], [2], [3, 4, 5]], 'every call that waited goes in one run')
  finish()
  finish()
  t.same(await Promise.all([...first, ...waiting, ...later]), ['answer 1', 'answer 3', 'answer 4', 'answer 5'])
  t.equal(pending.length, 0)
})

t.test('a failed run fails its own calls only, and later calls still run', async t => {
  const { run, batches, pending } = manualRun()
  const call = perTurn(64, run, 1)
  const failing = [call(1), call(2)]
  await turn()
  const waiting = call(3)
  await turn()
  pending.shift()!.reject(new Error('deadlock'))
  for (const answer of failing) await t.rejects(answer, { message: 'deadlock' })
  await turn()
  t.same(batches, [[1, 2], [3]])
  pending.shift()!.resolve(['answer 3'])
  t.equal(await waiting, 'answer 3')
})

interface Waiting<I, O> {
  item: I
  resolve: (answer: O) => void
  reject: (err: unknown) => void
}

/**
 * Calls that wait for the end of the event loop's turn (setImmediate runs once every socket that
 * was readable has been read) and go to `run` together: the requests that arrived in one turn
 * share one statement (and on MySQL one round trip and one pooled connection) instead of one
 * each. Each call is still made after its request arrived, so it sees what its own statement
 * would have seen. `run` takes at most `max` items and answers them in order; when it fails,
 * every call of that batch fails with its error.
 */
export function perTurn<I, O> (max: number, run: (batch: I[]) => Promise<O[]>): (item: I) => Promise<O> {
  let waiting: Array<Waiting<I, O>> = []
  function runWaiting () {
    const batch = waiting
    waiting = []
    for (let i = 0; i < batch.length; i += max) {
      const part = batch.slice(i, i + max)
      run(part.map(w => w.item)).then(
        answers => { for (let j = 0; j < part.length; j++) part[j]!.resolve(answers[j]!) },
        err => { for (const one of part) one.reject(err) })
    }
  }
  return function call (item: I): Promise<O> {
    return new Promise((resolve, reject) => {
      if (waiting.length === 0) setImmediate(runWaiting)
      waiting.push({ item, resolve, reject })
    })
  }
}

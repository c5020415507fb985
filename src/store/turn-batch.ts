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
 *
 * With `inFlight`, at most that many runs go on at once; calls that arrive meanwhile wait for
 * one to end and then go together, so under load the batches grow instead of the runs.
 */
export function perTurn<I, O> (max: number, run: (batch: I[]) => Promise<O[]>, inFlight = Infinity): (item: I) => Promise<O> {
  const waiting: Array<Waiting<I, O>> = []
  let running = 0
  let scheduled = false

  function start (part: Array<Waiting<I, O>>) {
    running++
    run(part.map(w => w.item)).then(
      answers => { for (let j = 0; j < part.length; j++) part[j]!.resolve(answers[j]!) },
      err => { for (const one of part) one.reject(err) })
      .finally(ended)
  }
  function ended () {
    running--
    if (!scheduled && waiting.length > 0) runWaiting()
  }
  function runWaiting () {
    scheduled = false
    while (waiting.length > 0 && running < inFlight) start(waiting.splice(0, max))
  }
  return function call (item: I): Promise<O> {
    return new Promise((resolve, reject) => {
      waiting.push({ item, resolve, reject })
      if (!scheduled && running < inFlight) {
        scheduled = true
        setImmediate(runWaiting)
      }
    })
  }
}

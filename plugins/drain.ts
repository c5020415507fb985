import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

/** The port closes once no connection or request has arrived for this long... */
const QUIET_MS = 500
/** ...or after this, however busy it stays: well within close-with-grace's 10 s. */
const MAX_DRAIN_MS = 5_000

/**
 * On close, the port stays open until it has been quiet for QUIET_MS, while Fastify answers
 * each new request 503 with `Connection: close` (return503OnClosing). Closing it at once resets
 * every connection still waiting in the kernel's accept queue — requests their clients sent
 * whole, which a busy process had not picked up yet — and every request just sent on an idle
 * keep-alive connection.
 */
async function drainPlugin (fastify: FastifyInstance) {
  const { server, log } = fastify

  fastify.addHook('preClose', async () => {
    if (!server.listening) return
    const started = performance.now()
    await new Promise<void>(resolve => {
      const activity = () => { quiet.refresh() }
      const done = () => {
        clearTimeout(quiet)
        clearTimeout(deadline)
        server.off('connection', activity)
        server.off('request', activity)
        resolve()
      }
      const quiet = setTimeout(done, QUIET_MS)
      const deadline = setTimeout(done, MAX_DRAIN_MS)
      server.on('connection', activity)
      server.on('request', activity)
    })
    log.info({ drainedMs: Math.round(performance.now() - started) }, 'closing the port')
  })
}

export default fp(drainPlugin, { name: 'drain' })

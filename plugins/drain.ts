import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { ServiceUnavailable } from '../src/errors.js'

/** The port closes once no connection or request has arrived for this long... */
const QUIET_MS = 500
/** ...or after this, however busy it stays: well within close-with-grace's 10 s. */
const MAX_DRAIN_MS = 5_000

/**
 * On close, the port stays open until it has been quiet for QUIET_MS, and each new request is
 * answered 503 (Fastify adds `Connection: close`). Closing it at once resets every connection
 * still waiting in the kernel's accept queue — requests their clients sent whole, which a busy
 * process had not picked up yet — and every request just sent on an idle keep-alive connection.
 * The 503 goes through the error handler, so it is a problem (or an RFC 6749 body) with a
 * request id and Retry-After; serverOptions turns Fastify's own bare one off.
 */
async function drainPlugin (fastify: FastifyInstance) {
  const { server, log } = fastify
  let closing = false

  fastify.addHook('onRequest', (request, reply, done) => {
    done(closing ? new ServiceUnavailable('The service is shutting down; try again') : undefined)
  })

  fastify.addHook('preClose', async () => {
    closing = true
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

export default fp(drainPlugin, { name: 'drain', dependencies: ['problems'] })

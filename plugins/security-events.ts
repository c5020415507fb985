import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { clientInfo } from '../src/accounts/client.js'
import { RECENT_EVENTS, type SecurityEventType } from '../src/accounts/events.js'
import type { SecurityEvent } from '../src/store/store.js'

declare module 'fastify' {
  interface FastifyInstance {
    securityEvents: SecurityEvents
  }
}

export interface SecurityEvents {
  /**
   * Records what happened to an account, with the address and user agent of the request that
   * did it (cut to their stored length). A failure to record is logged, never thrown: the
   * log of an event must not undo the event. Nothing is recorded for a deleted user.
   */
  record (userId: number, type: SecurityEventType, request?: FastifyRequest): Promise<void>
  /** The account's latest events, newest first. */
  recent (userId: number): Promise<SecurityEvent[]>
}

const DAY_MS = 86_400_000
const PRUNE_EVERY_MS = 10 * 60 * 1000
const PRUNE_BATCH = 5000

async function securityEventsPlugin (fastify: FastifyInstance) {
  const { store, log } = fastify
  const retentionMs = fastify.config.auditRetentionDays * DAY_MS

  fastify.decorate('securityEvents', {
    async record (userId, type, request) {
      try {
        await store.recordSecurityEvent(userId, { type, at: fastify.now(), ...clientInfo(request) })
      } catch (err) {
        (request?.log ?? log).error({ err, userId, type }, 'a security event could not be recorded')
      }
    },
    recent: (userId) => store.listSecurityEvents(userId, RECENT_EVENTS)
  } satisfies SecurityEvents)

  const prune = async () => {
    try {
      const pruned = await store.pruneSecurityEvents(fastify.now() - retentionMs, PRUNE_BATCH)
      if (pruned > 0) log.info({ pruned }, 'security events past their retention pruned')
    } catch (err) {
      log.warn({ err }, 'pruning security events failed; will try again')
    }
  }
  let timer: NodeJS.Timeout | undefined
  fastify.addHook('onReady', async () => {
    await prune()
    timer = setInterval(prune, PRUNE_EVERY_MS).unref()
  })
  fastify.addHook('onClose', async () => clearInterval(timer))
}

export default fp(securityEventsPlugin, { name: 'security-events', dependencies: ['config', 'store'] })

import fastifyRateLimit, { type FastifyRateLimitStore, type FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import fp from 'fastify-plugin'
import type { Redis } from 'ioredis'
import type { FastifyInstance } from 'fastify'
import { RateLimited } from '../src/errors.js'

/**
 * The general per-address limit, off unless RATE_LIMIT_PER_MINUTE is set: load tests and API
 * gateways send everything from one address, and the failed-login limits are what guard the
 * passwords. With REDIS_URL the count is shared by every instance.
 */
async function rateLimitPlugin (fastify: FastifyInstance) {
  const { rateLimitPerMinute, redisUrl } = fastify.config
  if (rateLimitPerMinute === 0) return

  let redis: Redis | undefined
  if (redisUrl !== undefined) {
    // Loaded only here: ioredis adds about 12 MiB to the process, and most instances never use it.
    const { Redis } = await import('ioredis')
    // No offline queue: while Redis is away the limit is skipped rather than every request waiting.
    redis = new Redis(redisUrl, { connectTimeout: 2000, maxRetriesPerRequest: 1, enableOfflineQueue: false, lazyConnect: true })
    redis.on('error', err => fastify.log.warn({ err }, 'redis error'))
    await redis.connect()
    fastify.addHook('onClose', async () => { await redis!.quit() })
  }

  await fastify.register(fastifyRateLimit, {
    global: true,
    max: rateLimitPerMinute,
    timeWindow: 60_000,
    nameSpace: 'auth-service-rate-limit:',
    skipOnError: true,
    ...(redis === undefined ? { store: clockedStore(fastify.now) } : { redis }),
    errorResponseBuilder: (_request, context) => new RateLimited(context.after)
  })
}

/**
 * The in-memory counter, on the app's clock (the plugin's own store reads the wall clock):
 * a fixed window per address, the oldest addresses forgotten past `size`. With Redis the
 * window is Redis's key expiry instead.
 */
function clockedStore (now: () => number, size = 5000): FastifyRateLimitStoreCtor {
  return class ClockedStore implements FastifyRateLimitStore {
    private readonly windows = new Map<string, { count: number, start: number }>()

    incr (key: string, callback: Parameters<FastifyRateLimitStore['incr']>[1], timeWindow: number) {
      const at = now()
      let window = this.windows.get(key)
      if (window === undefined || at >= window.start + timeWindow || at < window.start) {
        this.windows.delete(key)
        if (this.windows.size >= size) this.windows.delete(this.windows.keys().next().value!)
        window = { count: 0, start: at }
        this.windows.set(key, window)
      }
      window.count++
      callback(null, { current: window.count, ttl: window.start + timeWindow - at })
    }

    child () {
      return new ClockedStore()
    }
  }
}

export default fp(rateLimitPlugin, { name: 'rate-limit', dependencies: ['config'] })

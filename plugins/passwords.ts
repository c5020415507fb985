import { randomBytes } from 'node:crypto'
import { availableParallelism } from 'node:os'
import argon2 from 'argon2'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { loadCommonPasswords } from '../src/common-passwords.js'
import { ServiceUnavailable } from '../src/errors.js'
import { createLimiter } from '../src/limiter.js'
import { lowerPriorityOfThreadsRunning, POOL_NICENESS } from '../src/thread-priority.js'

declare module 'fastify' {
  interface FastifyInstance {
    passwords: Passwords
  }
}

export interface Passwords {
  /** An argon2id hash of the NFC-normalised password at the configured cost. */
  hash (password: string): Promise<string>
  /**
   * Checks a password against a stored hash. With no hash (unknown account) it verifies
   * against a dummy one, so an unknown email costs the same time as a wrong password.
   */
  verify (hash: string | undefined, password: string): Promise<{ valid: boolean, needsRehash: boolean }>
  /** True for a password on a list of the most common breached passwords (NIST SP 800-63B §3.1.1.2). */
  isCommon (password: string): boolean
}

/** zxcvbn's offline list of common passwords; only those the length policy would let through. */
const COMMON_PASSWORDS = loadCommonPasswords()

/** @see https://cheatsheetseries.owasp.org/cheatsheets/Password_Storage_Cheat_Sheet.html#argon2id */
const OWASP_MIN = { memoryCost: 19_456, timeCost: 2 }
const WARM_UP: argon2.HashOptions = { type: argon2.argon2id, memoryCost: 1024, timeCost: 50, parallelism: 1 }

async function passwordsPlugin (fastify: FastifyInstance) {
  const cost = fastify.config.argon2
  const options: argon2.HashOptions = { type: argon2.argon2id, ...cost }
  if (fastify.config.env === 'production' && (cost.memoryCost < OWASP_MIN.memoryCost || cost.timeCost < OWASP_MIN.timeCost)) {
    fastify.log.warn({ argon2: cost, minimum: OWASP_MIN }, 'argon2 cost is below the OWASP minimum (ARGON2_MEMORY_KIB=19456, ARGON2_ITERATIONS=2)')
  }
  const dummyHash = await argon2.hash(randomBytes(32), options)
  // One hash per pool thread starts the whole pool and shows which threads it is: long enough
  // to register in /proc (~50 ms), small in memory (1 MiB each) so the warm-up leaves no trace.
  const { threadPoolSize } = fastify.config.hashing
  const lowered = await lowerPriorityOfThreadsRunning(() => Promise.all(
    Array.from({ length: threadPoolSize }, () => argon2.hash(randomBytes(32), WARM_UP))), threadPoolSize)
  fastify.log.debug({ threads: lowered, niceness: POOL_NICENESS }, 'password hashing threads run below the event loop')

  // argon2 runs on libuv's thread pool (UV_THREADPOOL_SIZE, 4 by default); more hashes in flight
  // than cores only queue there, unseen and unbounded. Here the queue is ours and bounded.
  const { concurrency = availableParallelism(), queue } = fastify.config.hashing
  const limiter = createLimiter(concurrency, queue, () => Object.assign(
    new ServiceUnavailable('Too many logins are in progress; try again shortly'), { retryAfter: 1 }))

  fastify.metrics.watchHashing(limiter)
  const { passwordHashSeconds } = fastify.metrics
  const tracer = fastify.tracing?.tracer
  /** Timed for auth_password_hash_seconds, and a span when tracing: the hash alone, not its wait for a slot. */
  async function timed<T> (name: 'argon2.hash' | 'argon2.verify', task: () => Promise<T>): Promise<T> {
    const end = passwordHashSeconds.startTimer()
    const span = tracer?.startSpan(name)
    try {
      return await task()
    } finally {
      end()
      span?.end()
    }
  }

  fastify.decorate('passwords', {
    hash: (password: string) => limiter.run(() => timed('argon2.hash', () => argon2.hash(password.normalize('NFC'), options))),
    async verify (hash: string | undefined, password: string) {
      const valid = await limiter.run(() => timed('argon2.verify', () => argon2.verify(hash ?? dummyHash, password.normalize('NFC'))))
      return { valid: valid && hash !== undefined, needsRehash: valid && hash !== undefined && argon2.needsRehash(hash, cost) }
    },
    isCommon: (password: string) => COMMON_PASSWORDS.has(password.normalize('NFC').toLowerCase())
  })
}

export default fp(passwordsPlugin, { name: 'passwords', dependencies: ['config', 'metrics', 'tracing'] })

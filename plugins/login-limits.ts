import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { TooManyAttempts } from '../src/errors.js'
import type { LoginFailures } from '../src/store/store.js'

declare module 'fastify' {
  interface FastifyInstance {
    loginLimits: LoginLimits
  }
}

export interface FailuresSeen {
  accountFailures: number
  addressFailures: number
}

export interface LoginLimits {
  /**
   * Before a password is checked: waits longer as failures pile up (the soft limit), and past
   * the hard limit refuses with 429 — the right password included, so the answer tells a
   * guesser nothing. Counted in the database, so every instance on it enforces one limit.
   */
  check (email: string, address: string): Promise<FailuresSeen>
  /** With what `check` saw, a failure that reaches a limit is counted as a lockout. */
  failed (email: string, address: string, seen?: FailuresSeen): Promise<void>
  /** Forgets the account's failures (only a write when there were any). */
  succeeded (email: string, accountFailures: number): Promise<void>
  /**
   * For requests that are not logins but must not be hammered from one address (password
   * resets): 429 once the address is past its failed-login limit. The caller records the
   * attempt against `addressSubject(address)`.
   */
  checkAddress (address: string): Promise<void>
  addressSubject (address: string): Buffer
  /** Forgets the account's failures, whatever their number (a password reset unlocks it). */
  clear (email: string): Promise<void>
}

const MAX_DELAY_MS = 4000
const BASE_DELAY_MS = 250
const PRUNE_EVERY_MS = 60_000
const PRUNE_BATCH = 5000

function subject (kind: 'account' | 'address', value: string): Buffer {
  return createHash('sha256').update(`${kind}:${value}`).digest()
}

/** What an account's failed logins are counted under (the admin CLI reads them too). */
export function accountSubject (email: string): Buffer {
  return subject('account', email)
}

/** Doubles from 250 ms once half the limit is used, capped at 4 s: slows guessing, locks nobody out. */
export function softDelay (failures: number, limit: number): number {
  const soft = Math.ceil(limit / 2)
  if (failures < soft) return 0
  return Math.min(BASE_DELAY_MS * 2 ** (failures - soft), MAX_DELAY_MS)
}

async function loginLimitsPlugin (fastify: FastifyInstance) {
  const { store, log } = fastify
  const { lockouts } = fastify.metrics
  const { perAccount, perAddress, window } = fastify.config.loginLimit
  const windowMs = window * 1000

  function refuseOver (limited: Array<{ failures: LoginFailures, limit: number }>, now: number, context: object, message: string) {
    const over = limited.filter(({ failures, limit }) => failures.count >= limit)
    if (over.length === 0) return
    const retryAfter = Math.max(...over.map(({ failures }) => Math.ceil((failures.oldest + windowMs - now) / 1000)), 1)
    log.info({ ...context, retryAfter }, message)
    throw Object.assign(new TooManyAttempts(retryAfter), { retryAfter })
  }

  const limits: LoginLimits = {
    async check (email, address) {
      const now = fastify.now()
      const [account, client] = await store.countLoginFailures([subject('account', email), subject('address', address)], now - windowMs)
      refuseOver([{ failures: account!, limit: perAccount }, { failures: client!, limit: perAddress }], now, { username: email, address }, 'login refused: too many failed attempts')
      const delay = Math.max(softDelay(account!.count, perAccount), softDelay(client!.count, perAddress))
      if (delay > 0) await sleep(delay)
      return { accountFailures: account!.count, addressFailures: client!.count }
    },

    async failed (email, address, seen) {
      await store.recordLoginFailure([subject('account', email), subject('address', address)], fastify.now())
      if (seen?.accountFailures === perAccount - 1) lockouts.inc({ scope: 'account' })
      if (seen?.addressFailures === perAddress - 1) lockouts.inc({ scope: 'address' })
    },

    async succeeded (email, accountFailures) {
      if (accountFailures > 0) await store.clearLoginFailures(subject('account', email))
    },

    async checkAddress (address) {
      const now = fastify.now()
      const [client] = await store.countLoginFailures([subject('address', address)], now - windowMs)
      refuseOver([{ failures: client!, limit: perAddress }], now, { address }, 'request refused: too many failed attempts from this address')
    },

    addressSubject: address => subject('address', address),

    async clear (email) {
      await store.clearLoginFailures(subject('account', email))
    }
  }
  fastify.decorate('loginLimits', limits)

  const prune = async () => {
    try {
      await store.pruneLoginFailures(fastify.now() - windowMs, PRUNE_BATCH)
    } catch (err) {
      log.warn({ err }, 'pruning login failures failed; will try again')
    }
  }
  const timer = setInterval(prune, PRUNE_EVERY_MS).unref()
  fastify.addHook('onClose', async () => clearInterval(timer))
}

export default fp(loginLimitsPlugin, { name: 'login-limits', dependencies: ['config', 'store', 'metrics'] })

import { createHash, randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { InvalidGrant } from '../src/errors.js'
import type { UserRecord } from '../src/store/store.js'

declare module 'fastify' {
  interface FastifyInstance {
    sessions: Sessions
  }
}

export interface IssuedTokens {
  accessToken: string
  expiresIn: number
  refreshToken: string
}

export interface Sessions {
  /** A new session (a new refresh-token family) for a user who just logged in. */
  start (user: UserRecord): Promise<IssuedTokens>
  /** Rotates a refresh token (RFC 6749 §6); reuse of a retired one revokes its family. */
  refresh (refreshToken: string): Promise<IssuedTokens>
  /** RFC 7009: revokes the refresh token's family; anything else is silently ignored. */
  revoke (token: string): Promise<void>
  /** Logout everywhere: every refresh token and every access token issued until now. */
  end (userId: number): Promise<void>
}

const REFRESH_TOKEN_BYTES = 32
const PRUNE_EVERY_MS = 10 * 60 * 1000
const PRUNE_BATCH = 1000
const INVALID_REFRESH_TOKEN = 'The refresh token is invalid, expired or revoked'

function hashToken (token: string): Buffer {
  return createHash('sha256').update(token).digest()
}

async function sessionsPlugin (fastify: FastifyInstance) {
  const { store, accessTokens, log } = fastify
  const ttlMs = fastify.config.jwt.refreshTokenTtl * 1000

  function newRefreshToken (now: number) {
    const token = randomBytes(REFRESH_TOKEN_BYTES).toString('base64url')
    return { token, row: { hash: hashToken(token), createdAt: now, expiresAt: now + ttlMs } }
  }

  function issue (userId: number, tokensNotBefore: number, refreshToken: string): IssuedTokens {
    const { token, expiresIn } = accessTokens.issue(userId, tokensNotBefore)
    return { accessToken: token, expiresIn, refreshToken }
  }

  const sessions: Sessions = {
    async start (user) {
      const { token, row } = newRefreshToken(fastify.now())
      await store.createRefreshToken({ ...row, userId: user.id, familyId: randomBytes(16) })
      return issue(user.id, user.tokensNotBefore, token)
    },

    async refresh (refreshToken) {
      const now = fastify.now()
      const { token, row } = newRefreshToken(now)
      const rotation = await store.rotateRefreshToken(hashToken(refreshToken), row, now)
      fastify.metrics.refreshes.inc({ outcome: rotation.outcome })
      if (rotation.outcome === 'reused') {
        log.warn({ userId: rotation.userId }, 'a retired refresh token was presented again: its family is revoked')
      }
      if (rotation.outcome !== 'rotated') throw new InvalidGrant(INVALID_REFRESH_TOKEN)
      return issue(rotation.userId, rotation.tokensNotBefore, token)
    },

    async revoke (token) {
      await store.revokeRefreshTokenFamily(hashToken(token), fastify.now())
    },

    async end (userId) {
      const now = fastify.now()
      // +1 ms: a token issued in the same millisecond as the logout is refused too.
      await store.endSessions(userId, now + 1, now)
    }
  }
  fastify.decorate('sessions', sessions)

  const prune = async () => {
    try {
      const pruned = await store.pruneRefreshTokens(fastify.now(), PRUNE_BATCH)
      if (pruned > 0) log.info({ pruned }, 'expired refresh tokens pruned')
    } catch (err) {
      log.warn({ err }, 'pruning refresh tokens failed; will try again')
    }
  }
  const timer = setInterval(prune, PRUNE_EVERY_MS).unref()
  fastify.addHook('onReady', prune)
  fastify.addHook('onClose', async () => clearInterval(timer))
}

export default fp(sessionsPlugin, { name: 'sessions', dependencies: ['config', 'store', 'jwt', 'metrics'] })

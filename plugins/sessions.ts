import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { clientInfo } from '../src/accounts/client.js'
import { hashToken } from '../src/accounts/email-tokens.js'
import { decodeRefreshToken, encodeRefreshToken, isIssued, legacyHash, newRefreshKey, newSecret, type RefreshToken } from '../src/accounts/refresh-token.js'
import { decodeSessionId, encodeSessionId, newSessionId } from '../src/accounts/session-id.js'
import { InvalidGrant } from '../src/errors.js'
import type { TokenResponse } from '../src/schemas/tokens.js'
import type { FirstRefreshToken, LegacyRotation, NewSession, RefreshChain, SessionRecord, UserRecord } from '../src/store/store.js'

declare module 'fastify' {
  interface FastifyInstance {
    sessions: Sessions
  }
}

export interface IssuedTokens {
  accessToken: string
  expiresIn: number
  refreshToken: string
  /** The session the tokens belong to (the access token's `sid`). */
  sessionId: string
}

/** A token pair as RFC 6749 §5.1 answers it, never cached (the POST /token success). */
export function tokenResponse (reply: FastifyReply, tokens: IssuedTokens): TokenResponse {
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
  return {
    access_token: tokens.accessToken,
    token_type: 'Bearer',
    expires_in: tokens.expiresIn,
    refresh_token: tokens.refreshToken
  }
}

/** A new session, ready to be stored, and the tokens it will answer with once it is. */
export interface PreparedSession {
  session: NewSession
  token: FirstRefreshToken
  tokens: IssuedTokens
}

export interface Sessions {
  /** A new session (a new refresh-token family) for a user who just logged in from `request`. */
  start (user: UserRecord, request?: FastifyRequest): Promise<IssuedTokens>
  /** A session and its tokens not stored yet, for a store operation that starts one itself. */
  prepare (user: UserRecord, request?: FastifyRequest): PreparedSession
  /** Rotates a refresh token (RFC 6749 §6); reuse of a retired one revokes its family. */
  refresh (refreshToken: string, request?: FastifyRequest): Promise<IssuedTokens>
  /** RFC 7009: revokes the refresh token's family; anything else is silently ignored. */
  revoke (token: string): Promise<void>
  /** Logout everywhere: every refresh token and every access token issued until now. */
  end (userId: number): Promise<void>
  /** The user's live sessions, newest first. */
  list (userId: number): Promise<SessionRecord[]>
  /** Ends one session of the user; false for an id that is not a live session of theirs. */
  endOne (userId: number, sessionId: string): Promise<boolean>
}

const PRUNE_EVERY_MS = 10 * 60 * 1000
const PRUNE_BATCH = 1000
const INVALID_REFRESH_TOKEN = 'The refresh token is invalid, expired or revoked'
/** The login's answer when the account was deleted while it was checked. */
const WRONG_CREDENTIALS = 'The username or password is incorrect'

/** Whether the session issued `token`: its current token, or an older one (its tag says so). */
function issuedBy (chain: RefreshChain, token: RefreshToken): boolean {
  if (token.generation === chain.generation) return hashToken(token.secret).equals(chain.hash)
  return token.generation < chain.generation && isIssued(token, chain.key)
}

async function sessionsPlugin (fastify: FastifyInstance) {
  const { store, accessTokens, log } = fastify
  const ttlMs = fastify.config.jwt.refreshTokenTtl * 1000

  function issue (userId: number, sessionId: string, tokensNotBefore: number, refreshToken: string): IssuedTokens {
    const { token, expiresIn } = accessTokens.issue(userId, sessionId, tokensNotBefore)
    return { accessToken: token, expiresIn, refreshToken, sessionId }
  }

  /**
   * The store's rotation of a presented token, with reuse decided: a token the session issued
   * before its current one ends the session. A token of the format before migration 0008 (its
   * session's last) rotates once into the session's chain.
   */
  async function rotate (refreshToken: string, nextHash: Buffer, now: number): Promise<LegacyRotation> {
    const expiresAt = now + ttlMs
    const presented = decodeRefreshToken(refreshToken)
    if (presented === undefined) {
      const hash = legacyHash(refreshToken)
      if (hash === undefined) return { outcome: 'invalid' }
      return store.rotateLegacyRefreshToken(hash, { hash: nextHash, key: newRefreshKey(), expiresAt }, now)
    }
    const { sessionId, generation } = presented
    const rotation = await store.rotateRefreshToken({ sessionId, generation, hash: hashToken(presented.secret), nextHash, expiresAt, now })
    if (rotation.outcome !== 'stale') return rotation
    if (!issuedBy(rotation, presented)) return { outcome: 'invalid' }
    await store.endRefreshFamily(sessionId, now)
    return { outcome: 'reused', userId: rotation.userId }
  }

  const sessions: Sessions = {
    prepare (user, request) {
      const now = fastify.now()
      const { secret, hash } = newSecret()
      const key = newRefreshKey()
      const id = newSessionId()
      return {
        session: { id, userId: user.id, createdAt: now, expiresAt: now + ttlMs, ...clientInfo(request) },
        token: { hash, key },
        tokens: issue(user.id, encodeSessionId(id), user.tokensNotBefore, encodeRefreshToken(id, 0, secret, key))
      }
    },

    async start (user, request) {
      const { session, token, tokens } = sessions.prepare(user, request)
      if (!await store.createSession(session, token)) throw new InvalidGrant(WRONG_CREDENTIALS)
      return tokens
    },

    async refresh (refreshToken, request) {
      const now = fastify.now()
      const next = newSecret()
      const rotation = await rotate(refreshToken, next.hash, now)
      fastify.metrics.refreshes.inc({ outcome: rotation.outcome })
      if (rotation.outcome === 'reused') {
        log.warn({ userId: rotation.userId }, 'a retired refresh token was presented again: its session is ended')
        await fastify.securityEvents.record(rotation.userId, 'refresh_reused', request)
      }
      if (rotation.outcome !== 'rotated') throw new InvalidGrant(INVALID_REFRESH_TOKEN)
      const { userId, sessionId, generation, key, tokensNotBefore } = rotation
      return issue(userId, encodeSessionId(sessionId), tokensNotBefore, encodeRefreshToken(sessionId, generation, next.secret, key))
    },

    async revoke (token) {
      const now = fastify.now()
      const presented = decodeRefreshToken(token)
      if (presented !== undefined) {
        const chain = await store.findRefreshChain(presented.sessionId)
        if (chain !== undefined && issuedBy(chain, presented)) await store.endRefreshFamily(presented.sessionId, now)
        return
      }
      const hash = legacyHash(token)
      if (hash !== undefined) await store.revokeRefreshTokenFamily(hash, now)
    },

    async end (userId) {
      const now = fastify.now()
      // +1 ms: a token issued in the same millisecond as the logout is refused too.
      await store.endSessions(userId, now + 1, now)
    },

    list: (userId) => store.listSessions(userId, fastify.now()),

    async endOne (userId, sessionId) {
      const id = decodeSessionId(sessionId)
      return id !== undefined && await store.endSession(userId, id, fastify.now())
    }
  }
  fastify.decorate('sessions', sessions)

  const prune = async () => {
    try {
      const now = fastify.now()
      const pruned = await store.pruneRefreshTokens(now, PRUNE_BATCH)
      const sessionsPruned = await store.pruneSessions(now, PRUNE_BATCH)
      if (pruned > 0 || sessionsPruned > 0) log.info({ pruned, sessionsPruned }, 'expired refresh tokens and sessions pruned')
    } catch (err) {
      log.warn({ err }, 'pruning refresh tokens failed; will try again')
    }
  }
  const timer = setInterval(prune, PRUNE_EVERY_MS).unref()
  fastify.addHook('onReady', prune)
  fastify.addHook('onClose', async () => clearInterval(timer))
}

export default fp(sessionsPlugin, { name: 'sessions', dependencies: ['config', 'store', 'jwt', 'security-events', 'metrics'] })

import { createHash, randomBytes } from 'node:crypto'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { clientInfo } from '../src/accounts/client.js'
import { decodeSessionId, encodeSessionId, newSessionId } from '../src/accounts/session-id.js'
import { InvalidGrant } from '../src/errors.js'
import type { TokenResponse } from '../src/schemas/tokens.js'
import type { FirstRefreshToken, NewSession, SessionRecord, UserRecord } from '../src/store/store.js'

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

const REFRESH_TOKEN_BYTES = 32
const PRUNE_EVERY_MS = 10 * 60 * 1000
const PRUNE_BATCH = 1000
const INVALID_REFRESH_TOKEN = 'The refresh token is invalid, expired or revoked'
/** The login's answer when the account was deleted while it was checked. */
const WRONG_CREDENTIALS = 'The username or password is incorrect'

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

  function issue (userId: number, sessionId: string, tokensNotBefore: number, refreshToken: string): IssuedTokens {
    const { token, expiresIn } = accessTokens.issue(userId, sessionId, tokensNotBefore)
    return { accessToken: token, expiresIn, refreshToken, sessionId }
  }

  const sessions: Sessions = {
    prepare (user, request) {
      const now = fastify.now()
      const { token, row } = newRefreshToken(now)
      const id = newSessionId()
      return {
        session: { id, userId: user.id, createdAt: now, expiresAt: row.expiresAt, ...clientInfo(request) },
        token: row,
        tokens: issue(user.id, encodeSessionId(id), user.tokensNotBefore, token)
      }
    },

    async start (user, request) {
      const { session, token, tokens } = sessions.prepare(user, request)
      if (!await store.createSession(session, token)) throw new InvalidGrant(WRONG_CREDENTIALS)
      return tokens
    },

    async refresh (refreshToken, request) {
      const now = fastify.now()
      const { token, row } = newRefreshToken(now)
      const rotation = await store.rotateRefreshToken(hashToken(refreshToken), row, now)
      fastify.metrics.refreshes.inc({ outcome: rotation.outcome })
      if (rotation.outcome === 'reused') {
        log.warn({ userId: rotation.userId }, 'a retired refresh token was presented again: its family is revoked')
        await fastify.securityEvents.record(rotation.userId, 'refresh_reused', request)
      }
      if (rotation.outcome !== 'rotated') throw new InvalidGrant(INVALID_REFRESH_TOKEN)
      return issue(rotation.userId, encodeSessionId(rotation.sessionId), rotation.tokensNotBefore, token)
    },

    async revoke (token) {
      await store.revokeRefreshTokenFamily(hashToken(token), fastify.now())
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

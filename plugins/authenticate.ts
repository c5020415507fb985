import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { InvalidToken, MissingToken, RepeatedAuthorization } from '../src/errors.js'
import type { AccessTokenClaims } from '../src/schemas/tokens.js'
import { decodeSessionId } from '../src/accounts/session-id.js'
import type { UserRecord } from '../src/store/store.js'
import { uuidv7Time } from '../src/uuidv7.js'

declare module 'fastify' {
  interface FastifyRequest {
    /** The `sid` of the access token that authenticated the request; '' when none did. */
    sessionId: string
  }
  interface FastifyInstance {
    /** Strict: a route behind it answers 401 without a valid token. */
    authenticate (request: FastifyRequest): Promise<void>
    /** Soft: leaves `request.user` null instead of failing. */
    authenticateOptional (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void
  }
}

const TOKEN_MESSAGES: Record<string, string> = {
  FAST_JWT_EXPIRED: 'The access token expired',
  FAST_JWT_INACTIVE: 'The access token is not valid yet'
}

async function authenticatePlugin (fastify: FastifyInstance) {
  const { store } = fastify

  /** @see https://www.rfc-editor.org/rfc/rfc6750#section-2.1 */
  function bearerToken (request: FastifyRequest): string {
    const header = request.headers.authorization
    if (header === undefined) throw new MissingToken()
    if (isRepeated(request.raw.rawHeaders)) throw new RepeatedAuthorization()
    const space = header.indexOf(' ')
    const scheme = space === -1 ? header : header.slice(0, space)
    if (scheme.toLowerCase() !== 'bearer') throw new MissingToken()
    const token = space === -1 ? '' : header.slice(space + 1).trim()
    if (token === '') throw new InvalidToken('The access token is empty')
    return token
  }

  /**
   * What authentication needs from a token's claims, worked out once per token: the verify
   * cache hands back the same claims object for the same token, so a token used a thousand
   * times is parsed once. Null: the claims cannot name one of our users and sessions.
   */
  fastify.decorateRequest('sessionId', '')

  const subjects = new WeakMap<AccessTokenClaims, TokenSubject | null>()
  function subjectOf (claims: AccessTokenClaims): TokenSubject | null {
    let subject = subjects.get(claims)
    if (subject === undefined) {
      subject = tokenSubject(claims)
      subjects.set(claims, subject)
    }
    return subject
  }

  async function currentUser (request: FastifyRequest): Promise<UserRecord> {
    const token = bearerToken(request)
    let claims: AccessTokenClaims
    try {
      claims = fastify.accessTokens.verify(token)
    } catch (err) {
      throw new InvalidToken(TOKEN_MESSAGES[(err as { code?: string }).code ?? ''] ?? 'The access token is invalid')
    }
    const subject = subjectOf(claims)
    // One query reads the user and the token's session together.
    const found = subject === null ? undefined : await store.findAuthentication(subject.userId, subject.sessionId)
    if (found === undefined) throw new InvalidToken('The access token is no longer valid')
    if (!found.sessionLive || subject!.issuedAt < found.user.tokensNotBefore) {
      throw new InvalidToken('The session has ended')
    }
    // Beside the user, not spread into a copy of it: a copy cost `me` several µs a request.
    request.sessionId = claims.sid
    return found.user
  }

  fastify.decorate('authenticate', async function authenticate (request: FastifyRequest) {
    request.user = await currentUser(request)
  })

  async function userIfAny (request: FastifyRequest) {
    try {
      request.user = await currentUser(request)
    } catch (err) {
      const status = (err as { statusCode?: number }).statusCode
      if (status !== 400 && status !== 401) throw err
      request.log.debug({ reason: (err as Error).message }, 'request is not authenticated')
    }
  }

  // A callback hook, not an async one, so that the common anonymous request makes no promise
  // and waits for no microtask: without a token there is nothing to wait for.
  fastify.decorate('authenticateOptional', function authenticateOptional (request: FastifyRequest, _reply: FastifyReply, done: HookHandlerDoneFunction) {
    if (request.headers.authorization === undefined) {
      done()
      return
    }
    userIfAny(request).then(() => { done() }, done)
  })
}

interface TokenSubject {
  userId: number
  sessionId: Buffer
  /** When the token was issued, in ms: the jti's UUIDv7 timestamp, or `iat` for another jti. */
  issuedAt: number
}

function tokenSubject (claims: AccessTokenClaims): TokenSubject | null {
  const userId = /^[1-9]\d{0,15}$/.test(claims.sub) ? Number(claims.sub) : 0
  const sessionId = decodeSessionId(claims.sid)
  if (userId === 0 || sessionId === undefined) return null
  // The jti's UUIDv7 timestamp says when the token was issued to the millisecond.
  const issuedAt = uuidv7Time(claims.jti)
  return { userId, sessionId, issuedAt: Number.isNaN(issuedAt) ? claims.iat * 1000 : issuedAt }
}

function isRepeated (rawHeaders: string[]): boolean {
  let seen = 0
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.length === 13 && rawHeaders[i]!.toLowerCase() === 'authorization' && ++seen > 1) return true
  }
  return false
}

export default fp(authenticatePlugin, { name: 'authenticate', dependencies: ['config', 'store', 'jwt'] })

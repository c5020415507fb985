import { createHash } from 'node:crypto'
import fastifyJwt from '@fastify/jwt'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { AccessTokenClaims } from '../src/schemas/tokens.js'
import type { UserRecord } from '../src/store/store.js'
import { uuidv7 } from '../src/uuidv7.js'

declare module '@fastify/jwt' {
  interface FastifyJWT {
    payload: AccessTokenClaims
    /** Set by the authentication hook once the token's user is loaded; null when logged out. */
    user: UserRecord | null
  }
}

declare module 'fastify' {
  interface FastifyInstance {
    accessTokens: {
      /** Signs an access token issued no earlier than `notBefore` (epoch ms), the user's last logout. */
      issue (userId: number, notBefore?: number): { token: string, expiresIn: number }
    }
  }
}

const VERIFY_CACHE_SIZE = 2000

/** RFC 9068 §2.1: access tokens say what they are, so an ID token cannot pass for one. */
export const ACCESS_TOKEN_TYPE = 'at+jwt'

async function jwtPlugin (fastify: FastifyInstance) {
  const { algorithm, secret, issuer, audience, clockSkew, accessTokenTtl } = fastify.config.jwt
  const kid = createHash('sha256').update(secret).digest('base64url').slice(0, 16)

  // fast-jwt's signer takes `typ`, which @fastify/jwt's types do not list.
  const sign = { algorithm, kid, typ: ACCESS_TOKEN_TYPE }
  await fastify.register(fastifyJwt, {
    secret,
    sign,
    verify: {
      // Pinned: the algorithm a token names is never trusted (RFC 8725 §3.1).
      algorithms: [algorithm],
      allowedIss: issuer,
      allowedAud: audience,
      requiredClaims: ['iss', 'aud', 'sub', 'exp', 'iat', 'jti'],
      checkTyp: ACCESS_TOKEN_TYPE,
      clockTolerance: clockSkew * 1000,
      // Verified tokens (and refused ones, but for "not valid yet") are remembered for a minute
      // at most and never past their exp: the signature is not checked again for every request.
      // Logout and deleted users still take effect at once: the user row is read every time.
      cache: VERIFY_CACHE_SIZE,
      cacheTTL: 60_000,
      errorCacheTTL: (err: { code?: string }) => err.code === 'FAST_JWT_INACTIVE' ? -1 : 60_000
    }
  })

  fastify.decorate('accessTokens', {
    issue (userId: number, notBefore = 0) {
      const now = Math.max(fastify.now(), notBefore)
      const iat = Math.floor(now / 1000)
      const claims: AccessTokenClaims = {
        iss: issuer,
        aud: audience,
        sub: String(userId),
        iat,
        exp: iat + accessTokenTtl,
        jti: uuidv7(now)
      }
      return { token: fastify.jwt.sign(claims), expiresIn: accessTokenTtl }
    }
  })
}

export default fp(jwtPlugin, { name: 'jwt', dependencies: ['config'] })

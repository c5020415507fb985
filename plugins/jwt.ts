import { createHash, createPrivateKey, createPublicKey } from 'node:crypto'
import fastifyJwt from '@fastify/jwt'
import { createVerifier, TokenError, type VerifierOptions } from 'fast-jwt'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../src/config.js'
import type { AccessTokenClaims } from '../src/schemas/tokens.js'
import { algorithmOf, publicJwk, type PublicJwk } from '../src/signing-keys.js'
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
      /**
       * The claims of a valid access token; throws fast-jwt's TokenError otherwise. The key is
       * chosen by the token's `kid` among the configured ones, and its algorithm by the key.
       */
      verify (token: string): AccessTokenClaims
      /** The public keys that verify access tokens (RFC 7517); null with HS256. */
      jwks: { keys: PublicJwk[] } | null
    }
  }
}

/**
 * Verified tokens (and refused ones, but for "not valid yet") are remembered for a minute at
 * most and never past their exp, so a signature is not checked again on every request. Logout
 * and deleted users still take effect at once: the user row is read every time.
 */
const VERIFY_CACHE = {
  cache: 2000,
  cacheTTL: 60_000,
  errorCacheTTL: (err: { code?: string }) => err.code === 'FAST_JWT_INACTIVE' ? -1 : 60_000
}

/** RFC 9068 §2.1: access tokens say what they are, so an ID token cannot pass for one. */
export const ACCESS_TOKEN_TYPE = 'at+jwt'

interface VerificationKey {
  kid: string
  algorithm: Config['jwt']['algorithm']
  /** The HS256 secret, or a PEM public key. */
  key: string
  jwk?: PublicJwk
}

/** The current key first, then the retired ones still accepted. */
function verificationKeys (jwt: Config['jwt']): VerificationKey[] {
  if (jwt.algorithm === 'HS256') {
    return [{ kid: createHash('sha256').update(jwt.secret).digest('base64url').slice(0, 16), algorithm: 'HS256', key: jwt.secret }]
  }
  const current = createPrivateKey(jwt.privateKey)
  const keys = [current, ...jwt.previousPublicKeys.map(pem => createPublicKey(pem))].map(key => {
    const algorithm = key === current ? jwt.algorithm : algorithmOf(key)!
    const jwk = publicJwk(key, algorithm)
    const pem = (key.type === 'private' ? createPublicKey(key) : key).export({ type: 'spki', format: 'pem' }).toString()
    return { kid: jwk.kid, algorithm, key: pem, jwk }
  })
  // A retired key listed twice, or the current key listed as retired, is one key.
  return keys.filter((k, i) => keys.findIndex(other => other.kid === k.kid) === i)
}

async function jwtPlugin (fastify: FastifyInstance) {
  const { jwt } = fastify.config
  const { algorithm, issuer, audience, clockSkew, accessTokenTtl } = jwt
  const keys = verificationKeys(jwt)
  const current = keys[0]!

  const claimChecks = {
    allowedIss: issuer,
    allowedAud: audience,
    requiredClaims: ['iss', 'aud', 'sub', 'exp', 'iat', 'jti'],
    checkTyp: ACCESS_TOKEN_TYPE,
    clockTolerance: clockSkew * 1000
  } satisfies Partial<VerifierOptions>

  // fast-jwt's signer takes `typ`, which @fastify/jwt's types do not list.
  const sign = { algorithm, kid: current.kid, typ: ACCESS_TOKEN_TYPE }
  await fastify.register(fastifyJwt, {
    secret: jwt.algorithm === 'HS256' ? jwt.secret : { private: jwt.privateKey, public: current.key },
    sign,
    // Pinned: the algorithm a token names is never trusted (RFC 8725 §3.1).
    verify: { algorithms: [algorithm], ...claimChecks }
  })

  // One verifier per key, built once; each accepts only its own key's algorithm (RFC 8725 §3.1),
  // so a token cannot pick the algorithm, and an HS256 token "signed" with a public key fails.
  const verifiers = new Map(keys.map(({ kid, algorithm, key }) =>
    [kid, createVerifier({ key, algorithms: [algorithm], ...claimChecks, ...VERIFY_CACHE })] as const))
  const onlyVerifier = verifiers.size === 1 ? verifiers.get(current.kid)! : undefined

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
    },

    verify (token: string): AccessTokenClaims {
      if (onlyVerifier !== undefined) return onlyVerifier(token)
      const verifier = verifiers.get(keyIdOf(token))
      if (verifier === undefined) throw new TokenError(TokenError.codes.invalidKey, 'The token was not signed by a known key.')
      return verifier(token)
    },

    jwks: jwt.algorithm === 'HS256' ? null : { keys: keys.map(k => k.jwk!) }
  })
}

/** The `kid` of a JWS header, or '' when there is none to read. */
function keyIdOf (token: string): string {
  const dot = token.indexOf('.')
  if (dot < 1) return ''
  try {
    const { kid } = JSON.parse(Buffer.from(token.slice(0, dot), 'base64url').toString())
    return typeof kid === 'string' ? kid : ''
  } catch {
    return ''
  }
}

export default fp(jwtPlugin, { name: 'jwt', dependencies: ['config'] })

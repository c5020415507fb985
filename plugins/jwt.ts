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
      /**
       * Signs an access token of the session `sessionId` (its `sid`), issued no earlier than
       * `notBefore` (epoch ms), the user's last logout.
       */
      issue (userId: number, sessionId: string, notBefore?: number): { token: string, expiresIn: number }
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
 * A signature, once checked, is remembered for a minute (by the app's clock) among the last
 * 2,000 tokens, so it is not checked again on every request. Only the signature and the
 * timeless claims are remembered: exp, nbf and iat are compared with the clock on every use,
 * and the user and session rows are read every time, so logout, an ended session and a
 * deleted user still take effect at once.
 */
const VERIFY_CACHE_SIZE = 2000
const VERIFY_CACHE_TTL_MS = 60_000
/** Longer strings are not ours (ours are under 1 KiB) and would only fill memory. */
const VERIFY_CACHE_MAX_TOKEN = 4096

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
    requiredClaims: ['iss', 'aud', 'sub', 'exp', 'iat', 'jti', 'sid'],
    checkTyp: ACCESS_TOKEN_TYPE
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
  // fast-jwt would read the wall clock for exp and nbf: the times are checked below instead,
  // against the app's clock.
  const verifiers = new Map(keys.map(({ kid, algorithm, key }) =>
    [kid, createVerifier({ key, algorithms: [algorithm], ...claimChecks, ignoreExpiration: true, ignoreNotBefore: true })] as const))
  const onlyVerifier = verifiers.size === 1 ? verifiers.get(current.kid)! : undefined
  const skewMs = clockSkew * 1000

  function checkSignature (token: string): AccessTokenClaims {
    if (onlyVerifier !== undefined) return onlyVerifier(token)
    const verifier = verifiers.get(keyIdOf(token))
    if (verifier === undefined) throw new TokenError(TokenError.codes.invalidKey, 'The token was not signed by a known key.')
    return verifier(token)
  }

  const checked = new Map<string, { claims?: AccessTokenClaims, error?: TokenError, until: number }>()
  function cachedSignatureCheck (token: string, now: number): AccessTokenClaims {
    const hit = checked.get(token)
    if (hit !== undefined && now < hit.until) {
      if (hit.error !== undefined) throw hit.error
      return hit.claims!
    }
    if (token.length > VERIFY_CACHE_MAX_TOKEN) return checkSignature(token)
    if (checked.size >= VERIFY_CACHE_SIZE) checked.delete(checked.keys().next().value!)
    const until = now + VERIFY_CACHE_TTL_MS
    try {
      const claims = checkSignature(token)
      checked.set(token, { claims, until })
      return claims
    } catch (err) {
      if (err instanceof TokenError) checked.set(token, { error: err, until })
      throw err
    }
  }

  fastify.decorate('accessTokens', {
    issue (userId: number, sessionId: string, notBefore = 0) {
      const now = Math.max(fastify.now(), notBefore)
      const iat = Math.floor(now / 1000)
      const claims: AccessTokenClaims = {
        iss: issuer,
        aud: audience,
        sub: String(userId),
        iat,
        exp: iat + accessTokenTtl,
        jti: uuidv7(now),
        sid: sessionId
      }
      return { token: fastify.jwt.sign(claims), expiresIn: accessTokenTtl }
    },

    verify (token: string): AccessTokenClaims {
      const now = fastify.now()
      const claims = cachedSignatureCheck(token, now)
      checkTimes(claims, now, skewMs)
      return claims
    },

    jwks: jwt.algorithm === 'HS256' ? null : { keys: keys.map(k => k.jwk!) }
  })
}

/**
 * RFC 7519 §4.1.4–4.1.6 against the app's clock, with the configured skew: expired, not
 * active yet, or issued in the future.
 */
function checkTimes (claims: AccessTokenClaims & { nbf?: unknown }, now: number, skewMs: number) {
  const { exp, iat, nbf } = claims
  if (typeof exp !== 'number' || typeof iat !== 'number' || (nbf !== undefined && typeof nbf !== 'number')) {
    throw new TokenError(TokenError.codes.invalidClaimType, 'The exp, iat and nbf claims must be numbers.')
  }
  if (now > exp * 1000 + skewMs) throw new TokenError(TokenError.codes.expired, 'The token has expired.')
  if (now < iat * 1000 - skewMs || (nbf !== undefined && now < nbf * 1000 - skewMs)) {
    throw new TokenError(TokenError.codes.inactive, 'The token is not active yet.')
  }
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

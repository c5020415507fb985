import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyBaseLogger } from 'fastify'
import { acceptOnly } from '../plugins/formbody.js'
import type { IssuedTokens } from '../plugins/sessions.js'
import type { LoginOutcome } from '../plugins/metrics.js'
import { InvalidGrant, InvalidRequest, InvalidScope, TooManyAttempts, UnsupportedGrantType } from '../src/errors.js'
import { Type } from '@sinclair/typebox'
import { commonOAuthErrors, json, oauthError, ref } from '../src/schemas/components.js'
import type { TokenRequest } from '../src/schemas/tokens.js'
import { normaliseEmail } from './users.js'

const WRONG_CREDENTIALS = 'The username or password is incorrect'
const MAX_PASSWORD_CODE_POINTS = 128

/** RFC 6749 §3.2: a parameter sent without a value is treated as omitted. */
export function param (value: string | undefined): string | undefined {
  return value === '' ? undefined : value
}

function required (params: TokenRequest, name: 'username' | 'password' | 'refresh_token'): string {
  const value = param(params[name])
  if (value === undefined) throw new InvalidRequest(`The ${name} parameter is missing`)
  return value
}

/** How a password grant ended, for auth_logins_total; undefined when it was no login attempt. */
function loginOutcome (err: unknown): LoginOutcome | undefined {
  if (err instanceof TooManyAttempts) return 'locked'
  if (err instanceof InvalidGrant) return 'invalid_credentials'
  if (err instanceof InvalidRequest) return undefined
  return 'unavailable'
}

const token: FastifyPluginAsyncTypebox = async (fastify) => {
  const { store, passwords, sessions, loginLimits, metrics } = fastify

  /** @see https://www.rfc-editor.org/rfc/rfc6749#section-4.3 */
  async function passwordGrant (params: TokenRequest, address: string, log: FastifyBaseLogger): Promise<IssuedTokens> {
    const email = normaliseEmail(required(params, 'username'))
    const password = required(params, 'password')
    const seen = await loginLimits.check(email, address)

    // Longer than any password the policy allows: refused without hashing it.
    const tooLong = [...password].length > MAX_PASSWORD_CODE_POINTS
    const user = tooLong ? undefined : await store.findUserByEmail(email)
    const { valid, needsRehash } = tooLong ? { valid: false, needsRehash: false } : await passwords.verify(user?.passwordHash, password)
    if (!valid || user === undefined) {
      log.info({ username: email, address }, 'failed login')
      await loginLimits.failed(email, address, seen)
      throw new InvalidGrant(WRONG_CREDENTIALS)
    }
    await loginLimits.succeeded(email, seen.accountFailures)
    if (needsRehash) await store.updatePasswordHash(user.id, await passwords.hash(password))
    return sessions.start(user)
  }

  /** @see https://www.rfc-editor.org/rfc/rfc6749#section-6 */
  async function refreshGrant (params: TokenRequest): Promise<IssuedTokens> {
    return sessions.refresh(required(params, 'refresh_token'))
  }

  fastify.post('/token', {
    onRequest: acceptOnly('application/x-www-form-urlencoded'),
    config: { oauth: true },
    schema: {
      operationId: 'issueToken',
      tags: ['oauth'],
      summary: 'Log in or refresh: exchange credentials or a refresh token for tokens (OAuth 2.0)',
      description: 'The password grant (RFC 6749 §4.3): `grant_type=password`, the account email as `username`, and the `password`. The refresh grant (§6): `grant_type=refresh_token` and the `refresh_token`; each refresh token works once and the answer carries its successor, and a retired one presented again revokes its whole family. An empty parameter counts as a missing one. Errors are RFC 6749 §5.2 bodies, never problem details.',
      consumes: ['application/x-www-form-urlencoded'],
      body: ref('TokenRequest'),
      response: {
        200: json('TokenResponse', 'The access token, to send as `Authorization: Bearer <access_token>`.', {
          'Cache-Control': Type.String({ description: 'no-store' }),
          Pragma: Type.String({ description: 'no-cache' })
        }),
        400: oauthError('`invalid_request` (a missing or repeated parameter), `unsupported_grant_type`, `invalid_scope`, or `invalid_grant` (wrong email or password, with the same description for both; an unknown, expired, revoked or reused refresh token).'),
        413: oauthError('`invalid_request`: the body is larger than 16 KiB.'),
        415: oauthError('`invalid_request`: the body is not a form (application/x-www-form-urlencoded).'),
        ...commonOAuthErrors
      }
    }
  }, async (request, reply) => {
    const params = request.body
    const grantType = param(params.grant_type)
    if (grantType === undefined) throw new InvalidRequest('The grant_type parameter is missing')
    if (param(params.scope) !== undefined) throw new InvalidScope()

    let tokens: IssuedTokens
    switch (grantType) {
      case 'password':
        try {
          tokens = await passwordGrant(params, request.ip, request.log)
        } catch (err) {
          const outcome = loginOutcome(err)
          if (outcome !== undefined) metrics.logins.inc({ outcome })
          throw err
        }
        metrics.logins.inc({ outcome: 'success' })
        break
      case 'refresh_token':
        tokens = await refreshGrant(params)
        break
      default:
        throw new UnsupportedGrantType()
    }

    reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
    return {
      access_token: tokens.accessToken,
      token_type: 'Bearer' as const,
      expires_in: tokens.expiresIn,
      refresh_token: tokens.refreshToken
    }
  })
}

export default token

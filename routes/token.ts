import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyRequest } from 'fastify'
import { acceptOnly } from '../plugins/formbody.js'
import { tokenResponse, type IssuedTokens } from '../plugins/sessions.js'
import type { LoginOutcome } from '../plugins/metrics.js'
import { InvalidGrant, InvalidRequest, InvalidScope, TooManyAttempts, UnsupportedGrantType } from '../src/errors.js'
import { Type } from '@sinclair/typebox'
import { commonOAuthErrors, json, oauthError, ref } from '../src/schemas/components.js'
import type { TokenRequest } from '../src/schemas/tokens.js'
import { normaliseEmail } from '../src/accounts/email.js'
import { failedPasswordCheck, isTooLong } from '../src/accounts/lifecycle.js'
import { param } from '../src/oauth-params.js'

const WRONG_CREDENTIALS = 'The username or password is incorrect'
export const UNVERIFIED_EMAIL = 'The email address is not verified'
export const DISABLED_ACCOUNT = 'The account is disabled'

/** The outcome of each refusal that comes only after the right password. */
const REFUSALS: Record<string, LoginOutcome> = { [UNVERIFIED_EMAIL]: 'unverified', [DISABLED_ACCOUNT]: 'disabled' }

function required (params: TokenRequest, name: 'username' | 'password' | 'refresh_token'): string {
  const value = param(params[name])
  if (value === undefined) throw new InvalidRequest(`The ${name} parameter is missing`)
  return value
}

/** How a password grant ended, for auth_logins_total; undefined when it was no login attempt. */
function loginOutcome (err: unknown): LoginOutcome | undefined {
  if (err instanceof TooManyAttempts) return 'locked'
  if (err instanceof InvalidGrant) return REFUSALS[err.message] ?? 'invalid_credentials'
  if (err instanceof InvalidRequest) return undefined
  return 'unavailable'
}

const token: FastifyPluginAsyncTypebox = async (fastify) => {
  const { store, passwords, sessions, loginLimits, securityEvents, metrics } = fastify

  /** @see https://www.rfc-editor.org/rfc/rfc6749#section-4.3 */
  async function passwordGrant (params: TokenRequest, request: FastifyRequest): Promise<IssuedTokens> {
    const { ip: address, log } = request
    const email = normaliseEmail(required(params, 'username'))
    const password = required(params, 'password')
    const seen = await loginLimits.check(email, address)

    const tooLong = isTooLong(password)
    const user = tooLong ? undefined : await store.findUserByEmail(email)
    const { valid, needsRehash } = tooLong ? { valid: false, needsRehash: false } : await passwords.verify(user?.passwordHash, password)
    if (!valid || user === undefined) {
      log.info({ username: email, address }, 'failed login')
      await failedPasswordCheck(fastify, email, user, seen, request)
      throw new InvalidGrant(WRONG_CREDENTIALS)
    }
    await loginLimits.succeeded(email, seen.accountFailures)
    // Said only after the right password, so it tells a guesser nothing.
    if (user.disabledAt !== null) {
      log.info({ userId: user.id }, 'login refused: the account is disabled')
      throw new InvalidGrant(DISABLED_ACCOUNT)
    }
    if (fastify.config.emailVerification.required && user.emailVerifiedAt === null) {
      log.info({ userId: user.id }, 'login refused: the email address is not verified')
      throw new InvalidGrant(UNVERIFIED_EMAIL)
    }
    if (needsRehash) await store.updatePasswordHash(user.id, await passwords.hash(password))
    const tokens = await sessions.start(user, request)
    await securityEvents.record(user.id, 'login', request)
    return tokens
  }

  /** @see https://www.rfc-editor.org/rfc/rfc6749#section-6 */
  async function refreshGrant (params: TokenRequest, request: FastifyRequest): Promise<IssuedTokens> {
    return sessions.refresh(required(params, 'refresh_token'), request)
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
        400: oauthError('`invalid_request` (a missing or repeated parameter), `unsupported_grant_type`, `invalid_scope`, or `invalid_grant` (wrong email or password, with the same description for both; an unknown, expired, revoked or reused refresh token; the right password for an account an operator disabled: `The account is disabled`; with `REQUIRE_VERIFIED_EMAIL=true`, the right password for an account whose email is not verified: `The email address is not verified`).'),
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
          tokens = await passwordGrant(params, request)
        } catch (err) {
          const outcome = loginOutcome(err)
          if (outcome !== undefined) metrics.logins.inc({ outcome })
          throw err
        }
        metrics.logins.inc({ outcome: 'success' })
        break
      case 'refresh_token':
        tokens = await refreshGrant(params, request)
        break
      default:
        throw new UnsupportedGrantType()
    }

    return tokenResponse(reply, tokens)
  })
}

export default token

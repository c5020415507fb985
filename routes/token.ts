import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { acceptOnly } from '../plugins/formbody.js'
import { InvalidGrant, InvalidRequest, InvalidScope, UnsupportedGrantType } from '../src/errors.js'
import { Type } from '@sinclair/typebox'
import { json, oauthError, ref } from '../src/schemas/components.js'
import type { TokenRequest } from '../src/schemas/tokens.js'
import { normaliseEmail } from './users.js'

const WRONG_CREDENTIALS = 'The username or password is incorrect'
const MAX_PASSWORD_CODE_POINTS = 128

/** RFC 6749 §3.2: a parameter sent without a value is treated as omitted. */
function param (value: string | undefined): string | undefined {
  return value === '' ? undefined : value
}

function required (params: TokenRequest, name: 'username' | 'password'): string {
  const value = param(params[name])
  if (value === undefined) throw new InvalidRequest(`The ${name} parameter is missing`)
  return value
}

const token: FastifyPluginAsyncTypebox = async (fastify) => {
  const { store, passwords, accessTokens } = fastify

  /** @see https://www.rfc-editor.org/rfc/rfc6749#section-4.3 */
  async function passwordGrant (params: TokenRequest, log: typeof fastify.log) {
    const email = normaliseEmail(required(params, 'username'))
    const password = required(params, 'password')
    // Longer than any password the policy allows: refuse before hashing it.
    if ([...password].length > MAX_PASSWORD_CODE_POINTS) throw new InvalidGrant(WRONG_CREDENTIALS)

    const user = await store.findUserByEmail(email)
    const { valid, needsRehash } = await passwords.verify(user?.passwordHash, password)
    if (!valid || user === undefined) {
      log.info({ username: email }, 'failed login')
      throw new InvalidGrant(WRONG_CREDENTIALS)
    }
    if (needsRehash) await store.updatePasswordHash(user.id, await passwords.hash(password))
    return user.id
  }

  fastify.post('/token', {
    onRequest: acceptOnly('application/x-www-form-urlencoded'),
    config: { oauth: true },
    schema: {
      operationId: 'issueToken',
      tags: ['oauth'],
      summary: 'Log in: exchange credentials for an access token (OAuth 2.0)',
      description: 'The password grant (RFC 6749 §4.3): `grant_type=password`, the account email as `username`, and the `password`. An empty parameter counts as a missing one. Errors are RFC 6749 §5.2 bodies, never problem details.',
      consumes: ['application/x-www-form-urlencoded'],
      body: ref('TokenRequest'),
      response: {
        200: json('TokenResponse', 'The access token, to send as `Authorization: Bearer <access_token>`.', {
          'Cache-Control': Type.String({ description: 'no-store' }),
          Pragma: Type.String({ description: 'no-cache' })
        }),
        400: oauthError('`invalid_request` (a missing or repeated parameter), `unsupported_grant_type`, `invalid_scope`, or `invalid_grant` (wrong email or password, with the same description for both).'),
        413: oauthError('`invalid_request`: the body is larger than 16 KiB.'),
        415: oauthError('`invalid_request`: the body is not a form (application/x-www-form-urlencoded).'),
        500: oauthError('`server_error`: the server could not complete the request.')
      }
    }
  }, async (request, reply) => {
    const params = request.body
    const grantType = param(params.grant_type)
    if (grantType === undefined) throw new InvalidRequest('The grant_type parameter is missing')
    if (param(params.scope) !== undefined) throw new InvalidScope()

    let userId: number
    switch (grantType) {
      case 'password':
        userId = await passwordGrant(params, request.log)
        break
      default:
        throw new UnsupportedGrantType()
    }

    const { token, expiresIn } = accessTokens.issue(userId)
    reply.header('cache-control', 'no-store').header('pragma', 'no-cache')
    return { access_token: token, token_type: 'Bearer' as const, expires_in: expiresIn }
  })
}

export default token

/**
 * A client as a user of the API writes it: openapi-fetch over the types openapi-typescript
 * generates from the served document. test/routes/sdk.test.ts generates those types into
 * test/artifacts/sdk/ (not committed), type-checks this file against them, then runs it.
 * It is excluded from the project's tsconfig because the types exist only at test time.
 */
import createClient from 'openapi-fetch'
import type { components, paths } from '../artifacts/sdk/openapi.js'

type User = components['schemas']['User']
type CurrentUser = components['schemas']['CurrentUser']

export interface Journey {
  created: User
  me: CurrentUser
  loggedIn: boolean
  loggedOut: boolean
  /** Statuses of: forgot password, a reset with a bad token, a verification with a bad token, asking for a new verification email. */
  emailFlows: { resetRequested: number, badReset: number, badResetDetail: string, badVerification: number, verificationRequested: number }
}

export async function journey (baseUrl: string, email: string, password: string): Promise<Journey> {
  const client = createClient<paths>({ baseUrl })

  const signup = await client.POST('/users', { body: { email, password } })
  if (signup.error !== undefined) throw new Error(`signup: ${signup.error.status} ${signup.error.detail}`)

  // RFC 6749 §4.3: the token request is a form; openapi-fetch encodes it for this content type.
  const token = await client.POST('/token', {
    body: { grant_type: 'password', username: email, password },
    headers: { 'content-type': 'application/x-www-form-urlencoded' }
  })
  if (token.error !== undefined) throw new Error(`login: ${token.error.error} ${token.error.error_description}`)
  const authorization = `${token.data.token_type} ${token.data.access_token}`

  const me = await client.GET('/users/me', { headers: { authorization } })
  if (me.error !== undefined) throw new Error(`me: ${me.error.status} ${me.error.detail}`)

  const status = await client.GET('/auth/status', { headers: { authorization } })
  const anonymous = await client.GET('/auth/status')
  if (status.data === undefined || anonymous.data === undefined) throw new Error('auth/status failed')

  const reset = await client.POST('/password-reset', { body: { email } })
  const badReset = await client.POST('/password-reset/confirm', { body: { token: 'not-a-token', new_password: 'a new passphrase 12' } })
  if (badReset.error === undefined) throw new Error('a bad reset token was accepted')
  const badVerification = await client.POST('/email-verification/confirm', { body: { token: 'not-a-token' } })
  const verification = await client.POST('/users/me/email-verification', { headers: { authorization } })

  return {
    created: signup.data,
    me: me.data,
    loggedIn: status.data.logged_in,
    loggedOut: !anonymous.data.logged_in,
    emailFlows: {
      resetRequested: reset.response.status,
      badReset: badReset.response.status,
      badResetDetail: badReset.error.detail,
      badVerification: badVerification.response.status,
      verificationRequested: verification.response.status
    }
  }
}

/** Never called: the type-check proves the generated types are precise enough to refuse these. */
export async function misuses (client: ReturnType<typeof createClient<paths>>) {
  // @ts-expect-error: a password is required
  await client.POST('/users', { body: { email: 'a@b.c' } })
  // @ts-expect-error: a password is a string
  await client.POST('/users', { body: { email: 'a@b.c', password: 1234567890 } })
  // @ts-expect-error: there is no such path
  await client.GET('/users/all')
  // @ts-expect-error: the token endpoint is POST only
  await client.GET('/token')
  // @ts-expect-error: a reset needs the new password
  await client.POST('/password-reset/confirm', { body: { token: 'abc' } })
  // @ts-expect-error: forgot password needs the email
  await client.POST('/password-reset', { body: {} })
  const { data } = await client.GET('/users/me')
  // @ts-expect-error: a user has no password field, in the types as on the wire
  return data?.password
}

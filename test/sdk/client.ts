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
type SessionList = components['schemas']['SessionList']
type SecurityEventList = components['schemas']['SecurityEventList']

export interface Journey {
  created: User
  me: CurrentUser
  loggedIn: boolean
  loggedOut: boolean
  /** Statuses of: forgot password, a reset with a bad token, a verification with a bad token, asking for a new verification email. */
  emailFlows: { resetRequested: number, badReset: number, badResetDetail: string, badVerification: number, verificationRequested: number }
  /** The sessions after a second login, as the first one sees them. */
  sessions: SessionList['sessions']
  /** The status of the second session's /users/me once the first ended it. */
  endedSessionStatus: number
  /** The status of a password change with a wrong current password, and its problem detail. */
  wrongPassword: { status: number, detail: string }
  /** Whether the old token still works after the password change, and the new one. */
  oldTokenWorks: boolean
  newTokenWorks: boolean
  events: SecurityEventList['events']
  deleted: number
  /** /users/me with the last token after the deletion. */
  afterDeletion: number
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

  // A second device, then the first one lists the devices and ends the second.
  const second = await client.POST('/token', {
    body: { grant_type: 'password', username: email, password },
    headers: { 'content-type': 'application/x-www-form-urlencoded' }
  })
  if (second.error !== undefined) throw new Error(`second login: ${second.error.error}`)
  const secondAuthorization = `Bearer ${second.data.access_token}`
  const listed = await client.GET('/users/me/sessions', { headers: { authorization } })
  if (listed.error !== undefined) throw new Error(`sessions: ${listed.error.status} ${listed.error.detail}`)
  const other = listed.data.sessions.find(session => !session.current)
  if (other === undefined) throw new Error('sessions: the second device is not listed')
  const ended = await client.DELETE('/users/me/sessions/{id}', { params: { path: { id: other.id } }, headers: { authorization } })
  if (ended.error !== undefined) throw new Error(`end session: ${ended.error.status} ${ended.error.detail}`)
  const endedSession = await client.GET('/users/me', { headers: { authorization: secondAuthorization } })

  const wrong = await client.POST('/users/me/password', {
    body: { current_password: `not ${password}`, new_password: `${password} and more` },
    headers: { authorization }
  })
  if (wrong.error === undefined) throw new Error('a wrong current password was accepted')

  const changed = await client.POST('/users/me/password', {
    body: { current_password: password, new_password: `${password} and more` },
    headers: { authorization }
  })
  if (changed.error !== undefined) throw new Error(`change password: ${changed.error.status} ${changed.error.detail}`)
  const newAuthorization = `${changed.data.token_type} ${changed.data.access_token}`
  const oldToken = await client.GET('/users/me', { headers: { authorization } })
  const newToken = await client.GET('/users/me', { headers: { authorization: newAuthorization } })

  const events = await client.GET('/users/me/events', { headers: { authorization: newAuthorization } })
  if (events.error !== undefined) throw new Error(`events: ${events.error.status} ${events.error.detail}`)

  const deleted = await client.DELETE('/users/me', { body: { current_password: `${password} and more` }, headers: { authorization: newAuthorization } })
  const afterDeletion = await client.GET('/users/me', { headers: { authorization: newAuthorization } })

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
    },
    sessions: listed.data.sessions,
    endedSessionStatus: endedSession.response.status,
    wrongPassword: { status: wrong.response.status, detail: wrong.error.detail },
    oldTokenWorks: oldToken.response.ok,
    newTokenWorks: newToken.response.ok,
    events: events.data.events,
    deleted: deleted.response.status,
    afterDeletion: afterDeletion.response.status
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
  // @ts-expect-error: deleting the account takes the current password
  await client.DELETE('/users/me', { body: {} })
  // @ts-expect-error: a password change names both passwords
  await client.POST('/users/me/password', { body: { new_password: 'x' } })
  const { data } = await client.GET('/users/me')
  // @ts-expect-error: an event type is one of the documented ones
  const type: SecurityEventList['events'][number]['type'] = 'coffee_break'
  // @ts-expect-error: a user has no password field, in the types as on the wire
  return [type, data?.password]
}

/**
 * A client as a user of the API writes it: openapi-fetch over the types openapi-typescript
 * generates from the served document. test/routes/sdk.test.ts generates those types into
 * test/artifacts/sdk/ (not committed), type-checks this file against them, then runs it.
 * It is excluded from the project's tsconfig because the types exist only at test time.
 */
import createClient from 'openapi-fetch'
import type { components, paths } from '../artifacts/sdk/openapi.js'

type User = components['schemas']['User']

export interface Journey {
  created: User
  me: User
  loggedIn: boolean
  loggedOut: boolean
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

  return { created: signup.data, me: me.data, loggedIn: status.data.logged_in, loggedOut: !anonymous.data.logged_in }
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
  const { data } = await client.GET('/users/me')
  // @ts-expect-error: a user has no password field, in the types as on the wire
  return data?.password
}

import { Type, type Static } from '@sinclair/typebox'
import { SECURITY_EVENT_TYPES } from '../accounts/events.js'
import { MAX_USER_AGENT } from '../accounts/client.js'
import { Password } from './users.js'

const CurrentPassword = Type.String({
  minLength: 1,
  format: 'password',
  description: 'The account\'s current password: re-authentication, under the same failed-login limit as `POST /token`.'
})

export const ChangePasswordBody = Type.Object({
  current_password: CurrentPassword,
  new_password: Type.String({ ...Password, format: 'password', description: '8 to 128 Unicode code points after NFC normalisation, not a common password, not the current one.' })
}, { additionalProperties: false })
export type ChangePasswordBody = Static<typeof ChangePasswordBody>

export const DeleteAccountBody = Type.Object({
  current_password: CurrentPassword
}, { additionalProperties: false })
export type DeleteAccountBody = Static<typeof DeleteAccountBody>

const Nullable = <T extends ReturnType<typeof Type.String>>(schema: T) => Type.Union([schema, Type.Null()])
const Timestamp = Type.String({ format: 'date-time' })

export const Session = Type.Object({
  id: Type.String({ description: 'Opaque; the `sid` claim of the session\'s access tokens.', examples: ['mK3Jc0b8QX6n1d9y2aZ4rA'] }),
  created_at: Timestamp,
  last_used_at: Type.String({ format: 'date-time', description: 'The login, or the latest refresh.' }),
  ip: Nullable(Type.String({ description: 'The client address at login.' })),
  user_agent: Nullable(Type.String({ maxLength: MAX_USER_AGENT, description: `The client's User-Agent at login, cut to ${MAX_USER_AGENT} characters.` })),
  current: Type.Boolean({ description: 'True for the session the caller\'s access token belongs to.' })
})
export type Session = Static<typeof Session>

export const SessionList = Type.Object({
  sessions: Type.Array(Session, { description: 'Every live session (signed-in device), newest first.' })
})
export type SessionList = Static<typeof SessionList>

export const SecurityEvent = Type.Object({
  type: Type.Union(SECURITY_EVENT_TYPES.map(type => Type.Literal(type))),
  at: Timestamp,
  ip: Nullable(Type.String()),
  user_agent: Nullable(Type.String({ maxLength: MAX_USER_AGENT }))
})
export type SecurityEvent = Static<typeof SecurityEvent>

export const SecurityEventList = Type.Object({
  events: Type.Array(SecurityEvent, { description: 'The latest 50 at most, newest first.' })
})
export type SecurityEventList = Static<typeof SecurityEventList>

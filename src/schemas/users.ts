import { Type, type Static } from '@sinclair/typebox'

export const Email = Type.String({
  format: 'email',
  maxLength: 254,
  description: 'Trimmed and lower-cased before it is stored or looked up.',
  examples: ['ada@example.com']
})

export const Password = Type.String({
  minLength: 8,
  maxLength: 128,
  description: '8 to 128 Unicode code points after NFC normalisation; never trimmed.',
  examples: ['correct horse battery staple']
})

export const CreateUserBody = Type.Object({
  email: Email,
  password: Password
}, { additionalProperties: false })
export type CreateUserBody = Static<typeof CreateUserBody>

export const User = Type.Object({
  id: Type.Integer({ minimum: 1 }),
  email: Type.String({ format: 'email' }),
  created_at: Type.String({ format: 'date-time' })
})
export type User = Static<typeof User>

export const CurrentUser = Type.Object({
  id: Type.Integer({ minimum: 1 }),
  email: Type.String({ format: 'email' }),
  created_at: Type.String({ format: 'date-time' }),
  email_verified: Type.Boolean({ description: 'Whether the account followed the link of a verification email.' })
})
export type CurrentUser = Static<typeof CurrentUser>

import { Type, type Static } from '@sinclair/typebox'
import { Email, Password } from './users.js'

export const EmailToken = Type.String({
  minLength: 1,
  maxLength: 256,
  description: 'The token from the link in the email (its `token` query parameter).'
})

export const PasswordResetRequest = Type.Object({
  email: Email
}, { additionalProperties: false })
export type PasswordResetRequest = Static<typeof PasswordResetRequest>

export const PasswordResetConfirmation = Type.Object({
  token: EmailToken,
  new_password: Password
}, { additionalProperties: false })
export type PasswordResetConfirmation = Static<typeof PasswordResetConfirmation>

export const EmailVerificationConfirmation = Type.Object({
  token: EmailToken
}, { additionalProperties: false })
export type EmailVerificationConfirmation = Static<typeof EmailVerificationConfirmation>

import { Type, type Static } from '@sinclair/typebox'

export const AuthStatus = Type.Object({
  logged_in: Type.Boolean()
})
export type AuthStatus = Static<typeof AuthStatus>

export const Health = Type.Object({
  status: Type.Literal('ok')
})

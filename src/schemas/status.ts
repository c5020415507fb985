import { Type, type Static } from '@sinclair/typebox'
import { Problem } from './problems.js'

export const AuthStatus = Type.Object({
  logged_in: Type.Boolean()
})
export type AuthStatus = Static<typeof AuthStatus>

export const Health = Type.Object({
  status: Type.Literal('ok')
})

/** One thing /ready looks at, and what it found, in words an operator can act on. */
const ReadinessCheck = Type.Object({
  status: Type.Union([Type.Literal('pass'), Type.Literal('fail')]),
  detail: Type.String()
})

export const ReadinessChecks = Type.Object({
  database: ReadinessCheck,
  migrations: ReadinessCheck,
  outbox: ReadinessCheck
})
export type ReadinessChecks = Static<typeof ReadinessChecks>

export const Readiness = Type.Object({
  status: Type.Literal('ok'),
  checks: ReadinessChecks
})

/** The 503 of /ready: a problem (RFC 9457) with the same checks as the 200, as an extension member. */
export const NotReady = Type.Object({
  ...Problem.properties,
  checks: ReadinessChecks
})

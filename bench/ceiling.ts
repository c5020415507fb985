// The ceilings the service is read against: a bare Fastify app with the service's read routes
// and response schemas, and nothing else (no logger, hooks, database or error handler).
//   CEILING=fixed  (a) fixed JSON bodies of the service's shapes
//   CEILING=jwt    (b) the same, after verifying the bearer token with fast-jwt as the service does
import Fastify from 'fastify'
import { createVerifier } from 'fast-jwt'
import { Problem } from '../src/schemas/problems.js'
import { AuthStatus, Health } from '../src/schemas/status.js'
import { User } from '../src/schemas/users.js'

const { CEILING, PORT, JWT_SECRET = '', JWT_ISSUER = '', JWT_AUDIENCE = '', JWT_CLOCK_SKEW = '30' } = process.env
if (CEILING !== 'fixed' && CEILING !== 'jwt') throw new Error('CEILING must be fixed or jwt')

const USER = { id: 1, email: 'bench@example.com', created_at: '2026-01-01T00:00:00.000Z' }
const UNAUTHORIZED = { type: 'about:blank', title: 'Unauthorized', status: 401, detail: 'The access token is invalid' }

// The service's verification options (plugins/jwt.ts), so the ceiling pays the same crypto.
const makeVerifier = () => createVerifier({
  key: JWT_SECRET,
  algorithms: ['HS256'],
  allowedIss: JWT_ISSUER,
  allowedAud: JWT_AUDIENCE,
  requiredClaims: ['iss', 'aud', 'sub', 'exp', 'iat'],
  checkTyp: 'at+jwt',
  clockTolerance: Number(JWT_CLOCK_SKEW) * 1000
})
const verify = CEILING === 'jwt' ? makeVerifier() : undefined

/** The user id of a valid bearer token, undefined otherwise; (a) only looks for a header. */
function authenticated (authorization: string | undefined): number | undefined {
  if (authorization === undefined || !/^bearer /i.test(authorization)) return undefined
  if (verify === undefined) return USER.id
  try {
    return Number((verify(authorization.slice(7).trim()) as { sub: string }).sub)
  } catch {
    return undefined
  }
}

const app = Fastify({ logger: false })

app.get('/users/me', { schema: { response: { 200: User, 401: Problem } } }, async (request, reply) => {
  const id = authenticated(request.headers.authorization)
  if (id === undefined) {
    return reply.code(401).header('www-authenticate', 'Bearer realm="auth-service", error="invalid_token"')
      .type('application/problem+json; charset=utf-8').send(UNAUTHORIZED)
  }
  return { ...USER, id }
})

app.get('/auth/status', { schema: { response: { 200: AuthStatus } } }, async (request) => ({
  logged_in: authenticated(request.headers.authorization) !== undefined
}))

app.get('/health', { schema: { response: { 200: Health } } }, async () => ({ status: 'ok' as const }))

await app.listen({ host: '127.0.0.1', port: Number(PORT) })
process.once('SIGTERM', () => { app.close().then(() => process.exit(0), () => process.exit(1)) })

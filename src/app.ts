import type { Server } from 'node:http'
import type { Writable } from 'node:stream'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyHttpOptions, type FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import configPlugin from '../plugins/config.js'
import storePlugin from '../plugins/store.js'
import metricsPlugin from '../plugins/metrics.js'
import tracingPlugin from '../plugins/tracing.js'
import passwordsPlugin from '../plugins/passwords.js'
import jwtPlugin from '../plugins/jwt.js'
import formbodyPlugin from '../plugins/formbody.js'
import authenticatePlugin from '../plugins/authenticate.js'
import sessionsPlugin from '../plugins/sessions.js'
import loginLimitsPlugin from '../plugins/login-limits.js'
import mailerPlugin from '../plugins/mailer.js'
import emailTokensPlugin from '../plugins/email-tokens.js'
import securityEventsPlugin from '../plugins/security-events.js'
import rateLimitPlugin from '../plugins/rate-limit.js'
import securityPlugin from '../plugins/security.js'
import problemsPlugin, { clientErrorHandler, frameworkErrors } from '../plugins/problems.js'
import requestIdPlugin, { requestId } from '../plugins/request-id.js'
import schemasPlugin from '../plugins/schemas.js'
import swaggerPlugin from '../plugins/swagger.js'
import drainPlugin from '../plugins/drain.js'
import { createLogger, requestLoggers } from './logger.js'
import usersRoutes from '../routes/users.js'
import accountRoutes from '../routes/account.js'
import sessionsRoutes from '../routes/sessions.js'
import eventsRoutes from '../routes/events.js'
import tokenRoutes from '../routes/token.js'
import revokeRoutes from '../routes/revoke.js'
import logoutRoutes from '../routes/logout.js'
import statusRoutes from '../routes/status.js'
import healthRoutes from '../routes/health.js'
import wellKnownRoutes from '../routes/well-known.js'
import openapiRoutes from '../routes/openapi.js'
import passwordResetRoutes from '../routes/password-reset.js'
import emailVerificationRoutes from '../routes/email-verification.js'
import pagesRoutes from '../routes/pages.js'
import type { Config } from './config.js'

export interface AppOptions {
  config: Config
  /** The clock, in milliseconds; tests inject one. */
  now?: () => number
  /** Where the log lines go (stdout by default); tests read them back. */
  logStream?: Writable
}

/**
 * The Fastify server options, shared by the server and the tests. Fastify gets no logger of its
 * own: `logger` (src/logger.ts) reaches it through childLoggerFactory and buildApp.
 */
export function serverOptions (config: Config, logger?: FastifyBaseLogger): FastifyHttpOptions<Server> {
  return {
    logger: false,
    genReqId: requestId,
    ...(logger === undefined ? {} : { childLoggerFactory: requestLoggers(logger) }),
    // One access-log line per request is written at debug (plugins/request-id.ts): at info a
    // busy instance would spend a good part of its time logging routine 200s.
    logController: new LogController({ disableRequestLogging: true }),
    clientErrorHandler,
    frameworkErrors,
    requestIdHeader: false,
    bodyLimit: 16 * 1024,
    // A slow client cannot pin a socket: the whole request must arrive within 15 s, and idle
    // keep-alive sockets close after 10 s (Node caps headers at 16 KiB).
    requestTimeout: 15_000,
    keepAliveTimeout: 10_000,
    // plugins/drain.ts answers requests that arrive while closing, as problems.
    return503OnClosing: false,
    trustProxy: config.trustProxy ?? false,
    // A request without Host is refused by plugins/problems.ts, as a problem.
    http: { requireHostHeader: false },
    ajv: {
      // Unknown properties are refused rather than silently dropped, and nothing is coerced.
      customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true }
    }
  }
}

async function app (fastify: FastifyInstance, opts: AppOptions) {
  await fastify.register(configPlugin, opts)
  await fastify.register(tracingPlugin)
  await fastify.register(metricsPlugin)
  await fastify.register(requestIdPlugin)
  await fastify.register(problemsPlugin)
  await fastify.register(drainPlugin)
  await fastify.register(securityPlugin)
  await fastify.register(rateLimitPlugin)
  await fastify.register(formbodyPlugin)
  await fastify.register(storePlugin)
  await fastify.register(passwordsPlugin)
  await fastify.register(jwtPlugin)
  await fastify.register(authenticatePlugin)
  await fastify.register(securityEventsPlugin)
  await fastify.register(sessionsPlugin)
  await fastify.register(loginLimitsPlugin)
  await fastify.register(mailerPlugin)
  await fastify.register(emailTokensPlugin)
  await fastify.register(schemasPlugin)
  // Before every route: @fastify/swagger documents the routes registered after it.
  await fastify.register(swaggerPlugin)

  await fastify.register(usersRoutes)
  await fastify.register(accountRoutes)
  await fastify.register(sessionsRoutes)
  await fastify.register(eventsRoutes)
  await fastify.register(tokenRoutes)
  await fastify.register(revokeRoutes)
  await fastify.register(logoutRoutes)
  await fastify.register(statusRoutes)
  await fastify.register(healthRoutes)
  await fastify.register(wellKnownRoutes)
  await fastify.register(openapiRoutes)
  await fastify.register(passwordResetRoutes)
  await fastify.register(emailVerificationRoutes)
  await fastify.register(pagesRoutes)
}

export default fp(app, { name: 'app' })

/** Builds the whole service the same way for the server and for the tests. */
export async function buildApp (opts: AppOptions): Promise<FastifyInstance> {
  const logger = createLogger(opts.config, opts.logStream)
  const fastify = Fastify(serverOptions(opts.config, logger)).withTypeProvider<TypeBoxTypeProvider>()
  if (logger !== undefined) fastify.log = logger
  await fastify.register(fp(app), opts)
  return fastify
}

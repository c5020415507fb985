import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import fp from 'fastify-plugin'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import configPlugin from '../plugins/config.js'
import storePlugin from '../plugins/store.js'
import passwordsPlugin from '../plugins/passwords.js'
import jwtPlugin from '../plugins/jwt.js'
import formbodyPlugin from '../plugins/formbody.js'
import authenticatePlugin from '../plugins/authenticate.js'
import problemsPlugin from '../plugins/problems.js'
import requestIdPlugin, { requestId } from '../plugins/request-id.js'
import schemasPlugin from '../plugins/schemas.js'
import swaggerPlugin from '../plugins/swagger.js'
import usersRoutes from '../routes/users.js'
import tokenRoutes from '../routes/token.js'
import statusRoutes from '../routes/status.js'
import healthRoutes from '../routes/health.js'
import wellKnownRoutes from '../routes/well-known.js'
import openapiRoutes from '../routes/openapi.js'
import type { Config } from './config.js'

export interface AppOptions {
  config: Config
  /** The clock, in milliseconds; tests inject one. */
  now?: () => number
}

/** The Fastify server options, shared by the server and the tests. */
export function serverOptions (config: Config): FastifyServerOptions {
  return {
    logger: config.logLevel === 'silent'
      ? false
      : {
          level: config.logLevel,
          redact: {
            paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.access_token', '*.refresh_token', '*.token'],
            censor: '[redacted]'
          }
        },
    genReqId: requestId,
    requestIdHeader: false,
    bodyLimit: 16 * 1024,
    trustProxy: config.trustProxy ?? false,
    ajv: {
      // Unknown properties are refused rather than silently dropped, and nothing is coerced.
      customOptions: { removeAdditional: false, coerceTypes: false, allErrors: true }
    }
  }
}

async function app (fastify: FastifyInstance, opts: AppOptions) {
  await fastify.register(configPlugin, opts)
  await fastify.register(requestIdPlugin)
  await fastify.register(problemsPlugin)
  await fastify.register(formbodyPlugin)
  await fastify.register(storePlugin)
  await fastify.register(passwordsPlugin)
  await fastify.register(jwtPlugin)
  await fastify.register(authenticatePlugin)
  await fastify.register(schemasPlugin)
  // Before every route: @fastify/swagger documents the routes registered after it.
  await fastify.register(swaggerPlugin)

  await fastify.register(usersRoutes)
  await fastify.register(tokenRoutes)
  await fastify.register(statusRoutes)
  await fastify.register(healthRoutes)
  await fastify.register(wellKnownRoutes)
  await fastify.register(openapiRoutes)
}

export default fp(app, { name: 'app' })

/** Builds the whole service the same way for the server and for the tests. */
export async function buildApp (opts: AppOptions): Promise<FastifyInstance> {
  const fastify = Fastify(serverOptions(opts.config)).withTypeProvider<TypeBoxTypeProvider>()
  await fastify.register(fp(app), opts)
  return fastify
}

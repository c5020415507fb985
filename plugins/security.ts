import fastifyCors from '@fastify/cors'
import fastifyHelmet from '@fastify/helmet'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

/** Security headers on every response, and CORS only for the origins CORS_ORIGINS lists. */
async function securityPlugin (fastify: FastifyInstance) {
  await fastify.register(fastifyHelmet, {
    // The API serves JSON only: nothing may load, frame or run from its responses.
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    // Headers that only govern HTML documents or retired browsers: not worth bytes on every
    // JSON response (frame-ancestors above already forbids framing).
    crossOriginOpenerPolicy: false,
    originAgentCluster: false,
    xDnsPrefetchControl: false,
    xDownloadOptions: false,
    xFrameOptions: false,
    xPermittedCrossDomainPolicies: false,
    xXssProtection: false
  })

  const { corsOrigins } = fastify.config
  if (corsOrigins.length > 0) {
    await fastify.register(fastifyCors, {
      origin: corsOrigins,
      methods: ['GET', 'HEAD', 'POST'],
      allowedHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
      exposedHeaders: ['X-Request-Id', 'WWW-Authenticate', 'Retry-After', 'Location'],
      maxAge: 600
    })
  }
}

export default fp(securityPlugin, { name: 'security', dependencies: ['config'] })

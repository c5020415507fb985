import type { IncomingMessage, ServerResponse } from 'node:http'
import fastifyCors from '@fastify/cors'
import fp from 'fastify-plugin'
import helmet from 'helmet'
import type { FastifyInstance } from 'fastify'

const securityHeaders = helmet({
  // The API serves JSON only: nothing may load, frame or run from its responses.
  contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  // Headers that only govern HTML documents or retired browsers: not worth bytes on every
  // JSON response (frame-ancestors above already forbids framing). A JSON response makes no
  // request of its own, so a referrer policy governs nothing there: the HTML documents the
  // service serves (the pages, /docs) carry HTML_HEADERS instead.
  // Cross-Origin-Resource-Policy keeps another site's <script> or <img> from pulling in a
  // response its visitor's browser fetched with their cookies; the service sets none, and a
  // token travels only in Authorization, which no such request carries, so the answer another
  // site could embed is the anonymous one it can fetch itself (and nosniff already keeps JSON
  // out of scripts and styles). About 3% of an anonymous request's time, for nothing.
  crossOriginResourcePolicy: false,
  crossOriginOpenerPolicy: false,
  referrerPolicy: false,
  originAgentCluster: false,
  xDnsPrefetchControl: false,
  xDownloadOptions: false,
  xFrameOptions: false,
  xPermittedCrossDomainPolicies: false,
  xXssProtection: false
})

/**
 * The headers helmet sets, read once. They do not depend on the request, and @fastify/helmet
 * rebuilds the whole middleware — parsing the CSP again — on every request, which cost about
 * 6% of the service's time at full load.
 */
function headersOf (middleware: typeof securityHeaders): Record<string, string> {
  const headers: Record<string, string> = {}
  const response = {
    setHeader (name: string, value: string) { headers[name.toLowerCase()] = String(value) },
    removeHeader (name: string) { delete headers[name.toLowerCase()] }
  }
  middleware({} as IncomingMessage, response as unknown as ServerResponse, () => {})
  return headers
}

/**
 * Security headers on every response, and CORS only for the origins CORS_ORIGINS lists.
 * Strict-Transport-Security goes only on responses to HTTPS requests (direct, or through a
 * proxy TRUST_PROXY trusts, by its X-Forwarded-Proto): RFC 6797 §7.2 forbids it over plain HTTP.
 */
async function securityPlugin (fastify: FastifyInstance) {
  const { 'strict-transport-security': hsts, ...headers } = headersOf(securityHeaders)
  if (hsts === undefined) throw new Error('helmet set no Strict-Transport-Security header')
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.headers(headers)
    if (request.protocol === 'https') reply.header('strict-transport-security', hsts)
    done()
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

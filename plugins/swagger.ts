import { createHash } from 'node:crypto'
import fastifySwagger from '@fastify/swagger'
import fastifySwaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import pkg from '../package.json' with { type: 'json' }
import { HTML_HEADERS } from '../src/html.js'
import { BEARER } from '../src/schemas/components.js'

export const DOCS_PREFIX = '/docs'

/**
 * The one inline style Swagger UI renders: the `<style>` inside the SVG logo of its top bar
 * (swagger-ui-standalone-preset.js), drawn for a moment before @fastify/swagger-ui puts its own
 * logo in its place. test/plugins/security.test.ts checks the bundle still has this text.
 */
export const SWAGGER_LOGO_STYLE = '.logo_small_svg__cls-2{fill:#fff}.logo_small_svg__cls-3{fill:#85ea2d}'

/**
 * The API's own CSP (default-src 'none', plugins/security.ts) would blank the page, and
 * swagger-ui's default one allows stylesheets from any https: origin and blocks its own logo.
 * Everything the page needs comes from /docs itself; images include data: URLs (its icons).
 */
export const DOCS_CSP = [
  "default-src 'self'",
  "base-uri 'self'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "img-src 'self' data:",
  "object-src 'none'",
  "script-src 'self'",
  "script-src-attr 'none'",
  // The logo's inline style by its hash: the tightest rule that lets it apply, and no other.
  `style-src 'self' 'sha256-${createHash('sha256').update(SWAGGER_LOGO_STYLE).digest('base64')}'`
].join('; ')

/**
 * The OpenAPI 3.1 document, generated from the routes' schemas (registered before any route,
 * as @fastify/swagger collects them with an onRoute hook), and Swagger UI at /docs.
 */
async function swaggerPlugin (fastify: FastifyInstance) {
  await fastify.register(fastifySwagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'auth-service',
        version: pkg.version,
        description: [
          pkg.description,
          '',
          'Create an account with `POST /users`, then press **Authorize** and log in with your email as the username: the',
          'password grant runs against `POST /token`, and calls that need a login carry the access token.',
          '',
          'Errors are RFC 9457 problem details (`application/problem+json`), except on the OAuth endpoints, which answer',
          'with RFC 6749 §5.2 bodies. Every response carries `X-Request-Id`. An unknown path is a `404` problem, a known',
          'path with another method a `405` problem with `Allow`.'
        ].join('\n')
      },
      tags: [
        { name: 'users', description: 'Accounts: sign up, and the logged-in user.' },
        { name: 'account', description: 'The account\'s lifecycle: password change, deletion, signed-in devices and security activity; forgot password and email verification.' },
        { name: 'pages', description: 'The HTML pages the links in emails open by default.' },
        { name: 'oauth', description: 'OAuth 2.0 token endpoint (RFC 6749) and revocation (RFC 7009).' },
        { name: 'auth', description: 'Whether a caller is logged in, and logging out.' },
        { name: 'discovery', description: 'Metadata, signing keys and this document, for clients and resource servers.' },
        { name: 'operations', description: 'Liveness and readiness probes.' }
      ],
      components: {
        securitySchemes: {
          [BEARER]: {
            type: 'oauth2',
            description: 'An access token from the password grant, sent as `Authorization: Bearer <access_token>`.',
            flows: {
              password: { tokenUrl: '/token', refreshUrl: '/token', scopes: {} }
            }
          }
        }
      }
    },
    refResolver: {
      // Shared schemas keep their names, so they appear as components.schemas.<Name>.
      buildLocalReference: (json, _baseUri, _fragment, i) => typeof json.$id === 'string' ? json.$id : `def-${i}`
    }
  })

  await fastify.register(fastifySwaggerUi, {
    routePrefix: DOCS_PREFIX,
    uiConfig: {
      // The access token survives a reload (kept in the page's localStorage).
      persistAuthorization: true,
      tryItOutEnabled: false,
      displayOperationId: true,
      defaultModelsExpandDepth: 1
    },
    theme: { title: 'auth-service API' },
    uiHooks: {
      onRequest (_request, reply, done) {
        reply.headers(HTML_HEADERS)
        done()
      }
    },
    // No upgrade-insecure-requests: it would break the docs of a service reached over plain
    // http on a laptop.
    staticCSP: DOCS_CSP
  })
}

export default fp(swaggerPlugin, { name: 'swagger', dependencies: ['schemas'] })

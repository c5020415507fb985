import SwaggerParser from '@apidevtools/swagger-parser'
import Fastify, { type RouteOptions } from 'fastify'
import t, { type Test } from 'tap'
import app, { serverOptions } from '../../src/app.js'
import { freshDatabase, testConfig } from '../helper.js'

interface Operation {
  operationId?: string
  tags?: string[]
  summary?: string
  security?: Array<Record<string, string[]>>
  requestBody?: { content: Record<string, { schema: { $ref?: string } }> }
  responses: Record<string, { description: string, content?: Record<string, { schema: { $ref?: string } }> }>
}
interface Document {
  openapi: string
  tags: Array<{ name: string }>
  paths: Record<string, Record<string, Operation>>
  components: { schemas: Record<string, unknown>, securitySchemes: Record<string, unknown> }
}

/** The app as buildApp makes it, with every route it registers recorded on the way. */
async function appWithRoutes (t: Test) {
  const config = testConfig(await freshDatabase(t, 'sqlite'))
  const fastify = Fastify(serverOptions(config))
  const routes: RouteOptions[] = []
  fastify.addHook('onRoute', route => { routes.push(route) })
  await fastify.register(app, { config })
  t.teardown(() => fastify.close())
  await fastify.ready()
  return { fastify, routes }
}

const DOCS = /^\/docs(\/|$)/
const hooks = (value: unknown): unknown[] => value === undefined ? [] : [value].flat()

t.test('GET /openapi.json: a valid OpenAPI 3.1 document of every route', async t => {
  const { fastify, routes } = await appWithRoutes(t)
  const res = await fastify.inject({ method: 'GET', url: '/openapi.json' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^application\/json/)
  const doc = res.json<Document>()

  t.test('it validates (swagger-parser) and is 3.1', async t => {
    t.equal(doc.openapi, '3.1.0')
    await t.resolves(SwaggerParser.validate(structuredClone(doc) as never))
  })

  // Everything the app registers is documented: only HEAD twins and Swagger UI's own files are not.
  const documented = routes.flatMap(route => [route.method].flat().map(method => ({ route, method })))
    .filter(({ route, method }) => method !== 'HEAD' && !DOCS.test(route.url))
  t.ok(documented.length >= 9, 'the routes were collected')

  for (const { route, method } of documented) {
    t.test(`${method} ${route.url}`, async t => {
      const path = route.url.replace(/:(\w+)/g, '{$1}')
      const operation = doc.paths[path]?.[method.toLowerCase()]
      if (operation === undefined) {
        t.fail(`${method} ${route.url} is registered but missing from the OpenAPI document`)
        return
      }
      t.match(operation.operationId, /^[a-z][A-Za-z]+$/, 'a camelCase operationId')
      t.ok(operation.summary, 'a summary')
      t.ok(operation.tags?.length, 'a tag')
      for (const tag of operation.tags ?? []) t.ok(doc.tags.some(({ name }) => name === tag), `tag ${tag} is declared`)

      const statuses = Object.keys(operation.responses)
      t.ok(statuses.some(s => /^2/.test(s)), 'a success response')
      const oauth = route.config?.oauth === true
      for (const status of statuses.filter(s => /^[45]/.test(s))) {
        const content = operation.responses[status]!.content ?? {}
        const [mediaType, expected] = oauth
          ? ['application/json', '#/components/schemas/OAuthError']
          : ['application/problem+json', `#/components/schemas/${operation.operationId === 'getReadiness' && status === '503' ? 'NotReady' : 'Problem'}`]
        t.same(Object.keys(content), [mediaType], `${status} is ${mediaType}`)
        t.equal(content[mediaType]?.schema.$ref, expected, `${status} refers to the named error schema`)
      }

      if (route.schema?.body !== undefined) {
        for (const status of ['400', '413', '415']) t.ok(operation.responses[status], `a body can be refused with ${status}`)
        t.ok(operation.requestBody, 'a request body')
      }

      const preHandlers = hooks(route.preHandler)
      if (preHandlers.includes(fastify.authenticate)) {
        t.same(operation.security, [{ OAuth2PasswordBearer: [] }], 'strict authentication requires the bearer scheme')
        t.ok(operation.responses['401'], 'documents 401')
        t.ok(operation.responses['400'], 'documents 400 (a repeated Authorization header)')
      } else if (preHandlers.includes(fastify.authenticateOptional)) {
        t.same(operation.security, [{}, { OAuth2PasswordBearer: [] }], 'soft authentication makes the scheme optional')
      } else {
        t.equal(operation.security, undefined, 'no authentication')
      }
    })
  }

  t.test('operationIds are unique and stable', async t => {
    const ids = Object.values(doc.paths).flatMap(methods => Object.values(methods).map(o => o.operationId))
    t.equal(new Set(ids).size, ids.length)
    for (const id of ['createUser', 'issueToken', 'getCurrentUser', 'getAuthStatus', 'getHealth', 'getReadiness',
      'getAuthorizationServerMetadata', 'getJwks', 'getOpenApiDocument',
      'changePassword', 'deleteCurrentUser', 'listSessions', 'endSession', 'listSecurityEvents']) {
      t.ok(ids.includes(id), id)
    }
  })

  t.test('request bodies: JSON to sign up, a form to log in', async t => {
    t.same(doc.paths['/users']!.post!.requestBody!.content, { 'application/json': { schema: { $ref: '#/components/schemas/CreateUserBody' } } })
    t.same(doc.paths['/token']!.post!.requestBody!.content, { 'application/x-www-form-urlencoded': { schema: { $ref: '#/components/schemas/TokenRequest' } } })
    t.equal(doc.paths['/users']!.post!.responses['201']!.content!['application/json']!.schema.$ref, '#/components/schemas/User')
    t.equal(doc.paths['/token']!.post!.responses['200']!.content!['application/json']!.schema.$ref, '#/components/schemas/TokenResponse')
  })

  t.test('the shared schemas are named components', async t => {
    for (const name of ['Problem', 'OAuthError', 'User', 'CreateUserBody', 'TokenRequest', 'TokenResponse', 'AuthStatus', 'AuthorizationServerMetadata', 'JsonWebKeySet',
      'ChangePasswordBody', 'DeleteAccountBody', 'SessionList', 'SecurityEventList']) {
      t.ok(doc.components.schemas[name], name)
    }
    t.match(doc.components.schemas.Problem, { type: 'object', required: ['type', 'title', 'status', 'detail'] })
    t.match(doc.components.schemas.OAuthError, { type: 'object', required: ['error', 'error_description'] })
  })

  t.test('an OAuth2 password-flow security scheme against /token', async t => {
    t.match(doc.components.securitySchemes.OAuth2PasswordBearer, { type: 'oauth2', flows: { password: { tokenUrl: '/token', scopes: {} } } })
  })
})

t.test('GET /docs: Swagger UI over the same document', async t => {
  const { fastify } = await appWithRoutes(t)
  const page = await fastify.inject({ method: 'GET', url: '/docs' })
  t.equal(page.statusCode, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.body, /swagger-ui/)
  const initializer = await fastify.inject({ method: 'GET', url: '/docs/static/swagger-initializer.js' })
  t.equal(initializer.statusCode, 200)
  t.match(initializer.body, /"persistAuthorization":true/)
  const bundle = await fastify.inject({ method: 'GET', url: '/docs/static/swagger-ui-bundle.js' })
  t.equal(bundle.statusCode, 200)
  t.same((await fastify.inject({ method: 'GET', url: '/docs/json' })).json(), (await fastify.inject({ method: 'GET', url: '/openapi.json' })).json())
  t.equal((await fastify.inject({ method: 'POST', url: '/openapi.json' })).statusCode, 405)
})

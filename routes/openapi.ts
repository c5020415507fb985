import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { Type } from '@sinclair/typebox'

const openapi: FastifyPluginAsyncTypebox = async (fastify) => {
  fastify.get('/openapi.json', {
    schema: {
      operationId: 'getOpenApiDocument',
      tags: ['discovery'],
      summary: 'This OpenAPI 3.1 document',
      description: 'Generated from the route schemas at start; the same document Swagger UI shows at `/docs`.',
      response: {
        200: Type.Unsafe<Record<string, unknown>>({ type: 'object', additionalProperties: true, description: 'An OpenAPI 3.1 document.' })
      }
    }
  }, async () => fastify.swagger() as unknown as Record<string, unknown>)
}

export default openapi

import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { components } from '../src/schemas/components.js'

/** Shared schemas, added at the root before any route refers to them. */
async function schemasPlugin (fastify: FastifyInstance) {
  for (const [name, schema] of Object.entries(components)) {
    fastify.addSchema({ ...schema, $id: name, title: name })
  }
}

export default fp(schemasPlugin, { name: 'schemas' })

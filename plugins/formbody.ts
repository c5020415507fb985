import fastifyFormbody from '@fastify/formbody'
import fp from 'fastify-plugin'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { UnsupportedMediaType } from '../src/errors.js'

/**
 * JSON (Fastify's own parser) and HTML forms (RFC 6749 §3.2) are the only bodies the service
 * reads; each route names the one it takes with `acceptOnly`.
 */
async function formbodyPlugin (fastify: FastifyInstance) {
  fastify.removeContentTypeParser('text/plain')
  await fastify.register(fastifyFormbody)
}

export type MediaType = 'application/json' | 'application/x-www-form-urlencoded'

/** An onRequest hook refusing, before any parsing, a body of another media type with 415. */
export function acceptOnly (mediaType: MediaType) {
  return async function checkContentType (request: FastifyRequest) {
    const header = request.headers['content-type']
    if (header === undefined) return
    const semicolon = header.indexOf(';')
    const type = (semicolon === -1 ? header : header.slice(0, semicolon)).trim().toLowerCase()
    if (type !== mediaType) throw new UnsupportedMediaType(mediaType)
  }
}

export default fp(formbodyPlugin, { name: 'formbody' })

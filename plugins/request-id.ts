import type { IncomingMessage } from 'node:http'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import { uuidv4 } from '../src/uuidv4.js'

const CLIENT_REQUEST_ID = /^[A-Za-z0-9._-]{1,128}$/

/** Fastify's `genReqId`: the client's own X-Request-Id when it is safe to echo and log. */
export function requestId (request: IncomingMessage): string {
  const id = request.headers['x-request-id']
  return typeof id === 'string' && CLIENT_REQUEST_ID.test(id) ? id : uuidv4()
}

async function requestIdPlugin (fastify: FastifyInstance) {
  fastify.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done()
  })

  if (fastify.config.logLevel === 'debug' || fastify.config.logLevel === 'trace') {
    fastify.addHook('onResponse', async (request, reply) => {
      request.log.debug({
        method: request.method,
        url: request.url,
        statusCode: reply.statusCode,
        address: request.ip,
        responseTime: reply.elapsedTime
      }, 'request completed')
    })
  }
}

export default fp(requestIdPlugin, { name: 'request-id', dependencies: ['config'] })

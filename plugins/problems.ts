import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import fp from 'fastify-plugin'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { isDatabaseUnavailable, isOAuthError, MissingHost, oauthErrorCode, ServiceUnavailable } from '../src/errors.js'
import type { Problem } from '../src/schemas/problems.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Errors on this route are RFC 6749 §5.2 bodies instead of problem details. */
    oauth?: boolean
  }
}

export const REALM = 'auth-service'

/** Client errors whose own message is not fit for a client, and what to say instead. */
const DETAILS: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'The request body is larger than 16 KiB',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'The request body has a content type this endpoint does not accept',
  FST_ERR_CTP_INVALID_JSON_BODY: 'The request body is not valid JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'The request body is empty',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'The Content-Length header does not match the body',
  FST_ERR_BAD_URL: 'The request URL is not valid',
  FST_ERR_MAX_PARAM_LENGTH: 'The request URL is too long'
}
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']

interface FieldError { field: string, message: string }

/**
 * One error handler for the whole service: RFC 9457 problem details everywhere, RFC 6749
 * error bodies on the OAuth endpoints, and nothing internal in either.
 */
async function problemsPlugin (fastify: FastifyInstance) {
  const allowed = new Map<string, Set<string>>()
  fastify.addHook('onRoute', ({ url, method }) => {
    const methods = allowed.get(url) ?? new Set()
    for (const m of [method].flat()) methods.add(m)
    allowed.set(url, methods)
  })

  // Node answers these two itself, with no body and no request id; serverOptions turns its Host
  // check off so the service can make the same refusal a problem.
  // @see https://www.rfc-editor.org/rfc/rfc9112#section-3.2
  fastify.addHook('onRequest', (request, reply, done) => {
    done(request.headers.host === undefined && request.raw.httpVersion === '1.1' ? new MissingHost() : undefined)
  })
  // An expectation other than 100-continue MAY be refused with 417 (RFC 9110 §10.1.1); it is
  // ignored instead, and the request served as if it had none.
  fastify.server.on('checkExpectation', (req, res) => fastify.server.emit('request', req, res))

  fastify.setErrorHandler(function errorHandler (error: FastifyError, request, reply) {
    if (isDatabaseUnavailable(error)) {
      request.log.warn({ err: error }, 'the database is unavailable')
      error = new ServiceUnavailable('The service is temporarily unavailable; try again shortly')
    }
    const status = statusOf(error)
    if (status >= 500 && status !== 503) {
      request.log.error({ err: error }, 'request failed')
    } else {
      request.log.debug({ code: error.code, reason: error.message }, 'request refused')
    }

    const retryAfter = (error as { retryAfter?: number }).retryAfter ?? (status === 503 ? 5 : undefined)
    if (retryAfter !== undefined && !reply.hasHeader('retry-after')) reply.header('retry-after', String(retryAfter))
    if (status === 429) request.log.info({ address: request.ip, url: request.url }, 'too many requests')
    if (request.routeOptions.config.oauth === true) return sendOAuthError(error, status, request, reply)

    if (error.code === 'AUTH_MISSING_TOKEN') {
      reply.header('www-authenticate', `Bearer realm="${REALM}"`)
    } else if (error.code === 'AUTH_INVALID_TOKEN') {
      reply.header('www-authenticate', `Bearer realm="${REALM}", error="invalid_token", error_description="${error.message}"`)
    } else if (error.code === 'AUTH_REPEATED_AUTHORIZATION') {
      reply.header('www-authenticate', `Bearer realm="${REALM}", error="invalid_request", error_description="${error.message}"`)
    }

    const problem: Problem = {
      type: 'about:blank',
      title: STATUS_CODES[status] ?? 'Error',
      status,
      detail: detailOf(error, status)
    }
    const errors = fieldErrors(error)
    if (errors !== undefined) problem.errors = errors
    // RFC 9457 §3.2 extension members a route adds to its problem (the response schema decides what leaves).
    const extensions = (error as { extensions?: Record<string, unknown> }).extensions
    if (extensions !== undefined) Object.assign(problem, extensions)
    return reply.code(status).type('application/problem+json; charset=utf-8').send(problem)
  })

  fastify.setNotFoundHandler(function notFound (request, reply) {
    const path = request.url.split('?', 1)[0]!
    const methods = allowed.get(path)
    if (methods === undefined) {
      return reply.code(404).type('application/problem+json; charset=utf-8').send({
        type: 'about:blank', title: 'Not Found', status: 404, detail: `No resource at ${path}`
      })
    }
    const allow = METHODS.filter(m => methods.has(m)).join(', ')
    return reply.code(405).header('allow', allow).type('application/problem+json; charset=utf-8').send({
      type: 'about:blank', title: 'Method Not Allowed', status: 405, detail: `${path} accepts ${allow}`
    })
  })
}

function statusOf (error: FastifyError): number {
  if (error.validation !== undefined) return 400
  const status = error.statusCode
  return typeof status === 'number' && status >= 400 && status <= 599 ? status : 500
}

function detailOf (error: FastifyError, status: number): string {
  if (status >= 500) return status === 503 ? error.message : 'The server could not complete the request'
  if (error.validation !== undefined) return 'The request is not valid'
  return DETAILS[error.code] ?? (error.code === undefined ? STATUS_CODES[status] ?? 'Error' : error.message)
}

function fieldErrors (error: FastifyError): FieldError[] | undefined {
  if (error.code === 'USER_INVALID_FIELD') {
    const [field = '', message = ''] = error.message.split(/ (.*)/s)
    return [{ field, message }]
  }
  if (error.validation === undefined) return undefined
  return error.validation.map(({ keyword, instancePath, params, message }) => {
    let field = instancePath.replace(/^\//, '').replaceAll('/', '.')
    if (keyword === 'required') field = String(params.missingProperty)
    if (keyword === 'additionalProperties') {
      return { field: String(params.additionalProperty), message: 'is not an accepted property' }
    }
    if (keyword === 'format' && params.format === 'email') return { field, message: 'must be an email address' }
    return { field: field || (error.validationContext ?? 'body'), message: message ?? 'is not valid' }
  })
}

/** @see https://www.rfc-editor.org/rfc/rfc6749#section-5.2 */
function sendOAuthError (error: FastifyError, status: number, request: FastifyRequest, reply: FastifyReply) {
  let code = 'invalid_request'
  let description = detailOf(error, status)
  if (isOAuthError(error)) {
    code = oauthErrorCode(error)
    description = error.message
  } else if (error.validation !== undefined) {
    description = oauthValidationMessage(error, request.body)
  } else if (status >= 500) {
    code = status === 503 ? 'temporarily_unavailable' : 'server_error'
  }
  return reply.code(status).type('application/json; charset=utf-8').send({ error: code, error_description: description })
}

function oauthValidationMessage (error: FastifyError, body: unknown): string {
  const first = error.validation![0]!
  if (first.keyword === 'required') return `The ${String(first.params.missingProperty)} parameter is missing`
  const name = first.instancePath.replace(/^\//, '')
  if (name !== '' && Array.isArray((body as Record<string, unknown>)?.[name])) return `The ${name} parameter is repeated`
  return name === '' ? 'The request body must be a form' : `The ${name} parameter is not valid`
}

/**
 * Fastify's `frameworkErrors`: errors met before routing, such as a path that does not
 * percent-decode (`/%zz`), which the error handler and the onRequest hooks never see.
 */
export function frameworkErrors (error: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  const status = statusOf(error)
  request.log.debug({ code: error.code }, 'request refused before routing')
  const problem: Problem = { type: 'about:blank', title: STATUS_CODES[status] ?? 'Error', status, detail: detailOf(error, status) }
  reply.code(status).header('x-request-id', request.id).type('application/problem+json; charset=utf-8').send(problem)
}

/**
 * Fastify's `clientErrorHandler`: requests Node's HTTP parser refuses before Fastify sees them
 * (a NUL or a bare CR in a header, a bad Content-Length, headers over 16 KiB, a request that
 * times out) get a problem and a request id like every other answer, not Fastify's bare JSON.
 */
export function clientErrorHandler (this: FastifyInstance, err: Error & { code?: string }, socket: Socket) {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const status = err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400
  const title = STATUS_CODES[status]!
  const detail = status === 408
    ? 'The request did not arrive in time'
    : status === 431 ? 'The request headers are larger than 16 KiB' : 'The request is not valid HTTP'
  this.log.debug({ code: err.code }, 'client error')
  // Only when nothing of another answer went out on this connection yet (Node's own rule).
  if (socket.writable && socket.bytesWritten === 0) {
    const body = JSON.stringify({ type: 'about:blank', title, status, detail } satisfies Problem)
    // Headers too large: the request line was read, so a HEAD is answered with the headers alone
    // (RFC 9110 §9.3.2). Other refusals never got as far as knowing the method.
    const head = status === 431 && (err as { rawPacket?: Buffer }).rawPacket?.subarray(0, 5).toString('latin1') === 'HEAD '
    socket.write(`HTTP/1.1 ${status} ${title}\r\nContent-Type: application/problem+json; charset=utf-8\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${randomUUID()}\r\nConnection: close\r\n\r\n${head ? '' : body}`)
  }
  socket.destroy(err)
}

export default fp(problemsPlugin, { name: 'problems' })

import type { Writable } from 'node:stream'
import type { FastifyBaseLogger } from 'fastify'
import { pino, type Bindings, type ChildLoggerOptions } from 'pino'
import type { Config } from './config.js'

/**
 * The service's logger: JSON lines on stdout (or `stream`) from LOG_LEVEL up, with credentials
 * redacted wherever they appear. None when LOG_LEVEL is `silent`.
 *
 * The service makes it rather than have Fastify make it from options: Fastify that has a logger
 * puts two listeners on every response, for a "request completed" line the service turns off
 * (plugins/request-id.ts writes its own at debug), which was about 4% of an anonymous request.
 * So Fastify is told there is none, and given this one as `fastify.log` and through
 * `childLoggerFactory` (see buildApp): every log call reaches it as before.
 */
export function createLogger (config: Config, stream?: Writable): FastifyBaseLogger | undefined {
  if (config.logLevel === 'silent') return undefined
  return pino({
    level: config.logLevel,
    serializers: { err: pino.stdSerializers.err },
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.access_token', '*.refresh_token', '*.token'],
      censor: '[redacted]'
    }
  }, stream)
}

type Log = (...args: unknown[]) => void

/**
 * Fastify gives every request a pino child logger with the request id bound. Making one costs
 * about 2 µs with the service's redaction on (pino runs each binding through the redactor), a
 * good part of an anonymous request, and nearly every request logs nothing. This stand-in makes
 * that child on the request's first log call, with the same bindings and options, so the lines
 * are the same.
 */
class RequestLogger {
  #child: FastifyBaseLogger | undefined
  readonly #parent: FastifyBaseLogger
  readonly #bindings: Bindings
  readonly #options: ChildLoggerOptions

  constructor (parent: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions) {
    this.#parent = parent
    this.#bindings = bindings
    this.#options = options
  }

  get #logger (): FastifyBaseLogger {
    return (this.#child ??= this.#parent.child(this.#bindings, this.#options))
  }

  get level () { return this.#child?.level ?? this.#options.level ?? this.#parent.level }
  set level (level) { this.#logger.level = level }

  fatal (...args: unknown[]) { (this.#logger.fatal as Log)(...args) }
  error (...args: unknown[]) { (this.#logger.error as Log)(...args) }
  warn (...args: unknown[]) { (this.#logger.warn as Log)(...args) }
  info (...args: unknown[]) { (this.#logger.info as Log)(...args) }
  debug (...args: unknown[]) { (this.#logger.debug as Log)(...args) }
  trace (...args: unknown[]) { (this.#logger.trace as Log)(...args) }
  silent (...args: unknown[]) { (this.#logger.silent as Log)(...args) }

  child (bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.#logger.child(bindings, options)
  }
}

/** Fastify's `childLoggerFactory`: a request's logger, a child of `root` made when it first logs. */
export function requestLoggers (root: FastifyBaseLogger) {
  return (_fastifysOwn: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger =>
    new RequestLogger(root, bindings, options) as unknown as FastifyBaseLogger
}

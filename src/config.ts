import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { Type, type Static } from '@sinclair/typebox'
import envSchema from 'env-schema'
import { algorithmOf, KEY_KINDS, type AsymmetricAlgorithm } from './signing-keys.js'

export const EnvSchema = Type.Object({
  NODE_ENV: Type.Union([Type.Literal('development'), Type.Literal('production'), Type.Literal('test')], { default: 'development' }),
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  PORT: Type.Integer({ minimum: 0, maximum: 65535, default: 3000 }),
  DATABASE_URL: Type.String({ pattern: '^(sqlite:.+|mysql://.+)$', default: 'sqlite:./data/auth.db' }),
  REDIS_URL: Type.Optional(Type.String({ pattern: '^rediss?://' })),
  JWT_SECRET: Type.Optional(Type.String()),
  JWT_ALGORITHM: Type.Union([Type.Literal('HS256'), Type.Literal('EdDSA'), Type.Literal('ES256'), Type.Literal('RS256')], { default: 'HS256' }),
  JWT_PRIVATE_KEY: Type.Optional(Type.String()),
  JWT_PREVIOUS_PUBLIC_KEYS: Type.Optional(Type.String()),
  PUBLIC_URL: Type.Optional(Type.String({ pattern: '^https?://[^/]+' })),
  JWT_ISSUER: Type.Optional(Type.String({ minLength: 1 })),
  JWT_AUDIENCE: Type.Optional(Type.String({ minLength: 1 })),
  JWT_CLOCK_SKEW: Type.Integer({ minimum: 0, maximum: 300, default: 30 }),
  ACCESS_TOKEN_TTL: Type.Integer({ minimum: 1, default: 900 }),
  REFRESH_TOKEN_TTL: Type.Integer({ minimum: 1, default: 2_592_000 }),
  ARGON2_MEMORY_KIB: Type.Integer({ minimum: 1024, maximum: 4_194_304, default: 19_456 }),
  ARGON2_ITERATIONS: Type.Integer({ minimum: 1, maximum: 100, default: 2 }),
  ARGON2_PARALLELISM: Type.Integer({ minimum: 1, maximum: 16, default: 1 }),
  PASSWORD_HASH_CONCURRENCY: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
  PASSWORD_HASH_QUEUE: Type.Integer({ minimum: 0, default: 64 }),
  /** libuv's own variable, read here so the service knows how many threads hash. */
  UV_THREADPOOL_SIZE: Type.Integer({ minimum: 1, maximum: 1024, default: 4 }),
  LOG_LEVEL: Type.Union(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map(l => Type.Literal(l)), { default: 'info' }),
  LOGIN_LIMIT_PER_ACCOUNT: Type.Integer({ minimum: 1, default: 10 }),
  LOGIN_LIMIT_PER_ADDRESS: Type.Integer({ minimum: 1, default: 100 }),
  LOGIN_LIMIT_WINDOW: Type.Integer({ minimum: 1, default: 900 }),
  RATE_LIMIT_PER_MINUTE: Type.Integer({ minimum: 0, default: 0 }),
  TRUST_PROXY: Type.Optional(Type.String({ minLength: 1 })),
  CORS_ORIGINS: Type.Optional(Type.String()),
  MIGRATE_ON_START: Type.Boolean({ default: true }),
  METRICS_PORT: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
  METRICS_HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  OTEL_EXPORTER_OTLP_ENDPOINT: Type.Optional(Type.String({ pattern: '^https?://[^/]+' })),
  READY_OUTBOX_MAX_AGE: Type.Integer({ minimum: 0, default: 3600 }),
  DATABASE_CAUSAL_READS: Type.Boolean({ default: true }),
  SMTP_URL: Type.Optional(Type.String({ pattern: '^smtps?://[^/]+' })),
  MAIL_FROM: Type.String({ pattern: '^[^\\r\\n]*@[^\\r\\n]+$', default: 'auth@localhost' }),
  MAIL_OUTBOX_DIR: Type.Optional(Type.String({ minLength: 1 })),
  PASSWORD_RESET_URL: Type.Optional(Type.String({ pattern: '^https?://.*\\{token\\}' })),
  EMAIL_VERIFICATION_URL: Type.Optional(Type.String({ pattern: '^https?://.*\\{token\\}' })),
  PASSWORD_RESET_TTL: Type.Integer({ minimum: 60, maximum: 86_400, default: 1800 }),
  EMAIL_VERIFICATION_TTL: Type.Integer({ minimum: 60, maximum: 2_592_000, default: 86_400 }),
  PASSWORD_RESET_LIMIT: Type.Integer({ minimum: 1, maximum: 100, default: 3 }),
  REQUIRE_VERIFIED_EMAIL: Type.Boolean({ default: false }),
  AUDIT_RETENTION_DAYS: Type.Integer({ minimum: 1, maximum: 36_500, default: 90 })
})

type Env = Static<typeof EnvSchema>

export type Database =
  | { kind: 'sqlite', path: string }
  | { kind: 'mysql', url: string }

/**
 * How access tokens are signed: with a shared secret (HS256), or with a private key whose
 * public half, and those of retired keys still accepted, are published as a JWKS.
 */
export type SigningKeys =
  | { algorithm: 'HS256', secret: string }
  | {
    algorithm: AsymmetricAlgorithm
    /** PEM (PKCS #8) */
    privateKey: string
    /** PEM (SPKI) public keys of retired signing keys, verified until they are removed. */
    previousPublicKeys: string[]
  }

export interface Config {
  env: Env['NODE_ENV']
  host: string
  port: number
  publicUrl: string
  database: Database
  redisUrl?: string
  jwt: SigningKeys & {
    issuer: string
    audience: string
    clockSkew: number
    accessTokenTtl: number
    refreshTokenTtl: number
  }
  argon2: { memoryCost: number, timeCost: number, parallelism: number }
  /** Hashes in flight (default: the cores this process may use) and how many may wait. */
  hashing: { concurrency?: number, queue: number, threadPoolSize: number }
  logLevel: string
  loginLimit: { perAccount: number, perAddress: number, window: number }
  rateLimitPerMinute: number
  trustProxy?: boolean | string
  corsOrigins: string[]
  migrateOnStart: boolean
  /** The Prometheus listener, apart from the API's; off without a port. */
  metrics?: { port: number, host: string }
  /** OTLP/HTTP traces go to `${otlpEndpoint}/v1/traces`; unset, tracing is not even loaded. */
  otlpEndpoint?: string
  /** Seconds the oldest outbox message may wait before /ready fails; 0: reported, never failing. */
  readyOutboxMaxAge: number
  /** On a Galera cluster, the reads that authenticate wait for writes made on other nodes. */
  causalReads: boolean
  mail: {
    /** Unset: the development outbox (files in `outboxDir`), or no mail at all in production. */
    smtpUrl?: string
    from: string
    outboxDir: string
  }
  /** Links carry `{token}`, replaced by the token. TTLs in seconds; `limit` emails per account per hour. */
  passwordReset: { url: string, ttl: number, limit: number }
  emailVerification: { url: string, ttl: number, required: boolean }
  /** How long security events are kept, in days. */
  auditRetentionDays: number
}

export class ConfigError extends Error {
  override name = 'ConfigError'
}

/** The smallest HS256 key the service accepts (RFC 7518 §3.2: at least the hash size). */
const MIN_SECRET_BYTES = 32
const WEAK_SECRETS = new Set(['secret', 'changeme', 'change-me', 'jwt-secret', 'supersecret', 'development'])

export function loadConfig (source: NodeJS.ProcessEnv = process.env): Config {
  const env = readEnv(source)
  const publicUrl = (env.PUBLIC_URL ?? `http://${hostForUrl(env.HOST)}:${env.PORT}`).replace(/\/+$/, '')
  const database = parseDatabaseUrl(env.DATABASE_URL)
  if (env.NODE_ENV === 'production' && database.kind === 'sqlite' && database.path === ':memory:') {
    throw new ConfigError('Invalid configuration: DATABASE_URL=sqlite::memory: loses every account on restart and is refused in production')
  }

  return {
    env: env.NODE_ENV,
    host: env.HOST,
    port: env.PORT,
    publicUrl,
    database,
    redisUrl: env.REDIS_URL,
    jwt: {
      ...resolveSigningKeys(env, database),
      issuer: env.JWT_ISSUER ?? publicUrl,
      audience: env.JWT_AUDIENCE ?? publicUrl,
      clockSkew: env.JWT_CLOCK_SKEW,
      accessTokenTtl: env.ACCESS_TOKEN_TTL,
      refreshTokenTtl: env.REFRESH_TOKEN_TTL
    },
    argon2: {
      memoryCost: env.ARGON2_MEMORY_KIB,
      timeCost: env.ARGON2_ITERATIONS,
      parallelism: env.ARGON2_PARALLELISM
    },
    hashing: { concurrency: env.PASSWORD_HASH_CONCURRENCY, queue: env.PASSWORD_HASH_QUEUE, threadPoolSize: env.UV_THREADPOOL_SIZE },
    logLevel: env.LOG_LEVEL,
    loginLimit: {
      perAccount: env.LOGIN_LIMIT_PER_ACCOUNT,
      perAddress: env.LOGIN_LIMIT_PER_ADDRESS,
      window: env.LOGIN_LIMIT_WINDOW
    },
    rateLimitPerMinute: env.RATE_LIMIT_PER_MINUTE,
    trustProxy: parseTrustProxy(env.TRUST_PROXY),
    corsOrigins: (env.CORS_ORIGINS ?? '').split(',').map(o => o.trim()).filter(Boolean),
    migrateOnStart: env.MIGRATE_ON_START,
    metrics: env.METRICS_PORT === undefined ? undefined : { port: env.METRICS_PORT, host: env.METRICS_HOST },
    otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT?.replace(/\/+$/, ''),
    readyOutboxMaxAge: env.READY_OUTBOX_MAX_AGE,
    causalReads: env.DATABASE_CAUSAL_READS,
    mail: {
      smtpUrl: env.SMTP_URL,
      from: env.MAIL_FROM,
      outboxDir: resolve(env.MAIL_OUTBOX_DIR ?? join(database.kind === 'sqlite' && database.path !== ':memory:' ? dirname(database.path) : 'data', 'outbox'))
    },
    passwordReset: {
      url: env.PASSWORD_RESET_URL ?? `${publicUrl}/reset-password?token={token}`,
      ttl: env.PASSWORD_RESET_TTL,
      limit: env.PASSWORD_RESET_LIMIT
    },
    emailVerification: {
      url: env.EMAIL_VERIFICATION_URL ?? `${publicUrl}/verify-email?token={token}`,
      ttl: env.EMAIL_VERIFICATION_TTL,
      required: env.REQUIRE_VERIFIED_EMAIL
    },
    auditRetentionDays: env.AUDIT_RETENTION_DAYS
  }
}

function readEnv (source: NodeJS.ProcessEnv): Env {
  // Empty variables count as unset, as they do in most shells' `VAR= cmd`.
  const data = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== ''))
  try {
    return envSchema<Env>({ schema: EnvSchema, data, dotenv: false })
  } catch (err) {
    throw new ConfigError(`Invalid configuration: ${(err as Error).message.replace(/env\//g, '')}`)
  }
}

function parseDatabaseUrl (url: string): Database {
  if (url.startsWith('sqlite:')) {
    const path = url.slice('sqlite:'.length)
    return { kind: 'sqlite', path: path === ':memory:' ? path : resolve(path) }
  }
  try {
    const parsed = new URL(url)
    if (parsed.pathname.length <= 1) throw new Error('no database name')
  } catch {
    throw new ConfigError('Invalid configuration: DATABASE_URL must look like mysql://user:pass@host:3306/database')
  }
  return { kind: 'mysql', url }
}

function resolveSigningKeys (env: Env, database: Database): SigningKeys {
  const algorithm = env.JWT_ALGORITHM
  if (algorithm === 'HS256') {
    for (const name of ['JWT_PRIVATE_KEY', 'JWT_PREVIOUS_PUBLIC_KEYS'] as const) {
      if (env[name] !== undefined) throw new ConfigError(`Invalid configuration: ${name} is only used with JWT_ALGORITHM=EdDSA, ES256 or RS256`)
    }
    return { algorithm, secret: resolveSecret(env, database) }
  }

  if (env.JWT_PRIVATE_KEY === undefined) {
    throw new ConfigError(`Invalid configuration: JWT_ALGORITHM=${algorithm} needs JWT_PRIVATE_KEY, a PEM private key or the path of a PEM file (try: npm run keys -- ${algorithm})`)
  }
  const pems = readPems(env.JWT_PRIVATE_KEY, 'JWT_PRIVATE_KEY', 'PRIVATE KEY')
  if (pems.length !== 1) throw new ConfigError('Invalid configuration: JWT_PRIVATE_KEY must hold exactly one PEM private key')
  let key
  try {
    key = createPrivateKey(pems[0]!)
  } catch {
    throw new ConfigError('Invalid configuration: JWT_PRIVATE_KEY is not an unencrypted PEM private key')
  }
  if (algorithmOf(key) !== algorithm) {
    throw new ConfigError(`Invalid configuration: JWT_PRIVATE_KEY must be ${KEY_KINDS[algorithm]} for JWT_ALGORITHM=${algorithm}`)
  }

  const previous = env.JWT_PREVIOUS_PUBLIC_KEYS === undefined ? [] : readPems(env.JWT_PREVIOUS_PUBLIC_KEYS, 'JWT_PREVIOUS_PUBLIC_KEYS', 'PUBLIC KEY')
  const previousPublicKeys = previous.map(pem => {
    let publicKey
    try {
      publicKey = createPublicKey(pem)
    } catch {
      throw new ConfigError('Invalid configuration: JWT_PREVIOUS_PUBLIC_KEYS holds something that is not a PEM public key')
    }
    if (algorithmOf(publicKey) === undefined) {
      throw new ConfigError('Invalid configuration: JWT_PREVIOUS_PUBLIC_KEYS accepts Ed25519, EC P-256 and RSA (2048 bits or more) public keys only')
    }
    return publicKey.export({ type: 'spki', format: 'pem' }).toString()
  })

  return { algorithm, privateKey: key.export({ type: 'pkcs8', format: 'pem' }).toString(), previousPublicKeys }
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]*?-----END \1-----/g

/**
 * The PEM blocks of one kind (labels ending in `PRIVATE KEY` or `PUBLIC KEY`) in a variable that
 * holds either PEM text (several blocks may follow one another, text around them is ignored, and
 * `\n` escapes stand for newlines, as env files often write them) or the paths of PEM files,
 * separated by commas or newlines. So the file `npm run keys` writes serves as JWT_PRIVATE_KEY
 * and, once retired, in JWT_PREVIOUS_PUBLIC_KEYS.
 */
function readPems (value: string, name: string, kind: 'PRIVATE KEY' | 'PUBLIC KEY'): string[] {
  let texts: string[]
  if (value.includes('-----BEGIN')) {
    texts = [value.includes('\n') ? value : value.replaceAll('\\n', '\n')]
  } else {
    texts = value.split(/[,\n]/).map(p => p.trim()).filter(Boolean).map(path => {
      try {
        return readFileSync(path, 'utf8')
      } catch {
        throw new ConfigError(`Invalid configuration: ${name} names ${path}, which is neither PEM text nor a readable file`)
      }
    })
  }
  const pems = texts.flatMap(text => [...text.matchAll(PEM_BLOCK)])
    .filter(([, label]) => label!.endsWith(kind))
    .map(([pem]) => pem)
  if (pems.length === 0) throw new ConfigError(`Invalid configuration: ${name} holds no PEM ${kind.toLowerCase()}`)
  return pems
}

function resolveSecret (env: Env, database: Database): string {
  const secret = env.JWT_SECRET
  if (secret !== undefined) {
    if (Buffer.byteLength(secret) < MIN_SECRET_BYTES || WEAK_SECRETS.has(secret.toLowerCase())) {
      throw new ConfigError(`Invalid configuration: JWT_SECRET must be a random string of at least ${MIN_SECRET_BYTES} bytes (try: openssl rand -base64 48)`)
    }
    return secret
  }
  if (env.NODE_ENV === 'production' || database.kind === 'mysql') {
    throw new ConfigError('Invalid configuration: set JWT_SECRET to a random string of at least 32 bytes (try: openssl rand -base64 48); it is required with MySQL and in production')
  }
  if (database.path === ':memory:') return randomBytes(48).toString('base64url')
  return persistentSecret(join(dirname(database.path), 'jwt-secret'))
}

/** A development secret kept beside the SQLite file, so tokens survive restarts. */
function persistentSecret (file: string): string {
  mkdirSync(dirname(file), { recursive: true })
  try {
    writeFileSync(file, randomBytes(48).toString('base64url'), { mode: 0o600, flag: 'wx' })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  return readFileSync(file, 'utf8').trim()
}

function parseTrustProxy (value: string | undefined): Config['trustProxy'] {
  if (value === undefined || value === 'false') return undefined
  if (value === 'true') return true
  return value
}

function hostForUrl (host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost'
  return host.includes(':') ? `[${host}]` : host
}

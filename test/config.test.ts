import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadConfig, type Config } from '../src/config.js'

const SECRET = 'a-secret-that-is-long-enough-for-hs256-0123456789'

function secretOf (config: Config): string {
  if (config.jwt.algorithm !== 'HS256') throw new Error(`expected HS256, got ${config.jwt.algorithm}`)
  return config.jwt.secret
}

t.test('defaults suit a first run on a laptop', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const config = loadConfig({ DATABASE_URL: `sqlite:${join(dir, 'auth.db')}` })
  t.equal(config.host, '127.0.0.1')
  t.equal(config.port, 3000)
  t.equal(config.publicUrl, 'http://127.0.0.1:3000')
  t.equal(config.jwt.issuer, 'http://127.0.0.1:3000')
  t.equal(config.jwt.audience, 'http://127.0.0.1:3000')
  t.equal(config.jwt.accessTokenTtl, 900)
  t.equal(config.jwt.refreshTokenTtl, 2_592_000)
  t.equal(config.jwt.clockSkew, 30)
  t.same(config.argon2, { memoryCost: 19_456, timeCost: 2, parallelism: 1 })
  t.same(config.loginLimit, { perAccount: 10, perAddress: 100, window: 900 })
  t.equal(config.rateLimitPerMinute, 0)
  t.equal(config.migrateOnStart, true)
  t.equal(config.causalReads, true)
  t.same(config.corsOrigins, [])
  t.equal(config.trustProxy, undefined)
})

t.test('the default database is ./data/auth.db', async t => {
  const config = loadConfig({ JWT_SECRET: SECRET })
  t.same(config.database, { kind: 'sqlite', path: join(process.cwd(), 'data', 'auth.db') })
})

t.test('with SQLite and no secret, one is generated once and kept with mode 0600', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = { DATABASE_URL: `sqlite:${join(dir, 'db', 'auth.db')}` }
  const first = secretOf(loadConfig(env))
  t.ok(Buffer.byteLength(first) >= 32)
  t.equal(secretOf(loadConfig(env)), first, 'the same secret after a restart')
  const file = join(dir, 'db', 'jwt-secret')
  t.equal(readFileSync(file, 'utf8'), first)
  t.equal(statSync(file).mode & 0o777, 0o600)
})

t.test('settings parse from strings', async t => {
  const config = loadConfig({
    DATABASE_URL: 'sqlite::memory:',
    PORT: '8080',
    HOST: '0.0.0.0',
    ACCESS_TOKEN_TTL: '60',
    MIGRATE_ON_START: 'false',
    DATABASE_CAUSAL_READS: 'false',
    CORS_ORIGINS: 'https://a.example, https://b.example',
    TRUST_PROXY: '10.0.0.1,10.0.0.2',
    PUBLIC_URL: 'https://auth.example.com/'
  })
  t.equal(config.port, 8080)
  t.equal(config.jwt.accessTokenTtl, 60)
  t.equal(config.migrateOnStart, false)
  t.equal(config.causalReads, false)
  t.same(config.corsOrigins, ['https://a.example', 'https://b.example'])
  t.equal(config.trustProxy, '10.0.0.1,10.0.0.2')
  t.equal(config.publicUrl, 'https://auth.example.com')
  t.equal(config.jwt.issuer, 'https://auth.example.com')
  t.equal(loadConfig({ DATABASE_URL: 'sqlite::memory:', HOST: '0.0.0.0' }).publicUrl, 'http://localhost:3000')
  t.equal(loadConfig({ DATABASE_URL: 'sqlite::memory:', TRUST_PROXY: 'true' }).trustProxy, true)
})

t.test('a bad setting is refused with a message naming the variable', async t => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ PORT: 'eighty' }, /PORT/],
    [{ PORT: '70000' }, /PORT/],
    [{ DATABASE_URL: 'postgres://x/y' }, /DATABASE_URL/],
    [{ DATABASE_URL: 'mysql://root@localhost' }, /DATABASE_URL/],
    [{ ACCESS_TOKEN_TTL: '0' }, /ACCESS_TOKEN_TTL/],
    [{ LOG_LEVEL: 'loud' }, /LOG_LEVEL/],
    [{ ARGON2_MEMORY_KIB: '10' }, /ARGON2_MEMORY_KIB/],
    [{ MIGRATE_ON_START: 'maybe' }, /MIGRATE_ON_START/],
    [{ JWT_SECRET: 'short' }, /JWT_SECRET/],
    [{ JWT_SECRET: 'changeme' }, /JWT_SECRET/],
    [{ DATABASE_URL: 'mysql://root@127.0.0.1:3306/auth' }, /JWT_SECRET/],
    [{ NODE_ENV: 'production', DATABASE_URL: 'sqlite:/tmp/x.db' }, /JWT_SECRET/],
    [{ NODE_ENV: 'production', DATABASE_URL: 'sqlite::memory:', JWT_SECRET: SECRET }, /DATABASE_URL/]
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig({ DATABASE_URL: 'sqlite::memory:', ...env }), { name: 'ConfigError', message }, JSON.stringify(env))
  }
})

t.test('MySQL with a strong secret is accepted', async t => {
  const config = loadConfig({ DATABASE_URL: 'mysql://u:p@db:3306/auth', JWT_SECRET: SECRET })
  t.same(config.database, { kind: 'mysql', url: 'mysql://u:p@db:3306/auth' })
  t.equal(secretOf(config), SECRET)
})

t.test('email settings: defaults, links from PUBLIC_URL, and refusals', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-config-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const config = loadConfig({ DATABASE_URL: `sqlite:${join(dir, 'auth.db')}`, PUBLIC_URL: 'https://auth.example.com' })
  t.same(config.mail, { smtpUrl: undefined, from: 'auth@localhost', outboxDir: join(dir, 'outbox') })
  t.same(config.passwordReset, { url: 'https://auth.example.com/reset-password?token={token}', ttl: 1800, limit: 3 })
  t.same(config.emailVerification, { url: 'https://auth.example.com/verify-email?token={token}', ttl: 86_400, required: false })
  t.equal(loadConfig({ DATABASE_URL: 'sqlite::memory:' }).mail.outboxDir, join(process.cwd(), 'data', 'outbox'), 'no SQLite file: ./data/outbox')

  const set = loadConfig({
    DATABASE_URL: 'sqlite::memory:',
    SMTP_URL: 'smtps://user:pass@mail.example.com:465',
    MAIL_FROM: 'Auth <no-reply@example.com>',
    PASSWORD_RESET_URL: 'https://app.example.com/reset#token={token}',
    EMAIL_VERIFICATION_URL: 'https://app.example.com/verify?t={token}',
    PASSWORD_RESET_TTL: '600',
    EMAIL_VERIFICATION_TTL: '3600',
    PASSWORD_RESET_LIMIT: '5',
    REQUIRE_VERIFIED_EMAIL: 'true'
  })
  t.same(set.mail, { smtpUrl: 'smtps://user:pass@mail.example.com:465', from: 'Auth <no-reply@example.com>', outboxDir: join(process.cwd(), 'data', 'outbox') })
  t.same(set.passwordReset, { url: 'https://app.example.com/reset#token={token}', ttl: 600, limit: 5 })
  t.same(set.emailVerification, { url: 'https://app.example.com/verify?t={token}', ttl: 3600, required: true })

  for (const [name, value] of [
    ['SMTP_URL', 'http://mail.example.com'],
    ['SMTP_URL', 'mail.example.com:25'],
    ['PASSWORD_RESET_URL', 'https://app.example.com/reset'],
    ['EMAIL_VERIFICATION_URL', 'javascript:alert(1)//{token}'],
    ['PASSWORD_RESET_TTL', '10'],
    ['PASSWORD_RESET_LIMIT', '0'],
    ['MAIL_FROM', 'nobody'],
    ['REQUIRE_VERIFIED_EMAIL', 'yes']
  ] as const) {
    t.throws(() => loadConfig({ DATABASE_URL: 'sqlite::memory:', [name]: value }), { name: 'ConfigError', message: new RegExp(name) }, `${name}=${value} is refused`)
  }
})

import { execFile } from 'node:child_process'
import { createPrivateKey, createPublicKey } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { calculateJwkThumbprint, exportJWK, importSPKI } from 'jose'
import t from 'tap'
import { loadConfig, type Config } from '../src/config.js'
import { ASYMMETRIC_ALGORITHMS, generatePemKeyPair, publicJwk } from '../src/signing-keys.js'

const run = promisify(execFile)
const BASE = { DATABASE_URL: 'sqlite::memory:' }

type Asymmetric = Exclude<Config['jwt'], { algorithm: 'HS256' }>

function asymmetric (config: Config): Asymmetric {
  if (config.jwt.algorithm === 'HS256') throw new Error('expected an asymmetric algorithm')
  return config.jwt
}

const pairs = Object.fromEntries(ASYMMETRIC_ALGORITHMS.map(alg => [alg, generatePemKeyPair(alg)]))

t.test('each algorithm takes its own kind of private key, as PEM text or a file path', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-keys-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const alg of ASYMMETRIC_ALGORITHMS) {
    const { privateKey } = pairs[alg]!
    const fromText = asymmetric(loadConfig({ ...BASE, JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: privateKey }))
    t.equal(fromText.algorithm, alg)
    t.equal(createPrivateKey(fromText.privateKey).asymmetricKeyType, createPrivateKey(privateKey).asymmetricKeyType)
    t.same(fromText.previousPublicKeys, [])

    const file = join(dir, `${alg}.pem`)
    writeFileSync(file, privateKey)
    t.equal(asymmetric(loadConfig({ ...BASE, JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: file })).privateKey, fromText.privateKey)

    const escaped = privateKey.trim().replaceAll('\n', '\\n')
    t.equal(asymmetric(loadConfig({ ...BASE, JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: escaped })).privateKey, fromText.privateKey, '\\n escapes')
  }
})

t.test('an asymmetric algorithm needs no JWT_SECRET, even in production on MySQL', async t => {
  const config = loadConfig({ NODE_ENV: 'production', DATABASE_URL: 'mysql://u:p@db:3306/auth', JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: pairs.EdDSA!.privateKey })
  t.equal(config.jwt.algorithm, 'EdDSA')
  t.notOk('secret' in config.jwt)
})

t.test('retired public keys: PEM text, several files, or the file npm run keys wrote', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-keys-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const es = join(dir, 'es.pem')
  const rs = join(dir, 'rs.pem')
  writeFileSync(es, `# ES256 key pair\n${pairs.ES256!.privateKey}${pairs.ES256!.publicKey}`)
  writeFileSync(rs, pairs.RS256!.publicKey)
  const current = { ...BASE, JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: pairs.EdDSA!.privateKey }

  const spki = (pem: string) => createPublicKey(pem).export({ type: 'spki', format: 'pem' }).toString()
  t.same(asymmetric(loadConfig({ ...current, JWT_PREVIOUS_PUBLIC_KEYS: pairs.ES256!.publicKey + pairs.RS256!.publicKey })).previousPublicKeys,
    [spki(pairs.ES256!.publicKey), spki(pairs.RS256!.publicKey)], 'concatenated PEM text')
  t.same(asymmetric(loadConfig({ ...current, JWT_PREVIOUS_PUBLIC_KEYS: `${es}, ${rs}` })).previousPublicKeys,
    [spki(pairs.ES256!.publicKey), spki(pairs.RS256!.publicKey)], 'comma-separated paths; a key pair file gives its public key')
  t.same(asymmetric(loadConfig({ ...current, JWT_PREVIOUS_PUBLIC_KEYS: `${es}\n${rs}\n` })).previousPublicKeys.length, 2, 'newline-separated paths')

  // The private half of a pair file is never taken for JWT_PRIVATE_KEY's public key, and the other way round.
  t.equal(asymmetric(loadConfig({ ...BASE, JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: es })).algorithm, 'ES256', 'a key pair file as JWT_PRIVATE_KEY')
})

t.test('a bad key setting is refused with a message naming the variable', async t => {
  const ed = pairs.EdDSA!
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ JWT_ALGORITHM: 'HS512' }, /JWT_ALGORITHM/],
    [{ JWT_ALGORITHM: 'none' }, /JWT_ALGORITHM/],
    [{ JWT_ALGORITHM: 'EdDSA' }, /JWT_PRIVATE_KEY.*npm run keys -- EdDSA/],
    [{ JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: '/nonexistent/key.pem' }, /JWT_PRIVATE_KEY names \/nonexistent\/key.pem/],
    [{ JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: ed.publicKey }, /JWT_PRIVATE_KEY holds no PEM private key/],
    [{ JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: '-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----' }, /JWT_PRIVATE_KEY is not an unencrypted PEM private key/],
    [{ JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: ed.privateKey + pairs.ES256!.privateKey }, /JWT_PRIVATE_KEY must hold exactly one/],
    [{ JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY: ed.privateKey }, /JWT_PRIVATE_KEY must be an RSA key/],
    [{ JWT_ALGORITHM: 'ES256', JWT_PRIVATE_KEY: pairs.RS256!.privateKey }, /JWT_PRIVATE_KEY must be an EC P-256 key/],
    [{ JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: ed.privateKey, JWT_PREVIOUS_PUBLIC_KEYS: 'nope.pem' }, /JWT_PREVIOUS_PUBLIC_KEYS names nope.pem/],
    [{ JWT_ALGORITHM: 'EdDSA', JWT_PRIVATE_KEY: ed.privateKey, JWT_PREVIOUS_PUBLIC_KEYS: ed.privateKey }, /JWT_PREVIOUS_PUBLIC_KEYS holds no PEM public key/],
    [{ JWT_PRIVATE_KEY: ed.privateKey, JWT_SECRET: 'a-secret-that-is-long-enough-for-hs256-0123456789' }, /JWT_PRIVATE_KEY is only used with JWT_ALGORITHM=EdDSA, ES256 or RS256/],
    [{ JWT_PREVIOUS_PUBLIC_KEYS: ed.publicKey, JWT_SECRET: 'a-secret-that-is-long-enough-for-hs256-0123456789' }, /JWT_PREVIOUS_PUBLIC_KEYS is only used/]
  ]
  for (const [env, message] of cases) {
    t.throws(() => loadConfig({ ...BASE, ...env }), { name: 'ConfigError', message }, Object.keys(env).join(' '))
  }
  // The key itself never appears in a message.
  try {
    loadConfig({ ...BASE, JWT_ALGORITHM: 'RS256', JWT_PRIVATE_KEY: ed.privateKey })
  } catch (err) {
    t.notMatch((err as Error).message, 'BEGIN')
  }
})

t.test('kid is the RFC 7638 thumbprint, as jose computes it', async t => {
  for (const alg of ASYMMETRIC_ALGORITHMS) {
    const { privateKey, publicKey } = pairs[alg]!
    const jwk = publicJwk(createPrivateKey(privateKey), alg)
    t.equal(jwk.kid, await calculateJwkThumbprint(await exportJWK(await importSPKI(publicKey, alg))), alg)
    t.match(jwk, { alg, use: 'sig' })
    t.notOk('d' in jwk, 'no private member')
  }
})

t.test('npm run keys prints a key pair the service accepts', async t => {
  for (const alg of ASYMMETRIC_ALGORITHMS) {
    const { stdout } = await run(process.execPath, ['--import', 'tsx', 'src/keys.ts', alg])
    t.match(stdout, /^# \w+ key pair, kid [\w-]{43}\n-----BEGIN PRIVATE KEY-----\n[\s\S]+-----END PUBLIC KEY-----\n$/, alg)
    const config = asymmetric(loadConfig({ ...BASE, JWT_ALGORITHM: alg, JWT_PRIVATE_KEY: stdout, JWT_PREVIOUS_PUBLIC_KEYS: stdout }))
    t.equal(config.algorithm, alg)
    t.equal(config.previousPublicKeys.length, 1)
  }
  await t.rejects(run(process.execPath, ['--import', 'tsx', 'src/keys.ts', 'HS256']), { code: 2, stderr: /usage: npm run keys -- EdDSA\|ES256\|RS256/ })
})

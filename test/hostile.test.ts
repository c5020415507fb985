import { createHmac, randomInt } from 'node:crypto'
import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { build, createUser, eachDialect, login, PASSWORD, TEST_SECRET, testNow } from './helper.js'

/**
 * Hostile input over a real socket: a seeded generator of malformed, oversized and malicious
 * requests against every route. Rerun a failure with HOSTILE_SEED=<seed> npx tap test/hostile.test.ts.
 */
const SEED = process.env.HOSTILE_SEED !== undefined && process.env.HOSTILE_SEED !== ''
  ? Number(process.env.HOSTILE_SEED) >>> 0
  : randomInt(2 ** 32)
const RANDOM_CASES = 600
const CONCURRENCY = 8
const REQUEST_TIMEOUT_MS = 10_000

type Rng = () => number

/** mulberry32: tiny, fast, and the same sequence for the same seed everywhere. */
function mulberry32 (seed: number): Rng {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

interface Tools {
  int (min: number, max: number): number
  pick<T> (items: readonly T[]): T
  chance (p: number): boolean
}

function tools (rng: Rng): Tools {
  return {
    int: (min, max) => min + Math.floor(rng() * (max - min + 1)),
    pick: items => items[Math.floor(rng() * items.length)]!,
    chance: p => rng() < p
  }
}

/**
 * What a well-behaved answer looks like: `oauth` for POST /token and /revoke (RFC 6749 bodies),
 * `api` for everything else (problem details), `malformed` for requests Node's HTTP parser
 * itself refuses (problem details too, since no route is known yet).
 */
type Expect = 'oauth' | 'api' | 'malformed'

interface Case {
  label: string
  method: string
  bytes: Buffer
  expect: Expect
  /** A request that never completes (truncated body): closing without an answer is fine. */
  mayDrop?: boolean
}

type HeaderValue = string | Buffer
interface RequestShape {
  headers?: Array<[string, HeaderValue]>
  body?: string | Buffer
  version?: string
  host?: boolean
  contentLength?: boolean
  expect?: Expect
  mayDrop?: boolean
}

function isOAuthPath (method: string, path: string) {
  return method === 'POST' && /^\/(token|revoke)(\?.*)?$/s.test(path)
}

function request (label: string, method: string, path: string, shape: RequestShape = {}): Case {
  const { headers = [], body, version = 'HTTP/1.1', host = true, contentLength = true } = shape
  const lines: Buffer[] = [Buffer.from(`${method} ${path} ${version}\r\n`, 'latin1')]
  const all: Array<[string, HeaderValue]> = []
  if (host) all.push(['Host', '127.0.0.1'])
  all.push(['Connection', 'close'], ...headers)
  const bodyBytes = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8')
  const chunked = headers.some(([name]) => name.toLowerCase() === 'transfer-encoding')
  if (bodyBytes !== undefined && contentLength && !chunked) all.push(['Content-Length', String(bodyBytes.length)])
  for (const [name, value] of all) {
    lines.push(Buffer.from(`${name}: `, 'latin1'), Buffer.isBuffer(value) ? value : Buffer.from(value, 'utf8'), Buffer.from('\r\n'))
  }
  lines.push(Buffer.from('\r\n'))
  if (bodyBytes !== undefined) lines.push(bodyBytes)
  const expect = shape.expect ?? ([...path].some(ch => ch <= ' ') ? 'malformed' : isOAuthPath(method, path) ? 'oauth' : 'api')
  return { label, method, bytes: Buffer.concat(lines), expect, mayDrop: shape.mayDrop }
}

function raw (label: string, text: string | Buffer, expect: Expect = 'malformed', mayDrop = false): Case {
  return { label, method: 'RAW', bytes: Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1'), expect, mayDrop }
}

const json = (label: string, body: string | Buffer, contentType: string | undefined = 'application/json', path = '/users') =>
  request(label, 'POST', path, { body, headers: contentType === undefined ? [] : [['Content-Type', contentType]] })

const formPost = (label: string, path: string, body: string | Buffer, contentType: string | undefined = 'application/x-www-form-urlencoded') =>
  request(label, 'POST', path, { body, headers: contentType === undefined ? [] : [['Content-Type', contentType]] })

// ---------------------------------------------------------------------------------------------
// Hostile material

const SQL = [
  "' OR '1'='1", "admin'--", "'; DROP TABLE users; --", '1; SELECT SLEEP(5)', "' UNION SELECT password_hash FROM users --",
  "a'or'1'='1@example.com", '"; DELETE FROM refresh_tokens; --', "\\'; SHUTDOWN; --", "' AND extractvalue(1,concat(0x7e,version())) --"
]
const INJECTION = [
  // eslint-disable-next-line no-template-curly-in-string -- a template injection probe, on purpose
  'x\r\nSet-Cookie: a=b', '%0d%0aSet-Cookie:%20a=b', '${7*7}', '{{7*7}}', '../../etc/passwd', '%s%s%s%n',
  '<script>alert(1)</script>', '\u202egnp.exe', 'javascript:alert(1)', '() { :; }; echo pwned'
]
const UNICODE = [
  'ü', '😀'.repeat(40), '\u0000', 'a\u0000b', '\ud800', '\udfff', 'a\ud83d', '\ud83d\ud83d', '\ufeff', 'ﬃ', 'e\u0301',
  '\u0130', 'ǅ', '\u200b'.repeat(20), 'Ω'.repeat(200), '\uffff', '\u{10ffff}', '𝔞@𝔟.𝔠', 'ADA@EXAMPLE.COM\u0000'
]
const PROTO = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__']
const PLAIN = ['', ' ', '\t', 'null', 'undefined', 'true', '0', '-1', '1e309', 'NaN', 'x', 'ada@example.com', PASSWORD]

function hostileString (k: Tools): string {
  switch (k.int(0, 6)) {
    case 0: return k.pick(SQL)
    case 1: return k.pick(INJECTION)
    case 2: return k.pick(UNICODE)
    case 3: return k.pick(PROTO)
    case 4: return k.pick(PLAIN)
    case 5: return k.pick(['a', 'é', '😀', '\u0000', "'", '%', 'x']).repeat(k.pick([64, 128, 129, 255, 1000, 4000]))
    default: return k.pick(SQL) + k.pick(UNICODE) + k.pick(INJECTION)
  }
}

/** A JSON text of any type, some of them not what JSON.stringify would ever produce. */
function hostileJsonValue (k: Tools, depth = 0): string {
  switch (k.int(0, depth > 2 ? 5 : 8)) {
    case 0: return JSON.stringify(hostileString(k))
    case 1: return k.pick(['0', '-1', '1.5', '1e999', '-1e999', '9007199254740993', '1e-400', '-0', '123456789012345678901234567890'])
    case 2: return k.pick(['true', 'false', 'null'])
    case 3: return '""'
    case 4: return JSON.stringify('x'.repeat(k.pick([7, 8, 128, 129, 254, 255])))
    case 5: return '"\\ud800\\udc00\\ud800"'
    case 6: return `[${Array.from({ length: k.int(0, 3) }, () => hostileJsonValue(k, depth + 1)).join(',')}]`
    case 7: return `{"$gt":${hostileJsonValue(k, depth + 1)}}`
    default: return `{${Array.from({ length: k.int(0, 3) }, () => `${JSON.stringify(k.pick([...PROTO, 'email', 'password', 'a']))}:${hostileJsonValue(k, depth + 1)}`).join(',')}}`
  }
}

const CONTENT_TYPES = [
  '', 'text/plain', 'application/json', 'application/x-www-form-urlencoded', 'APPLICATION/JSON',
  'application/json; charset=utf-16', 'application/json;', 'application/json; charset=', 'application/json; charset="',
  'application/jsonp', 'application/json-patch+json', 'application/x-www-form-urlencoded; charset=iso-8859-1',
  'Application/X-WWW-Form-Urlencoded', 'multipart/form-data; boundary=x', '*/*', 'application/', ';;;', '/',
  'application/json, text/plain', 'application/json ; charset="utf-8"', 'application/x-www-form-urlencoded;;;;;q=1',
  'text/html; charset=utf-8', `application/${'x'.repeat(2000)}`, 'ü/ü', 'application/json\t', 'application/xml'
]

function percent (s: string) {
  return encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '\ufffd'))
}

const FORM_KEYS = ['grant_type', 'username', 'password', 'refresh_token', 'scope', 'client_id', 'token', 'token_type_hint', 'a[b]', 'grant_type[]', ...PROTO, '']
const BAD_FORM_BODIES = [
  '%zz', '%', 'grant_type=%', 'grant_type=password&username=%zz&password=%', '&&&&', '=', '==', 'grant_type', 'grant_type==password',
  'a[b]=c', 'grant_type[]=password', 'grant_type=password&grant_type=refresh_token', 'grant_type=password&grant_type=password',
  'grant_type=%ff%fe&username=%c0%80&password=%ed%a0%80', 'grant_type=password&username=a%00b&password=%00%00%00%00%00%00%00%00',
  `${'a=b&'.repeat(3000)}grant_type=password`, '+', 'grant_type=+password+', 'grant_type=refresh_token&refresh_token=',
  'grant_type=refresh_token&refresh_token=%', 'grant_type=password&username=&password=', 'token=', 'token=%', 'token=a&token=b',
  'token[]=x', '__proto__=x&token=y', 'constructor[prototype][x]=1&token=y', 'token=x&token_type_hint=%ff', `token=${'A'.repeat(15000)}`,
  `x=${'a'.repeat(16 * 1024 + 10)}`, 'grant_type=password&username=ada@example.com&password=' + percent(PASSWORD) + '&scope=%20',
  'grant_type=password&username=ada%40example.com&password=' + percent(PASSWORD) + '&scope=openid'
]

const BROKEN_JSON = [
  '{', '{"email":', '[', 'nul', '{"a":1}garbage', '\ufeff{}', '{}', '[]', '""', '0', 'null', 'true', '{"email":"a@b.co",}', "{'email':'a@b.co'}",
  '{"email":"a@b.co","email":"c@d.co","password":"duplicate keys"}', '{"__proto__":{"admin":true},"email":"a@b.co","password":"xxxxxxxx"}',
  '{"constructor":{"prototype":{"admin":true}}}', '{"email":"a@b.co","password":"pass\\u0000word"}', '{"email":"a\\u0000@b.co","password":"password1234"}',
  '{"email":"\\ud800@b.co","password":"\\udfff\\udfff\\udfff\\udfff\\udfff\\udfff\\udfff\\udfff"}', '{"email":"a@b.co","password":"\\ud800\\ud800\\ud800\\ud800\\ud800\\ud800\\ud800\\ud800x"}',
  '{"email":"A@B.CO","password":"12345678","extra":1}', '{"email":1e999,"password":-1e999}', '{"email":"' + 'a'.repeat(250) + '@b.co","password":"long enough password"}',
  '/* comment */ {}', '{"email":"a@b.co","password":"ok password here"}\u0000', '{"email":"a@b.co"\n\n,\r\n"password":\t"tabs and newlines"}'
]

function nested (open: string, close: string, depth: number, inner = '1') {
  return open.repeat(depth) + inner + close.repeat(depth)
}

function base64url (s: string | Buffer) {
  return Buffer.from(s).toString('base64url')
}

function signed (header: object, payload: object, secret = TEST_SECRET) {
  const head = `${base64url(JSON.stringify(header))}.${base64url(JSON.stringify(payload))}`
  return `${head}.${createHmac('sha256', secret).update(head).digest('base64url')}`
}

interface Context {
  accessToken: string
  refreshToken: string
  userId: number
}

function hostileAuthorization (k: Tools, ctx: Context): { value: HeaderValue, malformed?: boolean } {
  const now = Math.floor(testNow() / 1000)
  const claims = { iss: 'http://auth.test', aud: 'http://auth.test', sub: String(ctx.userId), iat: now, exp: now + 600, jti: '0190a6a0-0000-7000-8000-000000000000' }
  const jwtGarbage = [
    `${base64url('{"alg":"none","typ":"at+jwt"}')}.${base64url(JSON.stringify(claims))}.`,
    `${base64url('{"alg":"none"}')}.${base64url(JSON.stringify(claims))}`,
    `${base64url('{"alg":"HS256","typ":"at+jwt"}')}.${base64url(JSON.stringify(claims))}.${base64url('x'.repeat(32))}`,
    `${base64url('x'.repeat(3000))}.${base64url('y'.repeat(3000))}.${base64url('z'.repeat(3000))}`,
    `${base64url('{"alg":"HS256","typ":"at+jwt","kid":"../../../../dev/null"}')}.${base64url('{}')}.`,
    `${base64url('{"alg":"RS256","jku":"http://127.0.0.1:1/jwks"}')}.${base64url(JSON.stringify(claims))}.AAAA`,
    `${base64url('[]')}.${base64url('null')}.${base64url('0')}`,
    `${base64url('not json')}.${base64url('not json either')}.sig`,
    '!!!.!!!.!!!', 'a.b.c', '...', 'a.b', '.', 'eyJ.eyJ.eyJ', `${'eyJhbGciOiJIUzI1NiJ9.'.repeat(50)}x`,
    signed({ alg: 'HS256', typ: 'at+jwt' }, claims, 'another-secret-that-is-long-enough-000'),
    signed({ alg: 'HS256', typ: 'JWT' }, claims),
    signed({ alg: 'HS256', typ: 'at+jwt' }, { ...claims, iss: 'http://evil.test' }),
    signed({ alg: 'HS256', typ: 'at+jwt' }, { ...claims, exp: 'never' }),
    // Signed with the real key but with claims of the wrong shape: the checks after fast-jwt's.
    signed({ alg: 'HS256', typ: 'at+jwt' }, { ...claims, sub: k.pick([['1'], { id: 1 }, 1, '01', '1e3', '-1', '9'.repeat(16), '9'.repeat(400), "1' OR '1'='1", '']) }),
    signed({ alg: 'HS256', typ: 'at+jwt' }, { ...claims, jti: k.pick([1, null, ['x'], 'x'.repeat(36), '0190a6a0-0000-7fff-ffff-ffffffffffff', { length: 36 }]) }),
    signed({ alg: 'HS256', typ: 'at+jwt' }, { ...claims, iat: k.pick(['now', null, 1e300, -1, [1], now + 86_400]) }),
    ctx.accessToken.slice(0, -3) + 'AAA',
    ctx.accessToken.slice(0, k.int(1, ctx.accessToken.length - 1)),
    ctx.refreshToken
  ]
  switch (k.int(0, 12)) {
    case 0: return { value: k.pick(['', 'Bearer', 'bearer', 'Bearer ', 'Bearer  x', 'Bearer x y', 'Bearer\tx', 'Basic dXNlcjpwYXNz', 'Basic', 'Digest x', 'Token x', 'Bearer=x', ',,,']) }
    case 1: return { value: `Bearer${' '.repeat(k.int(2, 500))}${k.pick([ctx.accessToken, 'x', ''])}` }
    case 2: return { value: `Bearer ${'A'.repeat(k.pick([4000, 8000, 15000]))}` }
    case 3: return { value: `Bearer ${'A'.repeat(20_000)}`, malformed: true }
    case 4: return { value: Buffer.concat([Buffer.from('Bearer '), Buffer.from(k.pick(['ü', '😀', 'Ω'.repeat(100), '\u0130']), 'utf8')]) }
    case 5: return { value: Buffer.from([0x42, 0x65, 0x61, 0x72, 0x65, 0x72, 0x20, 0xff, 0xfe, 0x80, 0xc0]) }
    case 6: return { value: `Bearer ${ctx.accessToken}\u0000`, malformed: true }
    case 7: return { value: `${k.pick(['Bearer', 'bearer', 'BEARER', 'BeArEr'])} ${ctx.accessToken}` }
    case 8: return { value: `Bearer ${ctx.accessToken} ${k.pick(['extra', ctx.accessToken, '='])}` }
    case 9: return { value: `Bearer ${k.pick(SQL)}` }
    default: return { value: `${k.pick(['Bearer', 'bearer'])} ${k.pick(jwtGarbage)}` }
  }
}

const PATHS = ['/users', '/users/me', '/token', '/revoke', '/logout', '/auth/status', '/health', '/ready']
const UNKNOWN_PATHS = [
  '/', '/nowhere', '/users/', '/users/me/', '//users', '/users//me', '/USERS', '/users/../health', '/users/./me', '/%2e%2e/%2e%2e/etc/passwd',
  '/users%2fme', '/users/me%00', '/users/me;jsessionid=x', '/token/', '/token.json', '/health/', '/.env', '/.git/config', '/admin',
  `/${'a'.repeat(8000)}`, `/${'%41'.repeat(2000)}`, '/users/me?x=1&x=2', '/%', '/%zz', '/%ff', '/users%E0%A4%A', '/%c0%ae%c0%ae/', '/%u0041',
  '/\u00fc'.replace('\u00fc', '%C3%BC'), '/users/me#fragment', '/docs/../../../', '/wp-login.php', '/cgi-bin/test.cgi?x=() { :; };',
  "/users/1' OR '1'='1", '/users/1%27%20OR%20%271%27=%271', '/api/v1/../../token', '/health?' + 'q'.repeat(4000)
]
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'SEARCH', 'MKCOL', 'LOCK', 'PURGE']

const MALFORMED_HTTP = [
  'FOO /health HTTP/1.1\r\nHost: x\r\n\r\n',
  'G ET /health HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /health\r\n\r\n',
  'GET /health HTTP/9.9\r\nHost: x\r\n\r\n',
  'GET /health HTTP/1.1\r\nHost: x\r\nNo-Colon-Here\r\n\r\n',
  'GET /health HTTP/1.1\r\nHost: x\r\nBad Name: x\r\n\r\n',
  'GET /health HTTP/1.1\r\nHost: x\r\nX: a\r\n folded\r\n\r\n',
  'GET /health HTTP/1.1\nHost: x\n\n',
  'GET /health HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n',
  'GET /hea\u0000lth HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET /health HTTP/1.1\r\nHost: x\r\nX-Request-Id: a\u0000b\r\n\r\n',
  'POST /users HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n',
  'POST /users HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n',
  'POST /users HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}',
  'POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
  'POST /users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n',
  'POST /users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\nContent-Type: application/json\r\n\r\n2\r\n{}\r\n0\r\n\r\n',
  'POST /users HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n',
  `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(17 * 1024)}\r\n\r\n`,
  `GET /health HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 3000 }, (_, i) => `X-H${i}: ${i}`).join('\r\n')}\r\n\r\n`,
  'GET http://evil.test/health HTTP/1.1\r\nHost: x\r\n\r\n',
  'GET * HTTP/1.1\r\nHost: x\r\n\r\n',
  '\u0016\u0003\u0001\u0000\u00a5\u0001\u0000\u0000\u00a1\u0003\u0003',
  'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
].map(text => text.replace('Host: x\r\n', 'Host: x\r\nConnection: close\r\n'))

/** Node waits for the rest of these (empty lines before a request are allowed); the client gives up. */
const INCOMPLETE_HTTP = ['\r\n\r\n\r\n', 'GET /health HTTP/1.1\r\nHost: x\r\n', 'POST /users HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n{']

// ---------------------------------------------------------------------------------------------
// Generators: each makes one hostile request from the seeded generator.

type Generator = (k: Tools, ctx: Context) => Case

const generators: Generator[] = [
  function signupWrongTypes (k) {
    const fields: string[] = []
    if (k.chance(0.8)) fields.push(`"email":${k.chance(0.3) ? JSON.stringify(`${hostileString(k)}@example.com`) : hostileJsonValue(k)}`)
    if (k.chance(0.8)) fields.push(`"password":${hostileJsonValue(k)}`)
    if (k.chance(0.2)) fields.push(`${JSON.stringify(k.pick([...PROTO, 'admin', 'id', '']))}:${hostileJsonValue(k)}`)
    return json('signup with wrong types', `{${fields.join(',')}}`)
  },
  function signupValidish (k) {
    const local = k.pick(["o'brien", 'a+b', 'x'.repeat(64), "a'or'1'='1", 'UPPER', `user${k.int(0, 1e6)}`, '!#$%&*+/=?^_`{|}~-'])
    const password = k.pick([PASSWORD, '\ud800'.repeat(8), '😀'.repeat(128), '😀'.repeat(129), 'e\u0301'.repeat(64), ' padded  ', '\u0000'.repeat(8), 'password', '12345678'])
    return json('signup, valid-looking', JSON.stringify({ email: `  ${local}@example.com `, password }))
  },
  function signupBrokenJson (k) {
    return json('signup with broken JSON', k.pick(BROKEN_JSON))
  },
  function signupHugeJson (k) {
    const depth = k.pick([100, 1000, 4000, 8000, 9000])
    const body = k.pick([
      () => `{"email":${nested('[', ']', depth)},"password":"x"}`,
      () => `{"email":"a@b.co","password":${nested('{"a":', '}', Math.floor(depth / 5))}}`,
      () => `[${Array.from({ length: Math.floor(depth / 2) }, () => '0').join(',')}]`,
      () => JSON.stringify({ email: 'a@b.co', password: 'x'.repeat(k.pick([16 * 1024 - 40, 16 * 1024, 20_000])) }),
      () => `{${Array.from({ length: Math.floor(depth / 10) }, (_, i) => `"k${i}":1`).join(',')}}`,
      () => JSON.stringify({ email: 'a@b.co', password: PASSWORD, pad: 'x'.repeat(64 * 1024) })
    ])()
    return json(`signup with huge JSON (${Buffer.byteLength(body)} bytes)`, body)
  },
  function signupBinaryBody (k) {
    const bytes = k.pick([
      Buffer.from([0xff, 0xfe, 0x7b, 0x00, 0x7d, 0x00]),
      Buffer.from('{"email":"a@b.co","password":"\xc0\x80\xed\xa0\x80\xff\xfe\xfd"}', 'latin1'),
      Buffer.from('{"email":"a@b.co","password":"abc\u0000\u0001\u0002defgh"}', 'latin1'),
      Buffer.from(JSON.stringify({ email: 'a@b.co', password: PASSWORD }), 'utf16le'),
      Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00])
    ])
    return json('signup with binary body', bytes, k.pick(['application/json', 'application/json; charset=utf-16']))
  },
  function signupContentType (k) {
    const body = k.pick([JSON.stringify({ email: 'ct@example.com', password: PASSWORD }), `email=a%40b.co&password=${percent(PASSWORD)}`, '', 'x'])
    const ct = k.pick(CONTENT_TYPES)
    return json(`signup with Content-Type ${JSON.stringify(ct.slice(0, 60))}`, body, k.chance(0.1) ? undefined : ct)
  },
  function tokenForm (k) {
    const params: string[] = []
    for (let i = k.int(0, 6); i > 0; i--) {
      const key = k.chance(0.7) ? k.pick(['grant_type', 'username', 'password', 'refresh_token', 'scope']) : k.pick(FORM_KEYS)
      const value = k.chance(0.3) ? k.pick(['password', 'refresh_token', 'client_credentials', 'authorization_code', 'PASSWORD']) : hostileString(k)
      params.push(`${percent(key)}=${k.chance(0.9) ? percent(value) : value.replace(/[&=\s]/g, '')}`)
    }
    return formPost('token with hostile parameters', '/token', params.join('&'))
  },
  function tokenBadEncoding (k) {
    return formPost('token with a bad form encoding', '/token', k.pick(BAD_FORM_BODIES))
  },
  function tokenRefreshGarbage (k, ctx) {
    const token = k.pick([ctx.refreshToken, ctx.accessToken, ctx.refreshToken.toUpperCase(), ctx.refreshToken + '=', hostileString(k), 'A'.repeat(43), '\u0000'.repeat(43)])
    return formPost('token, refresh grant with a hostile token', '/token', `grant_type=refresh_token&refresh_token=${percent(token)}`)
  },
  function tokenContentType (k) {
    const ct = k.pick(CONTENT_TYPES)
    const body = k.pick(['grant_type=password&username=ada%40example.com&password=wrong', JSON.stringify({ grant_type: 'password' }), '', '%zz'])
    return formPost(`token with Content-Type ${JSON.stringify(ct.slice(0, 60))}`, k.pick(['/token', '/revoke']), body, k.chance(0.1) ? undefined : ct)
  },
  function revokeForm (k, ctx) {
    const token = k.pick([ctx.refreshToken, ctx.accessToken, hostileString(k), ''])
    const extra = k.chance(0.5) ? `&token_type_hint=${percent(hostileString(k))}` : ''
    const body = k.chance(0.3) ? k.pick(BAD_FORM_BODIES) : `token=${percent(token)}${extra}`
    return formPost('revoke with hostile parameters', '/revoke', body)
  },
  function authHeaders (k, ctx) {
    const path = k.pick(['/users/me', '/auth/status', '/logout'])
    const method = path === '/logout' ? 'POST' : k.pick(['GET', 'GET', 'HEAD'])
    const { value, malformed } = hostileAuthorization(k, ctx)
    const headers: Array<[string, HeaderValue]> = [['Authorization', value]]
    if (k.chance(0.15)) headers.push(['Authorization', k.chance(0.5) ? value : `Bearer ${ctx.accessToken}`])
    if (k.chance(0.1)) headers.push(['authorization', ''])
    const body = path === '/logout' && k.chance(0.3) ? k.pick(['{}', 'token=x', 'x'.repeat(20_000)]) : undefined
    if (body !== undefined) headers.push(['Content-Type', k.pick(CONTENT_TYPES)])
    return request(`${method} ${path} with a hostile Authorization`, method, path, { headers, body, expect: malformed === true ? 'malformed' : undefined })
  },
  function wrongMethod (k) {
    const method = k.pick(METHODS)
    const path = k.pick(PATHS)
    const body = k.chance(0.3) ? JSON.stringify({ email: 'a@b.co', password: PASSWORD }) : undefined
    const headers: Array<[string, HeaderValue]> = body === undefined ? [] : [['Content-Type', k.pick(['application/json', 'application/x-www-form-urlencoded', 'text/plain'])]]
    return request(`${method} ${path}`, method, path, { headers, body })
  },
  function unknownPath (k) {
    const method = k.pick(['GET', 'POST', 'HEAD', 'DELETE'])
    const path = k.pick(UNKNOWN_PATHS)
    return request(`${method} ${path.slice(0, 60)}`, method, path)
  },
  function operations (k) {
    const path = k.pick(['/health', '/ready', '/auth/status']) + k.pick(['', '?', '?x=1', `?q=${percent(hostileString(k))}`, '?%zz', '?a[b]=c&a[b]=d', `?${'a=1&'.repeat(1000)}`])
    const method = k.pick(['GET', 'HEAD'])
    return request(`${method} ${path.slice(0, 60)}`, method, path, { headers: k.chance(0.5) ? [['Accept', k.pick(['text/html', '*/*', 'application/xml', '\u00ff', ''])]] : [] })
  },
  function hostileHeaders (k, ctx) {
    const path = k.pick(PATHS)
    const method = k.pick(['GET', 'POST'])
    const headers: Array<[string, HeaderValue]> = []
    for (let i = k.int(1, 4); i > 0; i--) {
      const name = k.pick(['X-Request-Id', 'X-Forwarded-For', 'X-Real-IP', 'Accept', 'Accept-Encoding', 'Accept-Language', 'Origin', 'Referer', 'Cookie', 'Range', 'If-None-Match', 'User-Agent', 'Forwarded', 'X-HTTP-Method-Override', 'Content-Encoding', 'Upgrade', 'TE', 'Via'])
      headers.push([name, k.pick([hostileString(k).replace(/[\r\n]/g, '').replaceAll('\u0000', ''), 'x'.repeat(k.int(100, 8000)), '1.1.1.1, 2.2.2.2, ' + k.pick(SQL), 'gzip;q=2, *;q=-1', 'websocket', 'DELETE', 'bytes=0-1,2-3,-5', ''])])
    }
    if (k.chance(0.3)) headers.push(['Expect', k.pick(['100-continue', 'garbage', '200-ok'])])
    const body = method === 'POST' ? (path === '/token' || path === '/revoke' ? `token=${percent(ctx.refreshToken)}&grant_type=password` : '{}') : undefined
    if (body !== undefined) headers.push(['Content-Type', path === '/token' || path === '/revoke' ? 'application/x-www-form-urlencoded' : 'application/json'])
    return request(`${method} ${path} with hostile headers`, method, path, { headers, body })
  },
  function truncatedOrLying (k) {
    const path = k.pick(['/users', '/token', '/revoke'])
    const ct = path === '/users' ? 'application/json' : 'application/x-www-form-urlencoded'
    const body = path === '/users' ? JSON.stringify({ email: 'a@b.co', password: PASSWORD }) : 'grant_type=password&username=a&password=b'
    const shape = k.int(0, 2)
    if (shape === 0) {
      // Announces more than it sends, then half-closes: the request never completes.
      return request(`${path} with a short body`, 'POST', path, { headers: [['Content-Type', ct], ['Content-Length', String(body.length + 10)]], body, contentLength: false, expect: 'malformed', mayDrop: true })
    }
    if (shape === 1) {
      // Sends more than it announces: the rest is a second, garbage request.
      return request(`${path} with a long body`, 'POST', path, { headers: [['Content-Type', ct], ['Content-Length', '5']], body, contentLength: false, expect: 'malformed' })
    }
    const ending = k.pick(['0\r\n\r\n', `${(20_000).toString(16)}\r\n${'a'.repeat(20_000)}\r\n0\r\n\r\n`, 'ffffffffffffffffff\r\n'])
    const chunks = `${(body.length).toString(16)}\r\n${body}\r\n${ending}`
    return request(`${path} chunked`, 'POST', path, {
      headers: [['Content-Type', ct], ['Transfer-Encoding', 'chunked']], body: chunks, contentLength: false, expect: ending.startsWith('fff') ? 'malformed' : undefined
    })
  },
  function malformedHttp (k) {
    return k.chance(0.9) ? raw('malformed HTTP', k.pick(MALFORMED_HTTP)) : raw('incomplete HTTP', k.pick(INCOMPLETE_HTTP), 'malformed', true)
  },
  function oldHttp (k) {
    const path = k.pick(PATHS)
    return request(`HTTP/1.0 ${path}`, k.pick(['GET', 'POST']), path, { version: 'HTTP/1.0', host: k.chance(0.5) })
  },
  function missingHost (k) {
    const path = k.pick(PATHS)
    return request(`no Host: ${path}`, 'GET', path, { host: false, headers: k.chance(0.5) ? [['Host', ''], ['Host', 'a']] : [] })
  }
]

/** Every shape the brief names at least once, before the random ones. */
function fixedCases (ctx: Context): Case[] {
  const cases: Case[] = []
  for (const body of BROKEN_JSON) cases.push(json('fixed: broken JSON', body))
  for (const body of BAD_FORM_BODIES) cases.push(formPost('fixed: bad form /token', '/token', body), formPost('fixed: bad form /revoke', '/revoke', body))
  for (const ct of CONTENT_TYPES) {
    cases.push(json(`fixed: /users Content-Type ${ct.slice(0, 40)}`, '{}', ct), formPost(`fixed: /token Content-Type ${ct.slice(0, 40)}`, '/token', 'grant_type=password', ct))
  }
  for (const text of MALFORMED_HTTP) cases.push(raw('fixed: malformed HTTP', text))
  // The service is no proxy: Node closes a CONNECT tunnel nobody listens for, without an answer.
  cases.push(raw('fixed: CONNECT', 'CONNECT 127.0.0.1:3306 HTTP/1.1\r\nHost: 127.0.0.1:3306\r\n\r\n', 'malformed', true))
  for (const text of INCOMPLETE_HTTP) cases.push(raw('fixed: incomplete HTTP', text, 'malformed', true))
  for (const path of UNKNOWN_PATHS) cases.push(request(`fixed: GET ${path.slice(0, 40)}`, 'GET', path))
  for (const method of METHODS) for (const path of PATHS) cases.push(request(`fixed: ${method} ${path}`, method, path))
  const k = tools(mulberry32(0))
  for (let i = 0; i < 40; i++) {
    const { value, malformed } = hostileAuthorization(k, ctx)
    cases.push(request('fixed: GET /users/me hostile Authorization', 'GET', '/users/me', { headers: [['Authorization', value]], expect: malformed === true ? 'malformed' : undefined }))
  }
  for (const path of PATHS) {
    cases.push(request(`fixed: no Host ${path}`, path === '/token' ? 'POST' : 'GET', path, { host: false }))
    cases.push(request(`fixed: Expect garbage ${path}`, 'GET', path, { headers: [['Expect', 'garbage']] }))
  }
  for (const depth of [1000, 8000, 9000]) cases.push(json(`fixed: nested depth ${depth}`, `{"email":${nested('[', ']', depth)}}`))
  return cases
}

// ---------------------------------------------------------------------------------------------
// The wire: a raw socket, one request per connection, and a small response parser.

interface Response {
  status: number
  headers: Record<string, string>
  body: Buffer
}

type Outcome = { response: Response } | { dropped: string }

function send (port: number, bytes: Buffer, halfClose: boolean): Promise<Outcome> {
  return new Promise(resolve => {
    const chunks: Buffer[] = []
    let error: string | undefined
    const socket = connect({ host: '127.0.0.1', port })
    const timer = setTimeout(() => {
      error = 'no answer within 10 s'
      socket.destroy()
    }, REQUEST_TIMEOUT_MS)
    socket.on('connect', () => {
      socket.write(bytes)
      if (halfClose) socket.end()
    })
    socket.on('data', chunk => chunks.push(chunk))
    socket.on('error', err => { error ??= (err as NodeJS.ErrnoException).code ?? err.message })
    socket.on('close', () => {
      clearTimeout(timer)
      const response = parseResponse(Buffer.concat(chunks))
      resolve(response !== undefined ? { response } : { dropped: error ?? 'closed without an answer' })
    })
  })
}

function parseResponse (data: Buffer): Response | undefined {
  let rest = data
  for (;;) {
    const end = rest.indexOf('\r\n\r\n')
    if (end === -1) return undefined
    const [statusLine = '', ...headerLines] = rest.subarray(0, end).toString('latin1').split('\r\n')
    const match = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine)
    if (match === null) return undefined
    const status = Number(match[1])
    const headers: Record<string, string> = {}
    for (const line of headerLines) {
      const colon = line.indexOf(':')
      const name = line.slice(0, colon).trim().toLowerCase()
      const value = line.slice(colon + 1).trim()
      headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`
    }
    rest = rest.subarray(end + 4)
    // 100 Continue and other interim answers come before the real one.
    if (status >= 100 && status < 200) continue
    let body = rest
    if (headers['transfer-encoding']?.toLowerCase() === 'chunked') body = dechunk(rest)
    else if (headers['content-length'] !== undefined) body = rest.subarray(0, Number(headers['content-length']))
    return { status, headers, body }
  }
}

function dechunk (data: Buffer): Buffer {
  const parts: Buffer[] = []
  let offset = 0
  while (offset < data.length) {
    const lineEnd = data.indexOf('\r\n', offset)
    if (lineEnd === -1) break
    const size = Number.parseInt(data.subarray(offset, lineEnd).toString('latin1'), 16)
    if (!(size > 0)) break
    parts.push(data.subarray(lineEnd + 2, lineEnd + 2 + size))
    offset = lineEnd + 2 + size + 2
  }
  return Buffer.concat(parts)
}

// ---------------------------------------------------------------------------------------------
// What every answer must look like.

/** Signs of internals: a stack frame, a source path, a driver error, SQL the service runs. */
const LEAKS = [
  /\n\s*at\s/, /\bat\s+\S+\s+\(/, /\.(?:ts|js|mjs|cjs):\d+/, /node_modules/, /\/work\//, /\b(?:TypeError|ReferenceError|RangeError|SyntaxError)\b/,
  /\b(?:SELECT|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|DROP\s+TABLE)\b/i, /\bER_[A-Z_]+/, /SQLITE_/, /sqlMessage|sqlState/,
  /syntax error|no such table|doesn't exist|Duplicate entry|You have an error in your SQL/i,
  /\b(?:refresh_tokens|login_failures|password_hash|tokens_not_before|family_id)\b/
]

function reflected (text: string, requestText: string) {
  return requestText.includes(text.toLowerCase())
}

function requestTexts (bytes: Buffer) {
  const utf8 = bytes.toString('utf8')
  let decoded = ''
  try { decoded = decodeURIComponent(utf8.replace(/\+/g, ' ')) } catch {}
  return [bytes.toString('latin1'), utf8, decoded].join('\n').toLowerCase()
}

function check (c: Case, outcome: Outcome): string[] {
  if ('dropped' in outcome) return c.mayDrop === true ? [] : [`no HTTP answer (${outcome.dropped})`]
  const { status, headers, body } = outcome.response
  const problems: string[] = []
  if (!(status >= 200 && status <= 499)) problems.push(`status ${status}`)
  if (status >= 300 && status < 400) problems.push(`redirect ${status}`)
  if (headers['x-request-id'] === undefined) problems.push('no X-Request-Id')
  const type = headers['content-type'] ?? ''
  // A request the parser refused was never known to be a HEAD, unless it got as far as the
  // headers being too large (431): the request line had been read.
  const head = c.method === 'HEAD' && (c.expect !== 'malformed' || status === 431)
  const emptyAllowed = head || status === 204 || (c.expect === 'oauth' && status === 200 && c.bytes.includes('POST /revoke'))
  if (body.length === 0) {
    if (!emptyAllowed) problems.push(`empty body with status ${status}`)
  } else if (head || status === 204) {
    problems.push(`a body on ${head ? 'HEAD' : '204'}`)
  } else {
    const oauthType = /^application\/json(;|$)/.test(type)
    const problemType = /^application\/problem\+json(;|$)/.test(type)
    if (c.expect === 'oauth' && !oauthType) problems.push(`OAuth route answered ${type || 'no content type'}`)
    if (c.expect === 'api' && status >= 400 && !problemType) problems.push(`error answered ${type || 'no content type'}`)
    if (c.expect === 'api' && status < 400 && !oauthType) problems.push(`success answered ${type || 'no content type'}`)
    if (c.expect === 'malformed' && !(status < 400 ? oauthType : problemType || oauthType)) problems.push(`malformed request answered ${type || 'no content type'}`)
    let parsed: unknown
    try {
      parsed = JSON.parse(body.toString('utf8'))
    } catch {
      problems.push('body is not JSON')
    }
    if (problemType && parsed !== undefined) {
      const p = parsed as Record<string, unknown>
      if (p.status !== status || typeof p.title !== 'string' || typeof p.detail !== 'string' || typeof p.type !== 'string') problems.push('not a problem document')
    }
    if (oauthType && status >= 400 && parsed !== undefined) {
      const p = parsed as Record<string, unknown>
      if (typeof p.error !== 'string' || typeof p.error_description !== 'string') problems.push('not an RFC 6749 error body')
    }
  }
  if (status === 503 && headers['retry-after'] === undefined) problems.push('503 without Retry-After')
  const text = body.toString('utf8')
  const requestText = requestTexts(c.bytes)
  for (const pattern of LEAKS) {
    const match = pattern.exec(text)
    if (match !== null && !reflected(match[0], requestText)) problems.push(`body leaks ${JSON.stringify(match[0])}`)
  }
  return problems
}

async function runPool<T> (items: T[], concurrency: number, fn: (item: T) => Promise<void>) {
  let next = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await fn(items[next++]!)
  }))
}

function describe (c: Case) {
  const text = c.bytes.toString('latin1')
  return `${c.label}: ${JSON.stringify(text.length > 300 ? `${text.slice(0, 300)}…(${text.length} bytes)` : text)}`
}

eachDialect(t, `hostile requests over a real socket (HOSTILE_SEED=${SEED})`, async (t, dialect) => {
  const app = await build(t, dialect, {
    // Every failed login from 127.0.0.1 would otherwise slow the next ones (the soft limit).
    env: { LOGIN_LIMIT_PER_ADDRESS: '1000000', LOGIN_LIMIT_PER_ACCOUNT: '4' }
  })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo

  const user = await createUser(app)
  const tokens = await login(app)
  const ctx: Context = { accessToken: tokens.access_token, refreshToken: tokens.refresh_token!, userId: user.id }

  const k = tools(mulberry32(SEED))
  const cases = [...fixedCases(ctx), ...Array.from({ length: RANDOM_CASES }, () => k.pick(generators)(k, ctx))]

  const failures: string[] = []
  const statuses = new Map<number, number>()
  let serverErrors = 0
  let dropped = 0
  await runPool(cases, CONCURRENCY, async c => {
    const outcome = await send(port, c.bytes, c.mayDrop === true)
    if ('response' in outcome) {
      const { status } = outcome.response
      statuses.set(status, (statuses.get(status) ?? 0) + 1)
      if (status >= 500) serverErrors++
    } else {
      dropped++
    }
    const problems = check(c, outcome)
    if (problems.length > 0) {
      const answer = 'response' in outcome ? `${outcome.response.status} ${outcome.response.headers['content-type'] ?? ''} ${outcome.response.body.toString('utf8').slice(0, 200)}` : 'no answer'
      failures.push(`${problems.join('; ')} ← ${describe(c)} → ${answer}`)
    }
  })

  const summary = [...statuses].sort(([a], [b]) => a - b).map(([s, n]) => `${s}×${n}`).join(' ')
  t.comment(`HOSTILE_SEED=${SEED} [${dialect}]: ${cases.length} requests, ${serverErrors} 5xx, ${dropped} closed without an answer, statuses ${summary}`)
  t.ok(cases.length >= 500, `at least 500 requests (${cases.length})`)
  t.equal(serverErrors, 0, `no 5xx (HOSTILE_SEED=${SEED})`)
  t.same(failures.slice(0, 25), [], `every answer is well-formed (${failures.length} bad; HOSTILE_SEED=${SEED})`)

  t.ok(app.server.listening, 'still listening')
  const health = await send(port, request('health', 'GET', '/health').bytes, false)
  t.equal('response' in health ? health.response.status : 0, 200, '/health answers 200 afterwards')
  const me = await fetch(`http://127.0.0.1:${port}/auth/status`)
  t.equal(me.status, 200)
})

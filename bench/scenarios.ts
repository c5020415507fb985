import { randomBytes } from 'node:crypto'
import autocannon from 'autocannon'
import { FORM, JSON_BODY, passwordGrantBody, refreshGrantBody, type Credentials } from './client.js'
import type { PlainRequest } from './wrk.js'

/** What every response of a scenario must be, so that a fast wrong answer cannot pass. */
export interface Expectation {
  status: number
  /** A cheap look at the body: right shape, right answer (logged_in true or false...). */
  body: (body: string) => boolean
}

export interface Load {
  options: autocannon.Options
  expect: Expectation
  /** The same load as requests sent in turn, without state: what wrk can send (bench/wrk.ts). */
  plain?: PlainRequest[]
}

export interface Fixture {
  baseUrl: string
  users: Credentials[]
  /** Valid access tokens, spread over the connections. */
  accessTokens: string[]
  /** A well-formed token with a wrong signature. */
  badToken: string
  /** Refresh tokens, each the head of its own family; a connection takes one and then rotates it. */
  refreshTokens: string[]
  /** Prefix of the fresh emails `signup` creates. */
  signupPrefix: string
  signupPassword: string
}

export type LoadName = 'status_out' | 'status_in' | 'me' | 'me_bad' | 'token' | 'signup' | 'refresh'

const isUser = (body: string) => body.startsWith('{"id":') && body.includes('"email":"')

/** A fresh load (its per-connection counters start again) for one autocannon run. */
export function buildLoad (name: LoadName, fixture: Fixture, connections: number, duration: number): Load {
  const base = { url: fixture.baseUrl, connections, duration, timeout: 10 }
  // setupClient runs once per connection, in order: it hands each connection its own request.
  let connection = 0
  const perConnection = (requests: (index: number) => autocannon.Request[]) =>
    (client: autocannon.Client) => client.setRequests(requests(connection++))
  const bearer = (index: number) => ({ authorization: `Bearer ${fixture.accessTokens[index % fixture.accessTokens.length]}` })
  /** One GET of `path` per access token: autocannon gives connection i the i-th (mod their number), wrk sends them in turn. */
  const readWithEachToken = (path: string, expect: Expectation): Load => {
    const plain = fixture.accessTokens.map((_, i) => ({ method: 'GET' as const, path, headers: bearer(i) }))
    return { options: { ...base, setupClient: perConnection(i => [plain[i % plain.length]!]) }, expect, plain }
  }

  switch (name) {
    case 'status_out':
      return {
        options: { ...base, url: `${fixture.baseUrl}/auth/status` },
        expect: { status: 200, body: body => body === '{"logged_in":false}' },
        plain: [{ method: 'GET', path: '/auth/status' }]
      }
    case 'status_in':
      return readWithEachToken('/auth/status', { status: 200, body: body => body === '{"logged_in":true}' })
    case 'me':
      return readWithEachToken('/users/me', { status: 200, body: isUser })
    case 'me_bad': {
      const headers = { authorization: `Bearer ${fixture.badToken}` }
      return {
        options: { ...base, url: `${fixture.baseUrl}/users/me`, headers },
        expect: { status: 401, body: body => body.includes('"status":401') },
        plain: [{ method: 'GET', path: '/users/me', headers }]
      }
    }
    case 'token':
      return {
        options: {
          ...base,
          setupClient: perConnection(i => [{
            method: 'POST', path: '/token', headers: FORM, body: passwordGrantBody(fixture.users[i % fixture.users.length]!)
          }])
        },
        expect: { status: 200, body: body => body.includes('"access_token":"') }
      }
    case 'signup': {
      // Unique per load, so a warm-up and the measured run never collide on an email.
      const prefix = `${fixture.signupPrefix}-${randomBytes(4).toString('hex')}`
      let next = 0
      return {
        options: {
          ...base,
          requests: [{
            method: 'POST',
            path: '/users',
            headers: JSON_BODY,
            setupRequest: request => ({
              ...request,
              body: JSON.stringify({ email: `${prefix}-${next++}@example.com`, password: fixture.signupPassword })
            })
          }]
        },
        expect: { status: 201, body: isUser }
      }
    }
    case 'refresh':
      return {
        options: { ...base, setupClient: perConnection(() => rotatingRefresh(fixture.refreshTokens)) },
        expect: { status: 200, body: body => body.includes('"refresh_token":"') }
      }
  }
}

/**
 * One connection's refresh chain: each request presents the token the previous response
 * returned (rotation), so no token is ever presented twice. A connection whose chain broke
 * (an error, a timeout) starts a new one from the pool rather than replaying a retired token;
 * with the pool empty it sends a token the server cannot know, and the check counts the 400.
 */
function rotatingRefresh (pool: string[]): autocannon.Request[] {
  let current: string | undefined
  return [{
    method: 'POST',
    path: '/token',
    headers: FORM,
    setupRequest (request) {
      const token = current ?? pool.shift() ?? 'bench-refresh-pool-exhausted'
      current = undefined
      return { ...request, body: refreshGrantBody(token) }
    },
    onResponse (status, body) {
      // The load generator shares a core with MySQL in this scenario: the token is cut out of
      // the body rather than the body parsed (the check still reads every body).
      current = status === 200 ? fieldOf(body, 'refresh_token') : undefined
    }
  }]
}

/** A string field of a flat JSON object whose values need no unescaping (base64url tokens). */
function fieldOf (body: string, name: string): string | undefined {
  const key = `"${name}":"`
  const start = body.indexOf(key)
  if (start === -1) return undefined
  const end = body.indexOf('"', start + key.length)
  return end === -1 ? undefined : body.slice(start + key.length, end)
}

// The few plain HTTP calls the bench makes outside the measured load: seeding accounts and
// logging in. They go through the service's real endpoints, at the real argon2 cost.

export interface Credentials {
  email: string
  password: string
}

export interface Grant {
  access_token: string
  refresh_token?: string
}

export const FORM = { 'content-type': 'application/x-www-form-urlencoded' }
export const JSON_BODY = { 'content-type': 'application/json' }

export function passwordGrantBody ({ email, password }: Credentials): string {
  return new URLSearchParams({ grant_type: 'password', username: email, password }).toString()
}

export function refreshGrantBody (refreshToken: string): string {
  return `grant_type=refresh_token&refresh_token=${encodeURIComponent(refreshToken)}`
}

async function call (url: string, init: RequestInit, expected: number): Promise<unknown> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(30_000) })
  const text = await response.text()
  if (response.status !== expected) {
    throw new Error(`${init.method ?? 'GET'} ${new URL(url).pathname} answered ${response.status}, not ${expected}: ${text.slice(0, 200)}`)
  }
  return JSON.parse(text)
}

export async function createAccount (baseUrl: string, credentials: Credentials): Promise<void> {
  await call(`${baseUrl}/users`, { method: 'POST', headers: JSON_BODY, body: JSON.stringify(credentials) }, 201)
}

export async function logIn (baseUrl: string, credentials: Credentials): Promise<Grant> {
  return await call(`${baseUrl}/token`, { method: 'POST', headers: FORM, body: passwordGrantBody(credentials) }, 200) as Grant
}

/** Runs `task` over `items`, at most `limit` at a time, in order of the results. */
export async function inParallel<T, R> (items: T[], limit: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length)
  let next = 0
  async function lane () {
    while (next < items.length) {
      const index = next++
      results[index] = await task(items[index]!, index)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane))
  return results
}

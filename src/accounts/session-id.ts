import { random } from '../random.js'

const SESSION_ID_BYTES = 16
const ENCODED = /^[A-Za-z0-9_-]{22}$/

/** A new session id: 128 random bits, which is also the refresh-token family id. */
export function newSessionId (): Buffer {
  return random(SESSION_ID_BYTES)
}

/** The opaque string clients see (the `sid` claim, the `id` of GET /users/me/sessions). */
export function encodeSessionId (id: Buffer): string {
  return id.toString('base64url')
}

/** The stored id of a client's session id, or undefined when it cannot be one of ours. */
export function decodeSessionId (value: unknown): Buffer | undefined {
  if (typeof value !== 'string' || !ENCODED.test(value)) return undefined
  const id = Buffer.from(value, 'base64url')
  return id.length === SESSION_ID_BYTES && encodeSessionId(id) === value ? id : undefined
}

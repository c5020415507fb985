import { createHmac, timingSafeEqual } from 'node:crypto'
import { random } from '../random.js'
import { hashToken } from './email-tokens.js'

/**
 * A refresh token names its session and its place in the session's chain of rotations
 * (`generation`), and carries a random secret and a tag. The session row keeps the current
 * generation, the SHA-256 hash of the current secret and a per-session tag key, so a rotation is
 * one conditional UPDATE of the session's row instead of a row per token. The secret decides
 * whether a token is the current one: the database holds only its hash, so its contents do not
 * make a token. The tag, an HMAC under the session's key, shows that an older token was really
 * issued, so presenting one is a reuse (and ends the session) rather than a guess at a session id.
 */
export interface RefreshToken {
  sessionId: Buffer
  generation: number
  secret: Buffer
  tag: Buffer
}

const SESSION_BYTES = 16
const GENERATION_BYTES = 4
const SECRET_BYTES = 32
const TAG_BYTES = 16
export const REFRESH_KEY_BYTES = 32
const TOKEN_BYTES = SESSION_BYTES + GENERATION_BYTES + SECRET_BYTES + TAG_BYTES
/** 68 bytes in unpadded base64url. */
const ENCODED = /^[A-Za-z0-9_-]{91}$/
/** A token issued before migration 0008: 32 random bytes, kept as the SHA-256 of its text. */
const LEGACY = /^[A-Za-z0-9_-]{43}$/

/** The generation as the tag reads it; the whole tag is computed synchronously, so one buffer serves. */
const generationBytes = Buffer.alloc(GENERATION_BYTES)

function tagOf (key: Buffer, sessionId: Buffer, generation: number, secret: Buffer): Buffer {
  generationBytes.writeUInt32BE(generation)
  return createHmac('sha256', key).update(sessionId).update(generationBytes).update(secret).digest().subarray(0, TAG_BYTES)
}

/** A fresh secret for the next token of a chain, and the hash the session row keeps of it. */
export function newSecret (): { secret: Buffer, hash: Buffer } {
  const secret = random(SECRET_BYTES)
  return { secret, hash: hashToken(secret) }
}

export function newRefreshKey (): Buffer {
  return random(REFRESH_KEY_BYTES)
}

export function encodeRefreshToken (sessionId: Buffer, generation: number, secret: Buffer, key: Buffer): string {
  const out = Buffer.allocUnsafe(TOKEN_BYTES)
  sessionId.copy(out, 0)
  out.writeUInt32BE(generation, SESSION_BYTES)
  secret.copy(out, SESSION_BYTES + GENERATION_BYTES)
  tagOf(key, sessionId, generation, secret).copy(out, TOKEN_BYTES - TAG_BYTES)
  return out.toString('base64url')
}

/** The parts of a token in this format; undefined for anything else. */
export function decodeRefreshToken (token: string): RefreshToken | undefined {
  if (!ENCODED.test(token)) return undefined
  const bytes = Buffer.from(token, 'base64url')
  // 91 characters carry 68 bytes and 2 spare bits: only the form with those bits zero is ours.
  if (bytes.length !== TOKEN_BYTES || bytes.toString('base64url') !== token) return undefined
  return {
    sessionId: bytes.subarray(0, SESSION_BYTES),
    generation: bytes.readUInt32BE(SESSION_BYTES),
    secret: bytes.subarray(SESSION_BYTES + GENERATION_BYTES, TOKEN_BYTES - TAG_BYTES),
    tag: bytes.subarray(TOKEN_BYTES - TAG_BYTES)
  }
}

/** Whether the token's tag is the one the session's key gives it: the token was issued. */
export function isIssued (token: RefreshToken, key: Buffer): boolean {
  return timingSafeEqual(tagOf(key, token.sessionId, token.generation, token.secret), token.tag)
}

/** The stored hash of a token in the format before migration 0008, or undefined for anything else. */
export function legacyHash (token: string): Buffer | undefined {
  return LEGACY.test(token) ? hashToken(token) : undefined
}

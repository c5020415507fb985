import { random } from './random.js'

/**
 * A time-ordered UUID (RFC 9562 §5.7). Access tokens use it as `jti`, and its millisecond
 * timestamp tells when the token was issued more precisely than `iat` can.
 */
export function uuidv7 (now: number): string {
  const bytes = random(16)
  bytes.writeUIntBE(now, 0, 6)
  bytes[6] = 0x70 | (bytes[6]! & 0x0f)
  bytes[8] = 0x80 | (bytes[8]! & 0x3f)
  const hex = bytes.toString('hex')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
}

/** The millisecond timestamp of a UUIDv7, or NaN when the string is not one. */
export function uuidv7Time (id: string): number {
  if (id.length !== 36 || id[14] !== '7') return Number.NaN
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16)
}

import { randomFillSync } from 'node:crypto'

/**
 * Cryptographically strong random bytes, drawn from a pool the operating system's generator
 * fills 4 KiB at a time, as Node's own randomUUID does. Each call of randomFillSync or
 * randomBytes is a trip into OpenSSL of about 3 µs whatever its size, and a refresh wants two
 * (the next token's secret, the access token's jti), a login four. Every byte is handed out
 * once: copied out and wiped from the pool, which is filled again when spent.
 */
const POOL_BYTES = 4096
const pool = Buffer.alloc(POOL_BYTES)
let used = POOL_BYTES

export function random (size: number): Buffer {
  const out = Buffer.allocUnsafe(size)
  if (size > POOL_BYTES) return randomFillSync(out)
  if (used + size > POOL_BYTES) {
    randomFillSync(pool)
    used = 0
  }
  pool.copy(out, 0, used, used + size)
  pool.fill(0, used, used + size)
  used += size
  return out
}

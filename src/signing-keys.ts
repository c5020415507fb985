import { createHash, createPublicKey, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto'

export const ASYMMETRIC_ALGORITHMS = ['EdDSA', 'ES256', 'RS256'] as const
export type AsymmetricAlgorithm = typeof ASYMMETRIC_ALGORITHMS[number]

export const KEY_KINDS: Record<AsymmetricAlgorithm, string> = {
  EdDSA: 'an Ed25519 key',
  ES256: 'an EC P-256 key',
  RS256: 'an RSA key of at least 2048 bits'
}

/** The one algorithm a key signs with here, or undefined for a key the service does not use. */
export function algorithmOf (key: KeyObject): AsymmetricAlgorithm | undefined {
  switch (key.asymmetricKeyType) {
    case 'ed25519':
      return 'EdDSA'
    case 'ec':
      return key.asymmetricKeyDetails?.namedCurve === 'prime256v1' ? 'ES256' : undefined
    case 'rsa':
      return (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048 ? 'RS256' : undefined
    default:
      return undefined
  }
}

/** A public key as a JWKS member (RFC 7517 §4). */
export interface PublicJwk {
  kty: 'OKP' | 'EC' | 'RSA'
  crv?: string
  x?: string
  y?: string
  n?: string
  e?: string
  kid: string
  alg: AsymmetricAlgorithm
  use: 'sig'
}

/**
 * The key's RFC 7638 thumbprint: SHA-256 over its required members in lexicographic order.
 * As a `kid` it is derived, stable across restarts and instances, and reveals nothing.
 * @see https://www.rfc-editor.org/rfc/rfc7638#section-3.2
 */
export function thumbprint (jwk: JsonWebKey): string {
  const members = jwk.kty === 'RSA'
    ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
    : jwk.kty === 'EC'
      ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
      : { crv: jwk.crv, kty: jwk.kty, x: jwk.x }
  return createHash('sha256').update(JSON.stringify(members)).digest('base64url')
}

/** The public half of a key (private or public), with its kid, as published in the JWKS. */
export function publicJwk (key: KeyObject, alg: AsymmetricAlgorithm): PublicJwk {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key
  const { kty, crv, x, y, n, e } = publicKey.export({ format: 'jwk' })
  const jwk = { kty: kty as PublicJwk['kty'], crv, x, y, n, e }
  for (const name of ['crv', 'x', 'y', 'n', 'e'] as const) {
    if (jwk[name] === undefined) delete jwk[name]
  }
  return { ...jwk, kid: thumbprint(jwk), alg, use: 'sig' }
}

/** A fresh key pair in PEM: PKCS #8 private key, SPKI public key. */
export function generatePemKeyPair (alg: AsymmetricAlgorithm): { privateKey: string, publicKey: string } {
  const privateKeyEncoding = { type: 'pkcs8', format: 'pem' } as const
  const publicKeyEncoding = { type: 'spki', format: 'pem' } as const
  switch (alg) {
    case 'EdDSA':
      return generateKeyPairSync('ed25519', { privateKeyEncoding, publicKeyEncoding })
    case 'ES256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256', privateKeyEncoding, publicKeyEncoding })
    case 'RS256':
      return generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding, publicKeyEncoding })
  }
}

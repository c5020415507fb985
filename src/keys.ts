import { createPrivateKey } from 'node:crypto'
import { ASYMMETRIC_ALGORITHMS, generatePemKeyPair, publicJwk, type AsymmetricAlgorithm } from './signing-keys.js'

/**
 * `npm run keys -- EdDSA|ES256|RS256`: prints a new signing key pair in PEM. The private key is
 * JWT_PRIVATE_KEY; keep the public one to list in JWT_PREVIOUS_PUBLIC_KEYS after the next rotation.
 */
const algorithm = process.argv[2] as AsymmetricAlgorithm | undefined
if (algorithm === undefined || !ASYMMETRIC_ALGORITHMS.includes(algorithm)) {
  console.error(`usage: npm run keys -- ${ASYMMETRIC_ALGORITHMS.join('|')}`)
  process.exit(2)
}

const { privateKey, publicKey } = generatePemKeyPair(algorithm)
const { kid } = publicJwk(createPrivateKey(privateKey), algorithm)
process.stdout.write(`# ${algorithm} key pair, kid ${kid}\n${privateKey}${publicKey}`)

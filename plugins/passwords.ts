import { randomBytes } from 'node:crypto'
import argon2 from 'argon2'
import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'

declare module 'fastify' {
  interface FastifyInstance {
    passwords: Passwords
  }
}

export interface Passwords {
  /** An argon2id hash of the NFC-normalised password at the configured cost. */
  hash (password: string): Promise<string>
  /**
   * Checks a password against a stored hash. With no hash (unknown account) it verifies
   * against a dummy one, so an unknown email costs the same time as a wrong password.
   */
  verify (hash: string | undefined, password: string): Promise<{ valid: boolean, needsRehash: boolean }>
}

async function passwordsPlugin (fastify: FastifyInstance) {
  const cost = fastify.config.argon2
  const options: argon2.HashOptions = { type: argon2.argon2id, ...cost }
  const dummyHash = await argon2.hash(randomBytes(32), options)

  fastify.decorate('passwords', {
    hash: (password: string) => argon2.hash(password.normalize('NFC'), options),
    async verify (hash: string | undefined, password: string) {
      const valid = await argon2.verify(hash ?? dummyHash, password.normalize('NFC'))
      return { valid: valid && hash !== undefined, needsRehash: valid && hash !== undefined && argon2.needsRehash(hash, cost) }
    }
  })
}

export default fp(passwordsPlugin, { name: 'passwords', dependencies: ['config'] })

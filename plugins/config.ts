import fp from 'fastify-plugin'
import type { FastifyInstance } from 'fastify'
import type { Config } from '../src/config.js'

declare module 'fastify' {
  interface FastifyInstance {
    config: Config
    /** The current time in milliseconds; tests inject their own clock. */
    now: () => number
  }
}

export interface ConfigPluginOptions {
  config: Config
  now?: () => number
}

async function configPlugin (fastify: FastifyInstance, { config, now = Date.now }: ConfigPluginOptions) {
  fastify.decorate('config', config)
  fastify.decorate('now', now)
}

export default fp(configPlugin, { name: 'config' })

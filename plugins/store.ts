import fp from 'fastify-plugin'
import type { MySQLPromisePool } from '@fastify/mysql'
import type { FastifyInstance } from 'fastify'
import { createMigrator, type MigrationTarget, type Migrator } from '../src/migrator.js'
import { createMysqlStore, poolOptions } from '../src/store/mysql.js'
import { createSqliteStore, openSqlite } from '../src/store/sqlite.js'
import type { Store } from '../src/store/store.js'

declare module 'fastify' {
  interface FastifyInstance {
    store: Store
    migrator: Migrator
    /** Decorated by @fastify/mysql, which does not declare it. */
    mysql: MySQLPromisePool
  }
}

async function storePlugin (fastify: FastifyInstance) {
  const { database, migrateOnStart, causalReads } = fastify.config
  let target: MigrationTarget
  let store: Store

  if (database.kind === 'mysql') {
    // Loaded only here: mysql2 adds about 4 MiB to a process that runs on SQLite.
    const { default: fastifyMysql } = await import('@fastify/mysql')
    // @fastify/mysql ends the pool in its own onClose hook.
    await fastify.register(fastifyMysql, { promise: true, uri: database.url, ...poolOptions })
    target = { dialect: 'mysql', pool: fastify.mysql.pool }
    store = createMysqlStore(fastify.mysql.pool, { causalReads })
  } else {
    const db = openSqlite(database.path)
    fastify.addHook('onClose', async () => { db.close() })
    target = { dialect: 'sqlite', db }
    store = createSqliteStore(db)
  }

  const migrator = createMigrator(target, fastify.log, fastify.now)
  if (migrateOnStart) await migrator.up()

  fastify.decorate('store', fastify.tracing?.traceStore(store) ?? store)
  fastify.decorate('migrator', migrator)
}

export default fp(storePlugin, { name: 'store', dependencies: ['config', 'tracing'] })

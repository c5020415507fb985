import t from 'tap'
import mysql from 'mysql2/promise'
import { createMigrator } from '../../src/migrator.js'
import { openSqlite } from '../../src/store/sqlite.js'
import { eachDialect, freshDatabase } from '../helper.js'

const ALL = ['0001-users', '0002-sessions', '0003-login-failures']
const TABLES = ['login_failures', 'refresh_tokens', 'schema_migrations', 'users']

eachDialect(t, 'migrations', async (t, dialect) => {
  const url = await freshDatabase(t, dialect)
  let target: Parameters<typeof createMigrator>[0]
  let tables: () => Promise<string[]>
  if (dialect === 'sqlite') {
    const db = openSqlite(url.slice('sqlite:'.length))
    t.teardown(() => db.close())
    target = { dialect, db }
    tables = async () => (db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>).map(r => r.name)
  } else {
    const pool = mysql.createPool({ uri: url, connectionLimit: 4 })
    t.teardown(() => pool.end())
    target = { dialect, pool }
    tables = async () => ((await pool.query('SHOW TABLES'))[0] as Array<Record<string, string>>).map(r => Object.values(r)[0]!).sort()
  }
  const migrator = createMigrator(target)
  // On MySQL the migration lock is a row of its own table, which stays.
  const bookkeeping = dialect === 'mysql' ? ['schema_migrations', 'schema_migrations_lock'] : ['schema_migrations']
  const everyTable = [...new Set([...TABLES, ...bookkeeping])].sort()

  t.test('up, down and up again', async t => {
    t.same(await migrator.pending(), ALL)
    t.same(await migrator.up(), ALL)
    t.same(await migrator.executed(), ALL)
    t.same(await migrator.pending(), [])
    t.same(await tables(), everyTable)
    t.same(await migrator.up(), [], 'nothing to apply twice')

    t.same(await migrator.down({ all: true }), [...ALL].reverse())
    t.same(await migrator.executed(), [])
    t.same(await tables(), bookkeeping)

    t.same(await migrator.up(), ALL)
    t.same(await tables(), everyTable)
  })

  t.test('down reverts one migration at a time', async t => {
    t.same(await migrator.down(), [ALL.at(-1)])
    t.same(await migrator.pending(), [ALL.at(-1)])
    await migrator.up()
  })

  if (dialect === 'mysql') {
    t.test('two instances migrating at once apply each migration once', async t => {
      const other = await freshDatabase(t, dialect)
      const pools = [mysql.createPool({ uri: other }), mysql.createPool({ uri: other })]
      t.teardown(() => Promise.all(pools.map(p => p.end())))
      const results = await Promise.all(pools.map(pool => createMigrator({ dialect: 'mysql', pool }).up()))
      t.same(results.flat().sort(), ALL, 'between them, each migration was applied exactly once')
      t.same(await createMigrator({ dialect: 'mysql', pool: pools[0]! }).executed(), ALL)
    })

    t.test('a lock whose lease ran out, left by an instance that died, is taken over', async t => {
      const other = await freshDatabase(t, dialect)
      const pool = mysql.createPool({ uri: other, connectionLimit: 2 })
      t.teardown(() => pool.end())
      const migrator = createMigrator({ dialect: 'mysql', pool })
      t.same(await migrator.up(), ALL)
      await migrator.down()
      await pool.query("INSERT INTO schema_migrations_lock (id, owner, expires_at) VALUES (1, 'dead', NOW(3) - INTERVAL 1 SECOND)")
      t.same(await migrator.up(), [ALL.at(-1)])
      t.same((await pool.query('SELECT owner FROM schema_migrations_lock'))[0], [], 'the lock is free again')
    })
  }
})

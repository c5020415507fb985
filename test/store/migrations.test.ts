import t from 'tap'
import mysql from 'mysql2/promise'
import { createMigrator, statementsOf } from '../../src/migrator.js'
import { openSqlite } from '../../src/store/sqlite.js'
import type { SqliteValue } from '../../src/store/sqlite-driver.js'
import { eachDialect, freshDatabase } from '../helper.js'

const ALL = ['0001-users', '0002-sessions', '0003-login-failures', '0004-account-lifecycle', '0005-email', '0006-disabled-accounts', '0007-refresh-rotation', '0008-refresh-chains', '0009-refresh-chain-rows']
const TABLES = ['account_tokens', 'login_failures', 'outbox', 'refresh_tokens', 'schema_migrations', 'security_events', 'sessions', 'users']

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
  /** A statement on the migrated database: a SELECT's rows, nothing for the others. */
  const query = async (sql: string, values: unknown[] = []) => {
    if (dialect === 'mysql') return (await (target as { pool: mysql.Pool }).pool.query(sql, values))[0] as Array<Record<string, unknown>>
    const statement = (target as { db: ReturnType<typeof openSqlite> }).db.prepare(sql)
    if (!sql.startsWith('SELECT')) {
      statement.run(...(values as SqliteValue[]))
      return []
    }
    return statement.all(...(values as SqliteValue[])) as Array<Record<string, unknown>>
  }

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

  t.test('0004 turns the refresh-token families that exist into sessions', async t => {
    t.same(await migrator.down(), ['0009-refresh-chain-rows'])
    t.same(await migrator.down(), ['0008-refresh-chains'])
    t.same(await migrator.down(), ['0007-refresh-rotation'])
    t.same(await migrator.down(), ['0006-disabled-accounts'])
    t.same(await migrator.down(), ['0005-email'])
    t.same(await migrator.down(), ['0004-account-lifecycle'])
    const live = Buffer.alloc(16, 1)
    const revoked = Buffer.alloc(16, 2)
    const rows: Array<[number, Buffer, number, number, number | null, number | null]> = [
      // token, family, created, expires, used, revoked
      [1, live, 1000, 9000, 2000, null],
      [2, live, 2000, 10_000, null, null],
      [3, revoked, 3000, 11_000, null, 4000]
    ]
    const sessions = async () => {
      const sql = 'SELECT id, user_id, created_at, last_used_at, expires_at, ended_at, ip, user_agent FROM sessions ORDER BY created_at'
      const found = dialect === 'sqlite'
        ? (target as { db: ReturnType<typeof openSqlite> }).db.prepare(sql).all()
        : (await (target as { pool: mysql.Pool }).pool.query(sql))[0]
      return (found as Array<Record<string, unknown>>).map(row => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === 'bigint' || (typeof v === 'string' && /^\d+$/.test(v)) ? Number(v) : v])))
    }
    const run = async (sql: string, values: unknown[]) => {
      if (dialect === 'sqlite') (target as { db: ReturnType<typeof openSqlite> }).db.prepare(sql).run(...(values as SqliteValue[]))
      else await (target as { pool: mysql.Pool }).pool.execute(sql, values as never)
    }
    await run('INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)', [7, 'ada@example.com', 'x', dialect === 'sqlite' ? '2026-01-01T00:00:00.000Z' : new Date(0)])
    for (const [n, family, created, expires, used, revokedAt] of rows) {
      await run('INSERT INTO refresh_tokens (token_hash, user_id, family_id, created_at, expires_at, used_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
        [Buffer.alloc(32, n), 7, family, created, expires, used, revokedAt])
    }
    t.same(await migrator.up(), ['0004-account-lifecycle', '0005-email', '0006-disabled-accounts', '0007-refresh-rotation', '0008-refresh-chains', '0009-refresh-chain-rows'])
    t.same(await sessions(), [
      { id: live, user_id: 7, created_at: 1000, last_used_at: 2000, expires_at: 10_000, ended_at: null, ip: null, user_agent: null },
      { id: revoked, user_id: 7, created_at: 3000, last_used_at: 3000, expires_at: 11_000, ended_at: 4000, ip: null, user_agent: null }
    ])
    await run('DELETE FROM users WHERE id = ?', [7])
    t.same(await sessions(), [], 'sessions go with their user')
  })

  t.test('0006 adds users.disabled_at, NULL for the accounts that exist, and takes it away again', async t => {
    t.same(await migrator.down(), ['0009-refresh-chain-rows'])
    t.same(await migrator.down(), ['0008-refresh-chains'])
    t.same(await migrator.down(), ['0007-refresh-rotation'])
    t.same(await migrator.down(), ['0006-disabled-accounts'])
    await query('INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)', [8, 'grace@example.com', 'x', dialect === 'sqlite' ? '2026-01-01T00:00:00.000Z' : new Date(0)])
    await t.rejects(query('SELECT disabled_at FROM users'), 'no column before 0006')
    t.same(await migrator.up(), ['0006-disabled-accounts', '0007-refresh-rotation', '0008-refresh-chains', '0009-refresh-chain-rows'])
    t.same(await query('SELECT id, disabled_at FROM users'), [{ id: 8, disabled_at: null }])
    await query('UPDATE users SET disabled_at = ? WHERE id = ?', [1_900_000_000_000, 8])
    t.same((await query('SELECT disabled_at FROM users')).map(r => Number(r.disabled_at)), [1_900_000_000_000], 'epoch milliseconds fit')
    t.same(await migrator.down(), ['0009-refresh-chain-rows'])
    t.same(await migrator.down(), ['0008-refresh-chains'])
    t.same(await migrator.down(), ['0007-refresh-rotation'])
    t.same(await migrator.down(), ['0006-disabled-accounts'])
    t.same(await query('SELECT id, email FROM users'), [{ id: 8, email: 'grace@example.com' }], 'the account stays')
    t.same(await migrator.up(), ['0006-disabled-accounts', '0007-refresh-rotation', '0008-refresh-chains', '0009-refresh-chain-rows'])
    await query('DELETE FROM users WHERE id = ?', [8])
  })

  t.test('0008 keeps refresh-token chains in sessions; down ends the sessions that have one', async t => {
    const procedures = async () => dialect === 'sqlite'
      ? []
      : (await query('SELECT routine_name AS name FROM information_schema.routines WHERE routine_schema = DATABASE()')).map(r => r.name)
    t.same(await procedures(), dialect === 'mysql' ? ['rotate_refresh_chains'] : [], 'the procedure that rotates chains')
    await query('INSERT INTO users (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)', [9, 'alan@example.com', 'x', dialect === 'sqlite' ? '2026-01-01T00:00:00.000Z' : new Date(0)])
    const session = (id: number, key: Buffer | null) => query(
      'INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, refresh_hash, refresh_key) VALUES (?, 9, 1000, 2000, 9000, ?, ?)',
      [Buffer.alloc(16, id), key === null ? null : Buffer.alloc(32, id), key])
    await session(1, Buffer.alloc(32, 7))
    await session(2, null)
    t.same((await query('SELECT refresh_generation AS g FROM sessions WHERE user_id = 9')).map(r => Number(r.g)), [0, 0], 'chains start at generation 0')
    t.same(await migrator.down(), ['0009-refresh-chain-rows'])
    t.same(await migrator.down(), ['0008-refresh-chains'])
    t.same((await query('SELECT id, ended_at FROM sessions WHERE user_id = 9 ORDER BY id')).map(r => r.ended_at === null ? null : Number(r.ended_at)),
      [2000, null], 'a session with a chain ends (the code before 0008 cannot rotate it); one without stays')
    if (dialect === 'mysql') t.same(await procedures(), ['rotate_refresh_tokens'], "0007's procedure is back")
    t.same(await migrator.up(), ['0008-refresh-chains', '0009-refresh-chain-rows'])
    t.same(await procedures(), dialect === 'mysql' ? ['rotate_refresh_chains'] : [])
    await query('DELETE FROM users WHERE id = 9')
  })

  if (dialect === 'mysql') {
    t.test("0009's procedure answers with rows, 0008's with a JSON string", async t => {
      const pool = (target as { pool: mysql.Pool }).pool
      await query('INSERT INTO users (id, email, password_hash, created_at, tokens_not_before) VALUES (?, ?, ?, ?, ?)', [10, 'edsger@example.com', 'x', new Date(0), 500])
      const id = Buffer.alloc(16, 10)
      const hash = (n: number) => Buffer.alloc(32, n)
      await query('INSERT INTO sessions (id, user_id, created_at, last_used_at, expires_at, refresh_hash, refresh_key) VALUES (?, 10, 1000, 1000, 9000, ?, ?)', [id, hash(1), hash(9)])
      // Two rotations: the live one (generation 0, hash 1 to hash 2), then one naming no session.
      const batch = (from: number, to: number) => {
        const bytes = Buffer.alloc(200)
        id.copy(bytes, 0)
        bytes.writeUInt32BE(from - 1, 16)
        hash(from).copy(bytes, 20)
        hash(to).copy(bytes, 52)
        bytes.writeBigInt64BE(2000n, 84)
        bytes.writeBigInt64BE(9500n, 92)
        Buffer.alloc(16, 99).copy(bytes, 100)
        return bytes
      }
      const call = async (bytes: Buffer) => (await pool.execute<mysql.RowDataPacket[][]>('CALL rotate_refresh_chains(?)', [bytes]))[0][0]!
      t.same((await call(batch(1, 2))).map(r => ({ ...r, expires_at: Number(r.expires_at) })), [
        { i: 0, user_id: 10, refresh_generation: 1, refresh_hash: hash(2), refresh_key: hash(9), ended_at: null, expires_at: 9500, tokens_not_before: 500 }
      ], 'a row for the rotation that found its session, moved; none for the session that does not exist')
      t.same(await migrator.down(), ['0009-refresh-chain-rows'])
      const [answer] = await call(batch(2, 3))
      t.same(JSON.parse(answer!.answers as string).map((a: unknown[]) => a.slice(0, 2).map(Number)), [[10, 2], [0, 0]],
        "0008's procedure is back: one JSON string, nulls for the missing session")
      t.same(await migrator.up(), ['0009-refresh-chain-rows'])
      await query('DELETE FROM users WHERE id = 10')
    })
  }

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

t.test('a script splits into statements as the mysql client splits it', async t => {
  t.same(statementsOf('-- a comment\nCREATE TABLE a (x INT);\nINSERT INTO a VALUES (1);  \n\nDROP TABLE a'),
    ['CREATE TABLE a (x INT)', 'INSERT INTO a VALUES (1)', 'DROP TABLE a'])
  t.same(statementsOf("SELECT 'a; b';\nSELECT 1;"), ["SELECT 'a; b'", 'SELECT 1'], 'a semicolon inside a line ends nothing')
  const script = [
    'DELIMITER //',
    'CREATE PROCEDURE p ()',
    'BEGIN',
    '  -- inside the body',
    '  SELECT 1;',
    '  SELECT 2;',
    'END //',
    'DELIMITER ;',
    'SELECT 3;'
  ].join('\n')
  t.same(statementsOf(script), ['CREATE PROCEDURE p ()\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND', 'SELECT 3'],
    'a procedure body is one statement; the delimiter comes back')
})

import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { openSqliteDriver, sqliteDriver } from '../../src/store/sqlite-driver.js'

const hasBuiltin = process.getBuiltinModule('node:sqlite') !== undefined

function open (t: Test, path = ':memory:') {
  const db = openSqliteDriver(path)
  t.teardown(() => db.close())
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT UNIQUE, data BLOB)')
  return db
}

t.test(`Node ${process.versions.node} runs ${hasBuiltin ? 'node:sqlite' : 'better-sqlite3'}`, async t => {
  t.equal(sqliteDriver(), hasBuiltin ? 'node:sqlite' : 'better-sqlite3')
  const db = open(t)
  t.equal(db.driver, sqliteDriver())
  const loaded = Object.keys(createRequire(import.meta.url).cache).some(path => path.includes('/better-sqlite3/'))
  t.equal(loaded, !hasBuiltin, hasBuiltin ? 'better-sqlite3 is never loaded' : 'better-sqlite3 is loaded')
})

t.test('run, get and all answer the same shapes on both drivers', async t => {
  const db = open(t)
  const insert = db.prepare('INSERT INTO items (name, data) VALUES (?, ?)')
  t.same(insert.run('a', Buffer.from([1, 2, 3])), { changes: 1, lastInsertRowid: 1 })
  t.same(insert.run('b', null), { changes: 1, lastInsertRowid: 2 })
  const row = db.prepare('SELECT id, name, data FROM items WHERE name = ?').get('a')!
  t.ok(Buffer.isBuffer(row.data), 'a BLOB comes back as a Buffer')
  t.ok((row.data as Buffer).equals(Buffer.from([1, 2, 3])))
  t.equal(db.prepare('SELECT id FROM items WHERE name = ?').get('none'), undefined)
  t.same(db.prepare('SELECT name FROM items ORDER BY id').all().map(r => r.name), ['a', 'b'])
  t.equal(typeof db.prepare('DELETE FROM items').run().changes, 'number')
})

t.test('immediate commits, rolls back on a throw, and nests as a savepoint', async t => {
  const db = open(t)
  const insert = db.prepare('INSERT INTO items (name) VALUES (?)')
  const names = () => db.prepare('SELECT name FROM items ORDER BY id').all().map(r => r.name)

  t.equal(db.immediate(() => { insert.run('kept'); return 'done' }), 'done')
  t.throws(() => db.immediate(() => { insert.run('undone'); throw new Error('boom') }), /boom/)
  t.same(names(), ['kept'])

  db.immediate(() => {
    insert.run('outer')
    t.throws(() => db.immediate(() => { insert.run('inner'); throw new Error('inner boom') }))
  })
  t.same(names(), ['kept', 'outer'], 'the inner failure undid only the inner write')

  t.throws(() => db.immediate(() => insert.run('kept')), { code: 'SQLITE_CONSTRAINT_UNIQUE' })
  db.immediate(() => insert.run('after'))
  t.same(names(), ['kept', 'outer', 'after'], 'a failed transaction leaves none open')
})

t.test('a locked database is SQLITE_BUSY, the code the service answers 503 for', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-driver-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'x.db')
  const one = open(t, path)
  const two = openSqliteDriver(path)
  t.teardown(() => two.close())
  two.exec('PRAGMA busy_timeout = 0')
  one.immediate(() => {
    one.prepare('INSERT INTO items (name) VALUES (?)').run('held')
    t.throws(() => two.immediate(() => {}), { code: 'SQLITE_BUSY' })
  })
})

t.test('opening SQLite prints no warning', async t => {
  const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', "import('./src/store/sqlite-driver.ts').then(m => m.openSqliteDriver(':memory:').close())"], { encoding: 'utf8' })
  t.equal(child.status, 0)
  t.equal(child.stderr, '')
})

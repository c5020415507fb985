import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)

t.test('npm run migrate -- pending|up|executed|down', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-migrate-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const env = { PATH: process.env.PATH, DATABASE_URL: `sqlite:${join(dir, 'auth.db')}` }
  const migrate = async (command: string) => (await run(process.execPath, ['--import', 'tsx', 'src/migrate.ts', command], { env })).stdout

  t.match(await migrate('pending'), /^0001-users$/m)
  t.match(await migrate('up'), /migration 0001-users applied/)
  t.match(await migrate('pending'), /\(none pending\)/)
  t.match(await migrate('executed'), /^0001-users$/m)
  t.match(await migrate('down'), /migration \d{4}-[\w-]+ reverted/)
  await t.rejects(migrate('sideways'), { code: 2, stderr: /usage: npm run migrate -- up\|down\|pending\|executed/ })
})

t.test('a start that finds nothing pending does not load umzug', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-migrate-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // Each run is a fresh process: umzug, once loaded, stays for the process's lifetime.
  const script = `
    import { createRequire } from 'node:module'
    import { createMigrator } from './src/migrator.ts'
    import { openSqlite } from './src/store/sqlite.ts'
    const db = openSqlite(${JSON.stringify(join(dir, 'auth.db'))})
    const applied = await createMigrator({ dialect: 'sqlite', db }).up()
    const loaded = Object.keys(createRequire(import.meta.url).cache).some(file => file.includes('/node_modules/umzug/'))
    db.close()
    console.log(JSON.stringify({ applied: applied.length, loaded }))`
  const start = async () => JSON.parse((await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script])).stdout) as { applied: number, loaded: boolean }

  const first = await start()
  t.ok(first.applied > 0, 'the first start applies the migrations')
  t.equal(first.loaded, true, 'with umzug')
  t.same(await start(), { applied: 0, loaded: false }, 'the next finds nothing pending and leaves umzug unloaded')
})

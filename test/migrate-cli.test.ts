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

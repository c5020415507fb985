import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)

t.test('a package required uncached is collected once its exports are dropped', async t => {
  // umzug loads graceful-fs, which hangs its queue on globalThis and so is never collected; the
  // rest of what umzug loaded must be, though graceful-fs's module had them as parents.
  const script = `
    import { createRequire } from 'node:module'
    import { setImmediate } from 'node:timers/promises'
    import { requireUncached } from './src/require-uncached.ts'
    const umzug = new WeakRef(requireUncached('umzug').Umzug)
    const cached = Object.keys(createRequire(import.meta.url).cache).filter(file => file.includes('/node_modules/umzug/')).length
    for (let i = 0; i < 3; i++) { await setImmediate(); gc() }
    console.log(JSON.stringify({ cached, collected: umzug.deref() === undefined }))`
  const { stdout } = await run(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script])
  t.same(JSON.parse(stdout), { cached: 0, collected: true })
})

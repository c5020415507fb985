import { spawn } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { PASSWORD } from './helper.js'
import { POOL_NICENESS } from '../src/thread-priority.js'

/** Starts src/server.ts as the README's command would, and resolves with its address. */
function startServer (t: Test, env: Record<string, string>) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/server.ts'], {
    env: { PATH: process.env.PATH, HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'info', ARGON2_MEMORY_KIB: '1024', ARGON2_ITERATIONS: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  const exited = new Promise<number | null>(resolve => child.on('exit', code => resolve(code)))
  t.teardown(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const address = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', chunk => {
      output += chunk
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output)
      if (match) resolve(match[1]!)
    })
    child.stderr.on('data', chunk => { output += chunk })
    exited.then(code => reject(new Error(`server exited with ${code}: ${output}`)))
  })
  return { child, address, exited, output: () => output }
}

t.test('the server starts on the embedded default, serves over a real socket and stops on SIGTERM', async t => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-server-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const server = startServer(t, { DATABASE_URL: `sqlite:${join(dir, 'auth.db')}` })
  const base = await server.address

  const health = await fetch(`${base}/health`)
  t.equal(health.status, 200)
  t.ok(health.headers.get('x-request-id'))

  const signup = await fetch(`${base}/users`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'ada@example.com', password: PASSWORD }) })
  t.equal(signup.status, 201)
  const token = await fetch(`${base}/token`, { method: 'POST', body: new URLSearchParams({ grant_type: 'password', username: 'ada@example.com', password: PASSWORD }) })
  t.equal(token.status, 200)
  const { access_token: accessToken } = await token.json() as { access_token: string }
  const me = await fetch(`${base}/users/me`, { headers: { authorization: `Bearer ${accessToken}` } })
  t.equal(me.status, 200)
  t.equal((await me.json() as { email: string }).email, 'ada@example.com')
  t.same(await (await fetch(`${base}/auth/status`)).json(), { logged_in: false })

  t.notMatch(server.output(), PASSWORD, 'the password never reaches the log')
  t.notMatch(server.output(), accessToken, 'the token never reaches the log')

  server.child.kill('SIGTERM')
  t.equal(await server.exited, 0, 'exits cleanly')
  t.match(server.output(), /"signal":"SIGTERM"/)
})

t.test('a bad setting stops the start with a message naming it, and no stack trace', async t => {
  const server = startServer(t, { DATABASE_URL: 'sqlite::memory:', PORT: 'eighty' })
  await t.rejects(server.address)
  t.equal(await server.exited, 1)
  t.match(server.output(), /PORT/)
  t.notMatch(server.output(), /\n\s+at /)
})

t.test('on Linux the password hashing threads run below the event loop', { skip: process.platform !== 'linux' && 'thread priorities are read from /proc (Linux only)' }, async t => {
  const dir = mkdtempSync(join(tmpdir(), 'auth-server-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // The production cost: each warm-up hash must use measurable CPU time (clock ticks).
  const server = startServer(t, { DATABASE_URL: `sqlite:${join(dir, 'auth.db')}`, ARGON2_MEMORY_KIB: '19456', ARGON2_ITERATIONS: '2', LOG_LEVEL: 'debug' })
  await server.address
  const pid = server.child.pid!
  const nice = (tid: string) => Number(readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ')[16])
  const lowered = readdirSync(`/proc/${pid}/task`).filter(tid => nice(tid) === POOL_NICENESS)
  t.equal(nice(String(pid)), 0, 'the main thread (the event loop) keeps its priority')
  t.ok(lowered.length >= 1 && lowered.length <= 4, `${lowered.length} of libuv's 4 pool threads lowered`)
  t.match(server.output(), new RegExp(`"threads":${lowered.length},"niceness":${POOL_NICENESS},"msg":"password hashing threads run below the event loop"`))
})

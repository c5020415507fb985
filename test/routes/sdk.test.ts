import { mkdirSync, writeFileSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { dirname, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import openapiTS, { astToString } from 'openapi-typescript'
import t from 'tap'
import ts from 'typescript'
import { build, PASSWORD } from '../helper.js'

const ROOT = resolve(import.meta.dirname, '..', '..')
const GENERATED = join(ROOT, 'test', 'artifacts', 'sdk', 'openapi.d.ts')
const CLIENT = join(ROOT, 'test', 'sdk', 'client.ts')

type Journey = (baseUrl: string, email: string, password: string) => Promise<{
  created: { id: number, email: string, created_at: string }
  me: unknown
  loggedIn: boolean
  loggedOut: boolean
  emailFlows: Record<string, unknown>
  sessions: Array<{ id: string, current: boolean, user_agent: string | null }>
  endedSessionStatus: number
  wrongPassword: { status: number, detail: string }
  oldTokenWorks: boolean
  newTokenWorks: boolean
  events: Array<{ type: string }>
  deleted: number
  afterDeletion: number
}>

/** Type-checks one file with the project's compiler options, as `tsc --noEmit` would. */
function typeCheck (file: string): string[] {
  const config = ts.getParsedCommandLineOfConfigFile(join(ROOT, 'tsconfig.json'), {}, {
    ...ts.sys,
    onUnRecoverableConfigFileDiagnostic: d => { throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n')) }
  })!
  const program = ts.createProgram([file], { ...config.options, noEmit: true })
  return ts.getPreEmitDiagnostics(program).map(d => {
    const where = d.file === undefined ? '' : `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start ?? 0).line + 1}: `
    return where + ts.flattenDiagnosticMessageText(d.messageText, '\n')
  })
}

t.test('an SDK generated from the served document signs up, logs in and calls the API', async t => {
  const app = await build(t, 'sqlite')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`

  // Generated from what the service serves, at test time, so it can never be stale.
  const ast = await openapiTS(await (await fetch(`${base}/openapi.json`)).text())
  mkdirSync(dirname(GENERATED), { recursive: true })
  writeFileSync(GENERATED, astToString(ast))

  t.same(typeCheck(CLIENT), [], 'the client type-checks against the generated types (its @ts-expect-error lines included)')

  // Imported by path: a static import would pull the file into the project's own type-check.
  const { journey } = await import(pathToFileURL(CLIENT).href) as { journey: Journey }
  const result = await journey(base, 'Grace@Example.com', PASSWORD)
  t.match(result.created, { id: Number, email: 'grace@example.com', created_at: String })
  t.same(result.me, { ...result.created, email_verified: false })
  t.equal(result.loggedIn, true)
  t.equal(result.loggedOut, true)
  t.same(result.emailFlows, {
    resetRequested: 202,
    badReset: 400,
    badResetDetail: 'The reset token is invalid, expired or already used; ask for a new one',
    badVerification: 400,
    verificationRequested: 202
  }, 'the email operations, typed by the generated SDK')
  t.same(result.sessions.map(s => s.current), [false, true], 'two devices, the newer first, the caller\'s current')
  t.equal(result.sessions[0]!.user_agent, 'node', 'fetch\'s own user agent')
  t.equal(result.endedSessionStatus, 401, 'the ended device is refused')
  t.same(result.wrongPassword, { status: 403, detail: 'The current password is incorrect' })
  t.equal(result.oldTokenWorks, false)
  t.equal(result.newTokenWorks, true)
  t.same(result.events.map(e => e.type), ['password_changed', 'login_failed', 'session_revoked', 'login', 'password_reset_requested', 'login', 'signup'])
  t.equal(result.deleted, 204)
  t.equal(result.afterDeletion, 401)
})

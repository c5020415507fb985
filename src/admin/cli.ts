/**
 * The operators' command line (`npm run admin -- <command>`), as a function of its arguments,
 * environment, output streams and clock, so tests run it in-process. src/admin.ts is the entry.
 */
import { existsSync } from 'node:fs'
import { accountSubject } from '../../plugins/login-limits.js'
import { normaliseEmail } from '../accounts/email.js'
import { eventJson, RECENT_EVENTS, type SecurityEventType } from '../accounts/events.js'
import { ConfigError, loadConfig, type Config, type Database } from '../config.js'
import { createMigrator } from '../migrator.js'
import { createMysqlStore } from '../store/mysql.js'
import { openDatabase } from '../store/open.js'
import { createSqliteStore } from '../store/sqlite.js'
import type { OutboxEntry, Store, UserRecord } from '../store/store.js'

export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  noAccount: 3,
  database: 4
} as const

export interface Output {
  write (text: string): unknown
}

export interface AdminContext {
  env: NodeJS.ProcessEnv
  stdout: Output
  stderr: Output
  /** The one instant (epoch ms) the whole run takes as now. */
  now: number
}

export const HELP = `usage: npm run admin -- <command> [--json]
       node dist/src/admin.js <command> [--json]      (in the Docker image)

Works on the database DATABASE_URL names, which must be migrated.

commands:
  user show EMAIL           the account: id, created, verified, disabled, failed logins, live sessions
  user disable EMAIL        refuse its logins; ends every session, so its tokens are refused at once
  user enable EMAIL         lift the disabling
  user delete EMAIL         delete the account and everything kept for it (as DELETE /users/me)
  user end-sessions EMAIL   end every session (logout everywhere)
  user verify-email EMAIL   mark the email address verified
  events EMAIL              the account's security events, newest first
  outbox                    the messages waiting to be sent (never their links or bodies)
  outbox retry              failed messages become pending again, with a fresh start

flags:
  --json    one JSON document on stdout, for scripts
  --help    this text

exit codes:
  0  success (also when nothing needed changing)
  1  failure (unexpected, or an invalid configuration)
  2  usage error: unknown command, missing argument or unknown flag
  3  no account with that email
  4  the database does not answer, or is not migrated
`

class AdminError extends Error {
  constructor (readonly exitCode: number, message: string) {
    super(message)
  }
}

const usage = (message: string) => new AdminError(EXIT.usage, `${message} (see --help)`)

interface Invocation {
  words: string[]
  json: boolean
  help: boolean
}

function parse (argv: string[]): Invocation {
  const invocation: Invocation = { words: [], json: false, help: false }
  for (const arg of argv) {
    if (arg === '--json') invocation.json = true
    else if (arg === '--help' || arg === '-h') invocation.help = true
    else if (arg.startsWith('-') && arg.length > 1) throw usage(`unknown flag ${arg}`)
    else invocation.words.push(arg)
  }
  return invocation
}

/** What a command prints: the JSON document, and the same for a person. */
interface Result {
  json: unknown
  text: string
}

interface Session {
  store: Store
  config: Config
  now: number
}

type UserAction = (session: Session, user: UserRecord) => Promise<Result>

const iso = (ms: number) => new Date(ms).toISOString()
const since = (ms: number | null) => ms === null ? 'no' : `yes, since ${iso(ms)}`

async function showUser ({ store, config, now }: Session, user: UserRecord): Promise<Result> {
  const { perAccount, window } = config.loginLimit
  const [failures] = await store.countLoginFailures([accountSubject(user.email)], now - window * 1000)
  const failedLogins = failures!.count
  const liveSessions = (await store.listSessions(user.id, now)).length
  const json = {
    id: user.id,
    email: user.email,
    created_at: user.createdAt.toISOString(),
    email_verified: user.emailVerifiedAt !== null,
    email_verified_at: user.emailVerifiedAt === null ? null : iso(user.emailVerifiedAt),
    disabled: user.disabledAt !== null,
    disabled_at: user.disabledAt === null ? null : iso(user.disabledAt),
    failed_logins: failedLogins,
    locked: failedLogins >= perAccount,
    live_sessions: liveSessions
  }
  const text = [
    ['id', user.id],
    ['email', user.email],
    ['created_at', json.created_at],
    ['email_verified', since(user.emailVerifiedAt)],
    ['disabled', since(user.disabledAt)],
    ['failed_logins', `${failedLogins} in the last ${window} s (limit ${perAccount})${json.locked ? ': locked' : ''}`],
    ['live_sessions', liveSessions]
  ].map(([name, value]) => `${String(name).padEnd(16)}${value}`).join('\n')
  return { json, text }
}

/** A change to the account, recorded as a security event when it changed anything. */
function change (action: string, event: SecurityEventType | undefined, apply: (session: Session, user: UserRecord) => Promise<boolean>, done: string, unchanged: string): UserAction {
  return async (session, user) => {
    const changed = await apply(session, user)
    if (changed && event !== undefined) {
      await session.store.recordSecurityEvent(user.id, { type: event, at: session.now, ip: null, userAgent: null })
    }
    return {
      json: { email: user.email, action, changed },
      text: `${user.email}: ${changed ? done : unchanged}`
    }
  }
}

const USER_COMMANDS: Record<string, UserAction> = {
  show: showUser,
  disable: change('disable', 'admin_disabled',
    ({ store, now }, user) => store.disableUser(user.id, now),
    'disabled; its sessions ended and its tokens are refused', 'already disabled, nothing changed'),
  enable: change('enable', 'admin_enabled',
    ({ store }, user) => store.enableUser(user.id),
    'enabled; it can log in again', 'not disabled, nothing changed'),
  delete: change('delete', undefined,
    ({ store }, user) => store.deleteUser(user.id),
    'deleted, with everything kept for it', 'already gone, nothing changed'),
  'end-sessions': change('end-sessions', 'admin_sessions_ended',
    // +1 ms, as for a logout: a token issued in this very millisecond is refused too.
    async ({ store, now }, user) => { await store.endSessions(user.id, now + 1, now); return true },
    'every session ended; its tokens are refused', ''),
  'verify-email': change('verify-email', 'admin_email_verified',
    ({ store, now }, user) => store.markEmailVerified(user.id, now),
    'email address marked verified', 'email address already verified, nothing changed')
}

/** The EMAIL argument, normalised as signup normalises it. */
function emailArgument (address: string | undefined): string {
  const email = normaliseEmail(address ?? '')
  if (email === '') throw usage('an EMAIL is missing')
  return email
}

async function findUser (store: Store, email: string): Promise<UserRecord> {
  const user = await store.findUserByEmail(email)
  if (user === undefined) throw new AdminError(EXIT.noAccount, `no account with the email ${email}`)
  return user
}

async function listEvents ({ store }: Session, user: UserRecord): Promise<Result> {
  const events = (await store.listSecurityEvents(user.id, RECENT_EVENTS)).map(eventJson)
  const text = events.length === 0
    ? `${user.email}: no security events`
    : events.map(e => [e.at, e.type.padEnd(24), e.ip ?? '-', e.user_agent ?? '-'].join('  ')).join('\n')
  return { json: { email: user.email, events }, text }
}

/** pending: not tried yet; failed: tried, and due again at next_attempt_at; sending: a sender holds it. */
function status (message: OutboxEntry, now: number): 'pending' | 'failed' | 'sending' | 'expired' {
  if (message.expiresAt <= now) return 'expired'
  if (message.claimedUntil !== null && message.claimedUntil > now) return 'sending'
  return message.attempts > 0 ? 'failed' : 'pending'
}

async function listOutbox ({ store, now }: Session): Promise<Result> {
  const messages = (await store.listOutbox()).map(message => ({
    id: message.id,
    status: status(message, now),
    subject: message.subject,
    recipient: message.recipient,
    attempts: message.attempts,
    created_at: iso(message.createdAt),
    next_attempt_at: iso(message.nextAttemptAt),
    expires_at: iso(message.expiresAt),
    last_error: message.lastError
  }))
  const text = messages.length === 0
    ? 'the outbox is empty'
    : messages.map(m => `#${m.id}  ${m.status.padEnd(8)}  ${m.recipient}  "${m.subject}"  attempts ${m.attempts}, next ${m.next_attempt_at}` +
      (m.last_error === null ? '' : `, last error: ${m.last_error}`)).join('\n')
  return { json: { messages }, text }
}

async function retryOutbox ({ store, now }: Session): Promise<Result> {
  const retried = await store.retryFailedEmails(now)
  return { json: { retried }, text: `${retried} failed message${retried === 1 ? ' is' : 's are'} pending again` }
}

/** The command's work, checked for its words before the database is opened. */
function route (words: string[]): (session: Session) => Promise<Result> {
  const [group, ...rest] = words
  const extra = (count: number) => { if (rest.length > count) throw usage(`unexpected argument ${rest[count]}`) }
  switch (group) {
    case 'user': {
      const [name, email] = rest
      if (name === undefined) throw usage('user needs a command: show, disable, enable, delete, end-sessions or verify-email')
      const action = Object.hasOwn(USER_COMMANDS, name) ? USER_COMMANDS[name]! : undefined
      if (action === undefined) throw usage(`unknown command user ${name}`)
      const address = emailArgument(email)
      extra(2)
      return async session => action(session, await findUser(session.store, address))
    }
    case 'events': {
      const address = emailArgument(rest[0])
      extra(1)
      return async session => listEvents(session, await findUser(session.store, address))
    }
    case 'outbox':
      if (rest[0] === undefined) return listOutbox
      if (rest[0] !== 'retry') throw usage(`unknown command outbox ${rest[0]}`)
      extra(1)
      return retryOutbox
    case undefined:
      throw usage('a command is missing')
    default:
      throw usage(`unknown command ${group}`)
  }
}

/** The database, for messages: a MySQL URL without its password. */
function describe (database: Database): string {
  if (database.kind === 'sqlite') return database.path
  const url = new URL(database.url)
  if (url.password !== '') url.password = '***'
  return url.toString()
}

/** Opens the store on a database that answers and is fully migrated, or says why not (exit 4). */
async function openStore (config: Config): Promise<{ store: Store, close: () => Promise<void> }> {
  const { database } = config
  const where = describe(database)
  // Opening a missing SQLite file would create an empty database; there is nothing to administer.
  if (database.kind === 'sqlite' && database.path !== ':memory:' && !existsSync(database.path)) {
    throw new AdminError(EXIT.database, `there is no database at ${where} (npm run migrate -- up creates it)`)
  }
  const { target, close } = openDatabase(database, { connectionLimit: 2 })
  const store = target.dialect === 'mysql'
    ? createMysqlStore(target.pool, { causalReads: config.causalReads })
    : createSqliteStore(target.db)
  try {
    let pending: string[]
    try {
      await store.ping()
      pending = await createMigrator(target).pending()
    } catch (err) {
      throw new AdminError(EXIT.database, `the database at ${where} does not answer: ${errorText(err)}`)
    }
    if (pending.length > 0) {
      throw new AdminError(EXIT.database, `the database at ${where} is not migrated (pending: ${pending.join(', ')}); run npm run migrate -- up`)
    }
  } catch (err) {
    await close().catch(() => {})
    throw err
  }
  return { store, close }
}

function errorText (err: unknown): string {
  const { message, code } = err as { message?: string, code?: string }
  // An AggregateError (every address of a host refused) has an empty message but a code.
  return message !== undefined && message !== '' ? message : code ?? String(err)
}

/** Runs one command; returns the exit code. Never throws, and never prints a stack trace. */
export async function runAdmin (argv: string[], { env, stdout, stderr, now }: AdminContext): Promise<number> {
  let close: (() => Promise<void>) | undefined
  try {
    const { words, json, help } = parse(argv)
    if (help) {
      stdout.write(HELP)
      return EXIT.ok
    }
    const work = route(words)
    let config: Config
    try {
      // Access tokens are neither issued nor verified here: a placeholder stands in for the
      // signing keys, so the CLI needs neither JWT_SECRET nor readable key files.
      config = loadConfig({ ...env, JWT_ALGORITHM: 'HS256', JWT_SECRET: 'x'.repeat(32), JWT_PRIVATE_KEY: '', JWT_PREVIOUS_PUBLIC_KEYS: '' })
    } catch (err) {
      if (err instanceof ConfigError) throw new AdminError(EXIT.failure, err.message)
      throw err
    }
    const opened = await openStore(config)
    close = opened.close
    const result = await work({ store: opened.store, config, now })
    stdout.write(json ? `${JSON.stringify(result.json)}\n` : `${result.text}\n`)
    return EXIT.ok
  } catch (err) {
    if (err instanceof AdminError) {
      stderr.write(`admin: ${err.message}\n`)
      return err.exitCode
    }
    stderr.write(`admin: failed: ${errorText(err)}\n`)
    return EXIT.failure
  } finally {
    await close?.().catch(() => {})
  }
}

import type { AddressInfo } from 'node:net'
import { simpleParser, type ParsedMail } from 'mailparser'
import { SMTPServer } from 'smtp-server'
import type { Test } from 'tap'

export const SMTP_USER = 'mailer'
export const SMTP_PASSWORD = 'smtp-password-for-tests'

/** A real SMTP server in the test process: what the service sends arrives here, parsed. */
export interface Inbox {
  /** smtp://user:password@127.0.0.1:port, as SMTP_URL */
  url: string
  messages: ParsedMail[]
  /** Resolves with the next message (or the first already received) matching `predicate`. */
  next (predicate?: (mail: ParsedMail) => boolean, timeoutMs?: number): Promise<ParsedMail>
  /** Stops accepting connections (an SMTP outage); `start` listens on the same port again. */
  stop (): Promise<void>
  start (): Promise<void>
}

export async function smtpServer (t: Test, options: { reject?: (to: string) => boolean } = {}): Promise<Inbox> {
  const messages: ParsedMail[] = []
  const seen = new Set<ParsedMail>()
  const waiters: Array<{ predicate: (mail: ParsedMail) => boolean, resolve: (mail: ParsedMail) => void }> = []
  let port = 0
  let server: SMTPServer | undefined

  function deliver (mail: ParsedMail) {
    messages.push(mail)
    const i = waiters.findIndex(w => w.predicate(mail))
    if (i !== -1) {
      seen.add(mail)
      waiters.splice(i, 1)[0]!.resolve(mail)
    }
  }

  async function start () {
    server = new SMTPServer({
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      logger: false,
      onAuth (auth, _session, callback) {
        if (auth.username === SMTP_USER && auth.password === SMTP_PASSWORD) return callback(null, { user: auth.username })
        return callback(new Error('Invalid username or password'))
      },
      onRcptTo (address, _session, callback) {
        if (options.reject?.(address.address) === true) {
          return callback(Object.assign(new Error('No such mailbox'), { responseCode: 550 }))
        }
        callback()
      },
      onData (stream, _session, callback) {
        simpleParser(stream).then(mail => { deliver(mail); callback() }, callback)
      }
    })
    await new Promise<void>((resolve, reject) => {
      server!.once('error', reject)
      server!.listen(port, '127.0.0.1', () => resolve())
    })
    port = (server.server.address() as AddressInfo).port
  }

  async function stop () {
    const closing = server
    server = undefined
    if (closing !== undefined) await new Promise<void>(resolve => closing.close(() => resolve()))
  }

  await start()
  t.teardown(stop)

  return {
    url: `smtp://${SMTP_USER}:${SMTP_PASSWORD}@127.0.0.1:${port}`,
    messages,
    next (predicate = () => true, timeoutMs = 10_000) {
      const already = messages.find(m => !seen.has(m) && predicate(m))
      if (already !== undefined) {
        seen.add(already)
        return Promise.resolve(already)
      }
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no such email arrived')), timeoutMs)
        waiters.push({ predicate, resolve: mail => { clearTimeout(timer); resolve(mail) } })
      })
    },
    stop,
    start
  }
}

/** The link in a message's text part and the token in it. */
export function linkIn (mail: ParsedMail): { link: string, token: string } {
  const link = /https?:\/\/\S+token=[A-Za-z0-9_-]+/.exec(mail.text ?? '')?.[0]
  if (link === undefined) throw new Error(`no link in: ${mail.text}`)
  return { link, token: new URL(link).searchParams.get('token')! }
}

export function subjectIs (subject: string) {
  return (mail: ParsedMail) => mail.subject === subject
}

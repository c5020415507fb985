import { randomBytes } from 'node:crypto'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import fp from 'fastify-plugin'
import type { Transporter } from 'nodemailer'
import type { FastifyInstance } from 'fastify'
import { ServiceUnavailable } from '../src/errors.js'
import type { ClaimedEmail } from '../src/store/store.js'

declare module 'fastify' {
  interface FastifyInstance {
    mail: Mail
  }
}

export interface MailMessage {
  to: string
  subject: string
  text: string
  html: string
  /** The link the message carries, if any: logged by the development outbox only. */
  link?: string
}

export interface Mail {
  /** False in production without SMTP_URL: nothing can be sent, and the routes that send say 503. */
  readonly available: boolean
  /** Queues a message in the outbox; the background sender delivers it. */
  enqueue (message: MailMessage & { userId?: number, expiresAt?: number }): Promise<void>
  /** Tells the sender a message was queued, so it need not wait for its next poll. */
  wake (): void
  /** One sending pass now; resolves when it (and any pass it had to wait for) is over. */
  flush (): Promise<void>
  /**
   * Work that queues mail beside a request rather than before its answer; closing waits for it,
   * then flush() sees what it queued. The task must not reject.
   */
  track (task: Promise<unknown>): void
}

const BATCH = 10
const POLL_MS = 2000
/**
 * A queued message is sent this long after the request that queued it has been answered, so
 * the work of sending never shows in that answer's time (the forgot-password answer must take
 * the same time whether or not an email goes out).
 */
const WAKE_DELAY_MS = 200
/** A claim outlives the longest send (the SMTP timeouts below add up to 50 s) by far. */
const LEASE_MS = 5 * 60_000
const BACKOFF_BASE_MS = 10_000
const BACKOFF_MAX_MS = 15 * 60_000
/** A message that carries no link is kept this long for the SMTP server to come back. */
const DEFAULT_LIFETIME_MS = 24 * 3600_000
const PRUNE_EVERY_MS = 10 * 60_000
const PRUNE_BATCH = 1000
/** Tokens are kept an hour after they were issued: they count against the hourly email limit. */
const TOKEN_KEEP_MS = 3600_000

/** 10 s, 20 s, 40 s ... up to 15 minutes between attempts. */
export function backoff (attempts: number): number {
  return Math.min(BACKOFF_BASE_MS * 2 ** Math.max(attempts - 1, 0), BACKOFF_MAX_MS)
}

interface SmtpError { code?: string, responseCode?: number, message?: string }

/** A 5xx SMTP reply is the server's final word (RFC 5321 §4.2.1): trying again changes nothing. */
function isPermanent (err: SmtpError): boolean {
  return typeof err.responseCode === 'number' && err.responseCode >= 500 && err.responseCode < 600
}

/** SMTP, or in development a transport that hands the message back to be written to the outbox. */
async function openTransport (smtpUrl: string | undefined): Promise<Transporter> {
  // Loaded here, only where an email can be sent: a process that never loads it starts about 4 MiB smaller.
  const { default: nodemailer } = await import('nodemailer')
  return smtpUrl !== undefined
    ? nodemailer.createTransport({ url: smtpUrl, connectionTimeout: 10_000, greetingTimeout: 10_000, socketTimeout: 30_000 })
    : nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' })
}

/**
 * Email through an outbox table: `enqueue` (and the token flows, in their own transactions)
 * insert rows; one background loop per instance claims due rows with a conditional UPDATE,
 * sends them over SMTP and deletes them, or schedules another attempt with exponential backoff
 * on the app's clock. Several instances may run the loop on one database: a claimed row is
 * nobody else's until its lease ends. Without SMTP_URL outside production, messages go to
 * `.eml` files in the development outbox instead, and their links to the log.
 */
async function mailerPlugin (fastify: FastifyInstance) {
  const { store, config } = fastify
  const { emails } = fastify.metrics
  fastify.metrics.watchOutbox(async () => (await store.outboxBacklog()).pending)
  const log = fastify.log.child({ component: 'mailer' })
  const { smtpUrl, from, outboxDir } = config.mail
  const development = smtpUrl === undefined && config.env !== 'production'
  const available = smtpUrl !== undefined || development

  const transport = available ? await openTransport(smtpUrl) : undefined
  if (!available) {
    log.warn('SMTP_URL is not set: no email can be sent, so password resets and email verification answer 503')
    if (config.emailVerification.required) log.warn('REQUIRE_VERIFIED_EMAIL is on but no email can be sent: new accounts cannot verify, so cannot log in')
  } else if (development) {
    log.info({ outbox: outboxDir }, 'SMTP_URL is not set: emails are written to the development outbox')
  }

  async function deliver (email: ClaimedEmail) {
    // The sender, the only caller, runs only when an email can be sent: there is a transport.
    const info = await transport!.sendMail({
      from,
      to: email.recipient,
      subject: email.subject,
      text: email.text,
      html: email.html,
      date: new Date(fastify.now())
    })
    if (development) {
      await mkdir(outboxDir, { recursive: true })
      const file = join(outboxDir, `${new Date(fastify.now()).toISOString().replace(/[:.]/g, '-')}-${email.id}.eml`)
      await writeFile(file, (info as { message: Buffer }).message, { mode: 0o600 })
      // Development only: the link is logged so a newcomer can follow it without a mail client.
      log.info({ emailId: email.id, to: email.recipient, subject: email.subject, file, link: email.link }, 'development outbox: email written')
    }
  }

  async function send (email: ClaimedEmail, claimId: Buffer) {
    try {
      await deliver(email)
    } catch (err) {
      const { code, responseCode } = err as SmtpError
      const attempt = email.attempts + 1
      if (isPermanent(err as SmtpError)) {
        await store.deleteEmail(email.id, claimId)
        emails.inc({ outcome: 'failed' })
        log.error({ emailId: email.id, attempt, code, responseCode }, 'the SMTP server refused an email for good; it is dropped')
        return
      }
      const retryAt = fastify.now() + backoff(attempt)
      await store.emailFailed(email.id, claimId, retryAt, `${code ?? ''} ${responseCode ?? ''} ${(err as Error).message}`.trim())
      emails.inc({ outcome: 'retried' })
      log.warn({ emailId: email.id, attempt, code, responseCode, retryAt: new Date(retryAt).toISOString() }, 'sending an email failed; it will be tried again')
      return
    }
    await store.deleteEmail(email.id, claimId)
    emails.inc({ outcome: 'sent' })
    log.info({ emailId: email.id, attempts: email.attempts + 1 }, 'email sent')
  }

  let lastPrune = -Infinity
  async function prune (now: number) {
    if (now - lastPrune < PRUNE_EVERY_MS) return
    lastPrune = now
    const expired = await store.pruneOutbox(now, PRUNE_BATCH)
    if (expired > 0) {
      emails.inc({ outcome: 'failed' }, expired)
      log.warn({ expired }, 'emails not sent before their links expired were dropped')
    }
    await store.pruneEmailTokens(now - TOKEN_KEEP_MS, PRUNE_BATCH)
  }

  async function sendDue () {
    await prune(fastify.now())
    for (;;) {
      const now = fastify.now()
      const claimId = randomBytes(16)
      const batch = await store.claimEmails(claimId, now, now + LEASE_MS, BATCH)
      for (const email of batch) await send(email, claimId)
      if (batch.length < BATCH || stopped) return
    }
  }

  let stopped = true
  const isStopped = () => stopped
  let running: Promise<void> | undefined
  let again = false
  let timer: NodeJS.Timeout | undefined
  let wakeTimer: NodeJS.Timeout | undefined
  const tasks = new Set<Promise<unknown>>()

  function schedule () {
    clearTimeout(timer)
    if (!stopped) timer = setTimeout(() => { if (!stopped) pass().catch(() => {}) }, POLL_MS).unref()
  }

  function pass (): Promise<void> {
    if (running !== undefined) {
      again = true
      return running
    }
    running = (async () => {
      try {
        do {
          again = false
          try {
            await sendDue()
          } catch (err) {
            log.warn({ err }, 'the outbox could not be read; will try again')
          }
        } while (again && !isStopped())
      } finally {
        running = undefined
        schedule()
      }
    })()
    return running
  }

  const mail: Mail = {
    available,
    async enqueue ({ to, subject, text, html, link, userId, expiresAt }) {
      if (!available) throw new ServiceUnavailable('Email cannot be sent: the service has no SMTP server configured')
      const now = fastify.now()
      await store.enqueueEmail({ recipient: to, subject, text, html, link, userId, expiresAt: expiresAt ?? now + DEFAULT_LIFETIME_MS }, now)
      mail.wake()
    },
    wake () {
      if (stopped || wakeTimer !== undefined) return
      wakeTimer = setTimeout(() => {
        wakeTimer = undefined
        if (!stopped) pass().catch(() => {})
      }, WAKE_DELAY_MS).unref()
    },
    async flush () {
      await Promise.all(tasks)
      await pass()
    },
    track (task) {
      tasks.add(task)
      task.finally(() => tasks.delete(task)).catch(() => {})
    }
  }
  fastify.decorate('mail', mail)

  fastify.addHook('onClose', async () => { await Promise.all(tasks) })
  if (!available) return
  fastify.addHook('onReady', async () => {
    stopped = false
    log.debug('the email sender started')
    mail.wake()
  })
  fastify.addHook('onClose', async () => {
    stopped = true
    clearTimeout(timer)
    clearTimeout(wakeTimer)
    await running
    transport?.close()
    log.debug('the email sender stopped')
  })
}

export default fp(mailerPlugin, { name: 'mailer', dependencies: ['config', 'store', 'metrics'] })

import { createHash } from 'node:crypto'
import { random } from '../random.js'
import type { Config } from '../config.js'
import { emailVerificationEmail, linkFor, passwordResetEmail } from '../mail/templates.js'
import type { EmailTokenOutcome, Store, TokenPurpose } from '../store/store.js'

/** 256 random bits, sent in a link and kept only as their SHA-256. */
const TOKEN_BYTES = 32
const HOUR_MS = 3600_000

/** The SHA-256 that stands for a token in the database (the email tokens here, refresh tokens' secrets too). */
export function hashToken (token: string | Buffer): Buffer {
  return createHash('sha256').update(token).digest()
}

export interface EmailTokensDeps {
  store: Store
  config: Pick<Config, 'passwordReset' | 'emailVerification'>
  now: () => number
  /** Wakes the sender once a message is queued. */
  wake: () => void
}

/**
 * Password-reset and email-verification tokens: issued with their email in one transaction,
 * at most `PASSWORD_RESET_LIMIT` per account and purpose per hour, each superseding the
 * account's older ones, and spent exactly once.
 */
export function emailTokens ({ store, config, now, wake }: EmailTokensDeps) {
  async function issue (purpose: TokenPurpose, email: string, attemptSubject?: Buffer): Promise<EmailTokenOutcome> {
    const { url, ttl } = purpose === 'password_reset' ? config.passwordReset : config.emailVerification
    // The token, its hash and the message are made whether or not the account exists: the
    // answer must take the same time either way.
    const token = random(TOKEN_BYTES).toString('base64url')
    const link = linkFor(url, token)
    const at = now()
    const expiresAt = at + ttl * 1000
    const rendered = purpose === 'password_reset' ? passwordResetEmail(email, link, ttl) : emailVerificationEmail(email, link, ttl)
    const outcome = await store.issueEmailToken({
      email,
      purpose,
      hash: hashToken(token),
      now: at,
      expiresAt,
      since: at - HOUR_MS,
      limit: config.passwordReset.limit,
      message: { recipient: email, ...rendered, link, expiresAt },
      attemptSubject
    })
    wake()
    return outcome
  }

  return {
    /** Forgot password: queues a reset email when the account exists and is under its limit. */
    requestPasswordReset: (email: string, attemptSubject: Buffer) => issue('password_reset', email, attemptSubject),
    sendVerification: (email: string) => issue('email_verification', email),
    /**
     * Sets the password hash if the token is live, ending every session in the same
     * transaction; undefined for an unknown, expired, spent or superseded token.
     */
    /** A cheap read, so that a made-up token costs no password hash. */
    resetTokenIsLive: (token: string) => store.isEmailTokenLive(hashToken(token), 'password_reset', now()),
    resetPassword: (token: string, passwordHash: string) => store.resetPassword(hashToken(token), passwordHash, now()),
    /** The verified account's id; undefined for a token that is not live. */
    verifyEmail: (token: string) => store.verifyEmail(hashToken(token), now())
  }
}

export type EmailTokens = ReturnType<typeof emailTokens>

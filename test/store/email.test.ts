import { createHash, randomBytes } from 'node:crypto'
import t from 'tap'
import type { EmailTokenRequest, Store } from '../../src/store/store.js'
import { build, eachDialect } from '../helper.js'

const HOUR = 3600_000
const hash = (token: string) => createHash('sha256').update(token).digest()

function request (email: string, token: string, now: number, overrides: Partial<EmailTokenRequest> = {}): EmailTokenRequest {
  return {
    email,
    purpose: 'password_reset',
    hash: hash(token),
    now,
    expiresAt: now + 1800_000,
    since: now - HOUR,
    limit: 3,
    message: { recipient: email, subject: `Reset ${token}`, text: `link ${token}`, html: `<a>${token}</a>`, link: `https://x/${token}`, expiresAt: now + 1800_000 },
    ...overrides
  }
}

async function claimAll (store: Store, now: number) {
  return store.claimEmails(randomBytes(16), now, now + 300_000, 100)
}

eachDialect(t, 'email tokens and the outbox in the store', async (t, dialect) => {
  // Production without SMTP_URL: no sender runs, so the rows stay as the store leaves them.
  const { store } = await build(t, dialect, { env: { NODE_ENV: 'production' } })
  const now = 1_800_000_000_000
  const ada = await store.createUser({ email: 'ada@example.com', passwordHash: 'x', createdAt: new Date(now) })

  t.test('no account: nothing is written, but the outcome says so', async t => {
    t.same(await store.issueEmailToken(request('nobody@example.com', 'n1', now)), { outcome: 'no_account' })
    t.same(await claimAll(store, now), [], 'no message queued')
  })

  t.test('issued, then superseded, then limited', async t => {
    t.same(await store.issueEmailToken(request('ada@example.com', 't1', now)), { outcome: 'issued', userId: ada.id })
    t.same(await store.issueEmailToken(request('ada@example.com', 't2', now + 1)), { outcome: 'issued', userId: ada.id })
    t.same(await store.issueEmailToken(request('ada@example.com', 't3', now + 2)), { outcome: 'issued', userId: ada.id })
    t.same(await store.issueEmailToken(request('ada@example.com', 't4', now + 3)), { outcome: 'limited' })
    t.same(await store.issueEmailToken(request('ada@example.com', 'v1', now + 3, { purpose: 'email_verification' })), { outcome: 'issued', userId: ada.id },
      'the limit counts each kind apart')
    t.equal(await store.resetPassword(hash('t1'), 'h1', now + 10), undefined, 'superseded')
    t.equal(await store.resetPassword(hash('t4'), 'h1', now + 10), undefined, 'never issued')
    t.equal(await store.resetPassword(hash('v1'), 'h1', now + 10), undefined, 'a verification token does not reset a password')
    t.same(await store.resetPassword(hash('t3'), 'h3', now + 10), { userId: ada.id, email: 'ada@example.com' })
    t.equal((await store.findUserById(ada.id))!.passwordHash, 'h3')
    t.equal((await store.findUserById(ada.id))!.tokensNotBefore, now + 11, 'access tokens issued until then are refused')
    t.equal(await store.resetPassword(hash('t3'), 'h4', now + 11), undefined, 'spent')
    t.equal(await store.verifyEmail(hash('v1'), now + 1800_000 + 3), undefined, 'expired')
  })

  t.test('the queued messages: claimed by one sender only', async t => {
    const mine = await claimAll(store, now + 20)
    t.same(mine.map(m => m.subject), ['Reset t1', 'Reset t2', 'Reset t3', 'Reset v1'])
    t.same(await claimAll(store, now + 21), [], 'a second sender gets none of them while the lease holds')
    const claim = randomBytes(16)
    t.same(await store.claimEmails(claim, now + 300_021, now + 600_021, 100).then(r => r.length), 4, 'after the lease they are free again')
    await store.emailFailed(mine[0]!.id, claim, now + 400_000, 'ECONNREFUSED')
    const [retried] = await store.claimEmails(randomBytes(16), now + 400_000, now + 700_000, 1)
    t.match(retried, { id: mine[0]!.id, attempts: 1 }, 'a failed message comes back at its next attempt, counted')
    await store.deleteEmail(mine[1]!.id, randomBytes(16))
    t.equal((await claimAll(store, now + 900_000)).length, 4, 'deleting needs the claim that holds the row')
  })

  t.test('expired messages and old tokens are pruned', async t => {
    t.equal(await store.pruneOutbox(now + 1800_001 + 700_000, 100), 4)
    t.equal(await store.pruneEmailTokens(now + 1800_000 + HOUR, 100), 4, 'three reset tokens and one verification token')
  })

  t.test('deleting the account takes its tokens and pending messages with it', async t => {
    const grace = await store.createUser({ email: 'grace@example.com', passwordHash: 'x', createdAt: new Date(now) })
    const later = now + 10 * HOUR
    t.same(await store.issueEmailToken(request('grace@example.com', 'g1', later)), { outcome: 'issued', userId: grace.id })
    await store.enqueueEmail({ recipient: 'grace@example.com', subject: 'notice', text: 't', html: 'h', expiresAt: later + HOUR, userId: grace.id }, later)
    await store.enqueueEmail({ recipient: 'someone@example.com', subject: 'unrelated', text: 't', html: 'h', expiresAt: later + HOUR }, later)
    await store.deleteUser(grace.id)
    t.same((await claimAll(store, later)).map(m => m.subject), ['unrelated'])
    t.equal(await store.verifyEmail(hash('g1'), later), undefined)
  })
})

import { randomBytes } from 'node:crypto'
import t from 'tap'
import { build, eachDialect } from '../helper.js'

const hash = () => randomBytes(32)
const DAY = 86_400_000

eachDialect(t, 'refresh tokens in the store', async (t, dialect) => {
  const { store } = await build(t, dialect)
  const user = await store.createUser({ email: 'ada@example.com', passwordHash: 'x', createdAt: new Date() })
  const now = 1_800_000_000_000
  const familyId = randomBytes(16)

  t.test('a live token rotates once; its successor is live', async t => {
    const first = hash()
    await store.createRefreshToken({ hash: first, userId: user.id, familyId, createdAt: now, expiresAt: now + DAY })
    const second = hash()
    t.same(await store.rotateRefreshToken(first, { hash: second, createdAt: now + 1, expiresAt: now + DAY }, now + 1),
      { outcome: 'rotated', userId: user.id, tokensNotBefore: 0, sessionId: familyId })
    const third = hash()
    t.same(await store.rotateRefreshToken(second, { hash: third, createdAt: now + 2, expiresAt: now + DAY }, now + 2),
      { outcome: 'rotated', userId: user.id, tokensNotBefore: 0, sessionId: familyId })

    t.test('reusing a retired token revokes the whole family, the newest included', async t => {
      t.same(await store.rotateRefreshToken(first, { hash: hash(), createdAt: now + 3, expiresAt: now + DAY }, now + 3),
        { outcome: 'reused', userId: user.id })
      t.same(await store.rotateRefreshToken(third, { hash: hash(), createdAt: now + 4, expiresAt: now + DAY }, now + 4),
        { outcome: 'invalid' })
    })
  })

  t.test('unknown and expired tokens are invalid', async t => {
    t.same(await store.rotateRefreshToken(hash(), { hash: hash(), createdAt: now, expiresAt: now + DAY }, now), { outcome: 'invalid' })
    const old = hash()
    await store.createRefreshToken({ hash: old, userId: user.id, familyId: randomBytes(16), createdAt: now - DAY, expiresAt: now })
    t.same(await store.rotateRefreshToken(old, { hash: hash(), createdAt: now, expiresAt: now + DAY }, now), { outcome: 'invalid' }, 'expiry is exclusive')
  })

  t.test('concurrent rotations of one token: exactly one wins', async t => {
    const shared = hash()
    await store.createRefreshToken({ hash: shared, userId: user.id, familyId: randomBytes(16), createdAt: now, expiresAt: now + DAY })
    const results = await Promise.all(Array.from({ length: 20 }, () =>
      store.rotateRefreshToken(shared, { hash: hash(), createdAt: now + 5, expiresAt: now + DAY }, now + 5)))
    t.equal(results.filter(r => r.outcome === 'rotated').length, 1)
    t.equal(results.filter(r => r.outcome === 'reused').length, 19)
  })

  t.test('rotations made together each get the answer they would get alone', async t => {
    // On MySQL the rotations of one turn share one call; 70 is more than one batch holds.
    const other = await store.createUser({ email: 'grace@example.com', passwordHash: 'x', createdAt: new Date() })
    await store.endSessions(other.id, now - 50, now - 60)
    const families = Array.from({ length: 70 }, (_, i) => ({ hash: hash(), familyId: randomBytes(16), owner: i % 2 === 0 ? user : other }))
    for (const f of families) await store.createRefreshToken({ hash: f.hash, userId: f.owner.id, familyId: f.familyId, createdAt: now, expiresAt: now + DAY })
    const expired = hash()
    await store.createRefreshToken({ hash: expired, userId: user.id, familyId: randomBytes(16), createdAt: now - DAY, expiresAt: now + 6 })
    const retired = hash()
    await store.createRefreshToken({ hash: retired, userId: other.id, familyId: randomBytes(16), createdAt: now, expiresAt: now + DAY })
    t.equal((await store.rotateRefreshToken(retired, { hash: hash(), createdAt: now, expiresAt: now + DAY }, now)).outcome, 'rotated')

    const successors = families.map(() => hash())
    const at = now + 6
    const next = (h: Buffer) => ({ hash: h, createdAt: at, expiresAt: at + DAY })
    const [unknownAnswer, expiredAnswer, retiredAnswer, ...answers] = await Promise.all([
      store.rotateRefreshToken(hash(), next(hash()), at),
      store.rotateRefreshToken(expired, next(hash()), at),
      store.rotateRefreshToken(retired, next(hash()), at),
      ...families.map((f, i) => store.rotateRefreshToken(f.hash, next(successors[i]!), at))
    ])
    t.same(unknownAnswer, { outcome: 'invalid' }, 'an unknown token')
    t.same(expiredAnswer, { outcome: 'invalid' }, 'an expired token')
    t.same(retiredAnswer, { outcome: 'reused', userId: other.id }, 'a retired token')
    t.same(answers, families.map(f => ({
      outcome: 'rotated', userId: f.owner.id, tokensNotBefore: f.owner === user ? 0 : now - 50, sessionId: f.familyId
    })), 'each live token rotated in its own family, with its own user')
    const again = await Promise.all(successors.map(s => store.rotateRefreshToken(s, next(hash()), at + 1)))
    t.same(again.map(a => a.outcome), families.map(() => 'rotated'), 'each successor was stored, live')
  })

  t.test('revokeRefreshTokenFamily and endSessions', async t => {
    const a = hash()
    await store.createRefreshToken({ hash: a, userId: user.id, familyId: randomBytes(16), createdAt: now, expiresAt: now + DAY })
    t.equal(await store.revokeRefreshTokenFamily(hash(), now), false)
    t.equal(await store.revokeRefreshTokenFamily(a, now), true)
    t.same(await store.rotateRefreshToken(a, { hash: hash(), createdAt: now, expiresAt: now + DAY }, now + 1), { outcome: 'invalid' })

    const b = hash()
    await store.createRefreshToken({ hash: b, userId: user.id, familyId: randomBytes(16), createdAt: now, expiresAt: now + DAY })
    await store.endSessions(user.id, now + 10, now + 9)
    t.equal((await store.findUserById(user.id))!.tokensNotBefore, now + 10)
    t.same(await store.rotateRefreshToken(b, { hash: hash(), createdAt: now, expiresAt: now + DAY }, now + 11), { outcome: 'invalid' })
  })

  t.test('pruning deletes expired tokens, a bounded number per run', async t => {
    const before = await store.pruneRefreshTokens(now + 2 * DAY, 1_000_000)
    t.ok(before > 0, `pruned ${before} tokens`)
    for (let i = 0; i < 5; i++) {
      await store.createRefreshToken({ hash: hash(), userId: user.id, familyId, createdAt: now, expiresAt: now + i })
    }
    const live = hash()
    await store.createRefreshToken({ hash: live, userId: user.id, familyId: randomBytes(16), createdAt: now, expiresAt: now + DAY })
    t.equal(await store.pruneRefreshTokens(now + 100, 3), 3)
    t.equal(await store.pruneRefreshTokens(now + 100, 3), 2)
    t.equal(await store.pruneRefreshTokens(now + 100, 3), 0)
    t.equal((await store.rotateRefreshToken(live, { hash: hash(), createdAt: now, expiresAt: now + DAY }, now + 100)).outcome, 'rotated')
  })
})

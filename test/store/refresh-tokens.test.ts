import { randomBytes } from 'node:crypto'
import t from 'tap'
import type { RotationRequest } from '../../src/store/store.js'
import { build, eachDialect } from '../helper.js'

const hash = () => randomBytes(32)
const DAY = 86_400_000

eachDialect(t, 'refresh-token chains in the store', async (t, dialect) => {
  const { store } = await build(t, dialect)
  const user = await store.createUser({ email: 'ada@example.com', passwordHash: 'x', createdAt: new Date() })
  const now = 1_800_000_000_000

  /** A session whose chain starts at generation 0 with a fresh secret hash and key. */
  const session = async (userId = user.id, at = now, ttl = DAY) => {
    const id = randomBytes(16)
    const first = { hash: hash(), key: randomBytes(32) }
    await store.createSession({ id, userId, createdAt: at, expiresAt: at + ttl, ip: null, userAgent: null }, first)
    return { id, hash: first.hash, key: first.key }
  }
  const rotation = (sessionId: Buffer, generation: number, presented: Buffer, at: number, nextHash = hash()): RotationRequest =>
    ({ sessionId, generation, hash: presented, nextHash, expiresAt: at + DAY, now: at })

  t.test('the current token rotates once; its successor is current', async t => {
    const s = await session()
    const second = hash()
    t.same(await store.rotateRefreshToken(rotation(s.id, 0, s.hash, now + 1, second)),
      { outcome: 'rotated', userId: user.id, tokensNotBefore: 0, sessionId: s.id, generation: 1, key: s.key })
    const third = hash()
    t.same(await store.rotateRefreshToken(rotation(s.id, 1, second, now + 2, third)),
      { outcome: 'rotated', userId: user.id, tokensNotBefore: 0, sessionId: s.id, generation: 2, key: s.key })
    t.same(await store.findRefreshChain(s.id), { userId: user.id, generation: 2, hash: third, key: s.key })

    t.test('an older token, or a wrong secret, is stale: the session is live and says where its chain is', async t => {
      t.same(await store.rotateRefreshToken(rotation(s.id, 0, s.hash, now + 3)), { outcome: 'stale', userId: user.id, generation: 2, hash: third, key: s.key })
      t.same(await store.rotateRefreshToken(rotation(s.id, 2, hash(), now + 3)), { outcome: 'stale', userId: user.id, generation: 2, hash: third, key: s.key })
      t.same(await store.findRefreshChain(s.id), { userId: user.id, generation: 2, hash: third, key: s.key }, 'nothing moved')
      await store.endRefreshFamily(s.id, now + 4)
      t.same(await store.rotateRefreshToken(rotation(s.id, 2, third, now + 5)), { outcome: 'invalid' }, 'an ended session rotates nothing')
    })
  })

  t.test('unknown sessions and expired ones are invalid', async t => {
    t.same(await store.rotateRefreshToken(rotation(randomBytes(16), 0, hash(), now)), { outcome: 'invalid' })
    t.equal(await store.findRefreshChain(randomBytes(16)), undefined)
    const old = await session(user.id, now - DAY, DAY)
    t.same(await store.rotateRefreshToken(rotation(old.id, 0, old.hash, now)), { outcome: 'invalid' }, 'expiry is exclusive')
  })

  t.test('concurrent rotations of one token: exactly one wins, the others find it stale', async t => {
    const s = await session()
    const results = await Promise.all(Array.from({ length: 20 }, () => store.rotateRefreshToken(rotation(s.id, 0, s.hash, now + 5))))
    t.equal(results.filter(r => r.outcome === 'rotated').length, 1)
    t.equal(results.filter(r => r.outcome === 'stale').length, 19)
  })

  t.test('rotations made together each get the answer they would get alone', async t => {
    // On MySQL the rotations of one turn share one UPDATE; 70 is more than one batch holds.
    const other = await store.createUser({ email: 'grace@example.com', passwordHash: 'x', createdAt: new Date() })
    await store.endSessions(other.id, now - 50, now - 60)
    const sessions = await Promise.all(Array.from({ length: 70 }, (_, i) => session(i % 2 === 0 ? user.id : other.id)))
    const expired = await session(user.id, now - DAY, DAY + 6)
    const ended = await session(other.id)
    await store.endRefreshFamily(ended.id, now)

    const successors = sessions.map(() => hash())
    const at = now + 6
    const [unknownAnswer, expiredAnswer, endedAnswer, wrongAnswer, ...answers] = await Promise.all([
      store.rotateRefreshToken(rotation(randomBytes(16), 0, hash(), at)),
      store.rotateRefreshToken(rotation(expired.id, 0, expired.hash, at)),
      store.rotateRefreshToken(rotation(ended.id, 0, ended.hash, at)),
      store.rotateRefreshToken(rotation(sessions[0]!.id, 0, hash(), at)),
      ...sessions.map((s, i) => store.rotateRefreshToken(rotation(s.id, 0, s.hash, at, successors[i])))
    ])
    t.same(unknownAnswer, { outcome: 'invalid' }, 'an unknown session')
    t.same(expiredAnswer, { outcome: 'invalid' }, 'an expired session')
    t.same(endedAnswer, { outcome: 'invalid' }, 'an ended session')
    t.match(wrongAnswer, { outcome: 'stale', userId: user.id }, 'a wrong secret beside the right one')
    t.same(answers, sessions.map((s, i) => ({
      outcome: 'rotated', userId: i % 2 === 0 ? user.id : other.id, tokensNotBefore: i % 2 === 0 ? 0 : now - 50, sessionId: s.id, generation: 1, key: s.key
    })), 'each current token rotated in its own session, with its own user')
    const again = await Promise.all(sessions.map((s, i) => store.rotateRefreshToken(rotation(s.id, 1, successors[i]!, at + 1))))
    t.same(again.map(a => a.outcome), sessions.map(() => 'rotated'), 'each successor was stored, current')
  })

  t.test('one session twice in one turn: the first rotates, the second finds it stale', async t => {
    const s = await session()
    const [first, second] = await Promise.all([
      store.rotateRefreshToken(rotation(s.id, 0, s.hash, now + 7)),
      store.rotateRefreshToken(rotation(s.id, 0, s.hash, now + 7))
    ])
    t.same([first!.outcome, second!.outcome], ['rotated', 'stale'])
  })

  t.test('endSessions ends every chain of the user', async t => {
    const s = await session()
    await store.endSessions(user.id, now + 10, now + 9)
    t.equal((await store.findUserById(user.id))!.tokensNotBefore, now + 10)
    t.same(await store.rotateRefreshToken(rotation(s.id, 0, s.hash, now + 11)), { outcome: 'invalid' })
  })
})

eachDialect(t, 'refresh tokens of the format before migration 0008', async (t, dialect) => {
  const { store } = await build(t, dialect)
  const user = await store.createUser({ email: 'ada@example.com', passwordHash: 'x', createdAt: new Date() })
  const now = 1_800_000_000_000
  /** A session as 0004 made them, with its last refresh token in refresh_tokens and no chain. */
  const legacySession = async (at = now, ttl = DAY) => {
    const id = randomBytes(16)
    const token = hash()
    await store.createSession({ id, userId: user.id, createdAt: at, expiresAt: at + ttl, ip: null, userAgent: null }, { hash: hash(), key: randomBytes(32) })
    await store.createRefreshToken({ hash: token, userId: user.id, familyId: id, createdAt: at, expiresAt: at + ttl })
    return { id, token }
  }
  const next = (at: number) => ({ hash: hash(), key: randomBytes(32), expiresAt: at + DAY })

  t.test('a live one rotates once into its session\'s chain; presented again, it ends the session', async t => {
    const s = await legacySession()
    const first = next(now + 1)
    const rotated = await store.rotateLegacyRefreshToken(s.token, first, now + 1)
    t.match(rotated, { outcome: 'rotated', userId: user.id, sessionId: s.id, key: first.key })
    const chain = await store.findRefreshChain(s.id)
    t.same(chain, { userId: user.id, generation: (rotated as { generation: number }).generation, hash: first.hash, key: first.key }, 'the chain starts from it')
    t.same(await store.rotateLegacyRefreshToken(s.token, next(now + 2), now + 2), { outcome: 'reused', userId: user.id })
    t.same(await store.rotateRefreshToken({ sessionId: s.id, generation: chain!.generation, hash: first.hash, nextHash: hash(), expiresAt: now + DAY, now: now + 3 }),
      { outcome: 'invalid' }, 'the session is ended, its chain with it')
  })

  t.test('unknown and expired ones are invalid; revokeRefreshTokenFamily ends the session', async t => {
    t.same(await store.rotateLegacyRefreshToken(hash(), next(now), now), { outcome: 'invalid' })
    const old = await legacySession(now - DAY, DAY)
    t.same(await store.rotateLegacyRefreshToken(old.token, next(now), now), { outcome: 'invalid' }, 'expiry is exclusive')
    const s = await legacySession()
    t.equal(await store.revokeRefreshTokenFamily(hash(), now), false)
    t.equal(await store.revokeRefreshTokenFamily(s.token, now), true)
    t.same(await store.rotateLegacyRefreshToken(s.token, next(now + 1), now + 1), { outcome: 'invalid' })
    t.notOk((await store.listSessions(user.id, now + 1)).some(x => x.id.equals(s.id)), 'its session is ended')
  })

  t.test('concurrent rotations of one: exactly one wins', async t => {
    const s = await legacySession()
    const results = await Promise.all(Array.from({ length: 20 }, () => store.rotateLegacyRefreshToken(s.token, next(now + 5), now + 5)))
    t.equal(results.filter(r => r.outcome === 'rotated').length, 1)
    t.equal(results.filter(r => r.outcome === 'reused').length, 19)
  })

  t.test('pruning deletes expired ones, a bounded number per run', async t => {
    const before = await store.pruneRefreshTokens(now + 2 * DAY, 1_000_000)
    t.ok(before > 0, `pruned ${before} tokens`)
    for (let i = 0; i < 5; i++) {
      await store.createRefreshToken({ hash: hash(), userId: user.id, familyId: randomBytes(16), createdAt: now, expiresAt: now + i })
    }
    const live = await legacySession(now, DAY)
    t.equal(await store.pruneRefreshTokens(now + 100, 3), 3)
    t.equal(await store.pruneRefreshTokens(now + 100, 3), 2)
    t.equal(await store.pruneRefreshTokens(now + 100, 3), 0)
    t.equal((await store.rotateLegacyRefreshToken(live.token, next(now + 100), now + 100)).outcome, 'rotated')
  })
})

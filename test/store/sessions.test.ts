import { randomBytes } from 'node:crypto'
import t from 'tap'
import { build, eachDialect } from '../helper.js'

const DAY = 86_400_000

eachDialect(t, 'sessions in the store', async (t, dialect) => {
  const { store } = await build(t, dialect)
  const ada = await store.createUser({ email: 'ada@example.com', passwordHash: 'hash-1', createdAt: new Date() })
  const bob = await store.createUser({ email: 'bob@example.com', passwordHash: 'x', createdAt: new Date() })
  const now = 1_800_000_000_000
  const start = async (userId: number, at: number, ttl = DAY) => {
    const id = randomBytes(16)
    const hash = randomBytes(32)
    t.equal(await store.createSession({ id, userId, createdAt: at, expiresAt: at + ttl, ip: '192.0.2.1', userAgent: 'UA' }, { hash, key: randomBytes(32) }), true)
    return { id, hash }
  }

  t.test('findAuthentication: the user, and whether the session is theirs and live, in one answer', async t => {
    const session = await start(ada.id, now)
    t.match(await store.findAuthentication(ada.id, session.id), { user: { id: ada.id, email: 'ada@example.com' }, sessionLive: true })
    t.match(await store.findAuthentication(bob.id, session.id), { user: { id: bob.id }, sessionLive: false }, 'another user\'s session')
    t.match(await store.findAuthentication(ada.id, randomBytes(16)), { sessionLive: false }, 'no such session')
    t.equal(await store.findAuthentication(999_999, session.id), undefined, 'no such user')
    t.equal(await store.endSession(ada.id, session.id, now + 1), true)
    t.match(await store.findAuthentication(ada.id, session.id), { sessionLive: false }, 'ended')
  })

  t.test('findAuthentication: reads made in one turn (one query) answer each as it would alone', async t => {
    const carol = await store.createUser({ email: 'carol@example.com', passwordHash: 'c', createdAt: new Date() })
    const [c1, c2, c3] = [await start(carol.id, now), await start(carol.id, now), await start(carol.id, now)]
    const mine = await start(ada.id, now)
    t.equal(await store.endSession(carol.id, c3.id, now + 1), true)
    const asks: Array<[number, Buffer]> = [
      [carol.id, c1.id], [carol.id, c2.id], [carol.id, c3.id], [carol.id, mine.id], [ada.id, mine.id],
      [ada.id, c1.id], [999_999, c1.id], [carol.id, randomBytes(16)], [carol.id, c1.id], [ada.id, mine.id]
    ]
    const alone = []
    for (const [userId, sessionId] of asks) alone.push(await store.findAuthentication(userId, sessionId))
    const together = await Promise.all(asks.map(([userId, sessionId]) => store.findAuthentication(userId, sessionId)))
    t.same(together, alone)
    t.same(together.map(a => a?.sessionLive), [true, true, false, false, true, false, undefined, false, true, true])
    t.not(together[0]!.user, together[8]!.user, 'each read has its own user object')

    // Ended, then read at once by many in one turn: every one sees it.
    t.equal(await store.endSession(carol.id, c1.id, now + 2), true)
    const after = await Promise.all(Array.from({ length: 20 }, () => store.findAuthentication(carol.id, c1.id)))
    t.ok(after.every(a => a?.sessionLive === false), 'an ended session is seen ended by every read after it')
    // More than one query's worth at once.
    const many = await Promise.all(Array.from({ length: 150 }, (_, i) => store.findAuthentication(i % 2 === 0 ? carol.id : ada.id, i % 2 === 0 ? c2.id : mine.id)))
    t.ok(many.every(a => a?.sessionLive === true), '150 reads at once, in several queries, all answered')
  })

  t.test('listSessions: live ones only, newest first; endSession: only the owner\'s', async t => {
    const older = await start(bob.id, now)
    const newer = await start(bob.id, now + 10)
    const ended = await start(bob.id, now + 20)
    await start(bob.id, now - DAY, DAY / 2)
    t.equal(await store.endSession(bob.id, ended.id, now + 30), true)
    t.equal(await store.endSession(bob.id, ended.id, now + 30), false, 'already ended')
    t.equal(await store.endSession(ada.id, older.id, now + 30), false, 'not ada\'s')
    t.same((await store.listSessions(bob.id, now + 30)).map(s => s.id), [newer.id, older.id])
    t.same((await store.listSessions(bob.id, now + 30))[0], { id: newer.id, createdAt: now + 10, lastUsedAt: now + 10, ip: '192.0.2.1', userAgent: 'UA' })

    t.test('a refresh moves last_used_at and the expiry; ending a session ends its refresh tokens', async t => {
      const rotated = await store.rotateRefreshToken({ sessionId: older.id, generation: 0, hash: older.hash, nextHash: randomBytes(32), expiresAt: now + 40 + DAY, now: now + 40 })
      t.match(rotated, { outcome: 'rotated', sessionId: older.id })
      t.same((await store.listSessions(bob.id, now + DAY + 30)).map(s => [s.id, s.lastUsedAt]), [[older.id, now + 40]], 'only the refreshed one outlives its first day')
      t.same(await store.rotateRefreshToken({ sessionId: ended.id, generation: 0, hash: ended.hash, nextHash: randomBytes(32), expiresAt: now + DAY, now: now + 40 }), { outcome: 'invalid' })
    })
  })

  t.test('changePassword: only from the hash it was given; ends every session and starts the next', async t => {
    const a = await start(ada.id, now)
    const next = { id: randomBytes(16), userId: ada.id, createdAt: now + 1, expiresAt: now + DAY, ip: null, userAgent: null }
    const token = { hash: randomBytes(32), key: randomBytes(32) }
    t.equal(await store.changePassword(ada.id, 'not-the-hash', 'hash-2', next, token, now + 1), false)
    t.match(await store.findAuthentication(ada.id, a.id), { sessionLive: true, user: { passwordHash: 'hash-1' } }, 'nothing changed')
    t.equal(await store.changePassword(ada.id, 'hash-1', 'hash-2', next, token, now + 1), true)
    t.match(await store.findAuthentication(ada.id, a.id), { sessionLive: false, user: { passwordHash: 'hash-2' } })
    t.same((await store.listSessions(ada.id, now + 2)).map(s => s.id), [next.id])
    t.same(await store.rotateRefreshToken({ sessionId: a.id, generation: 0, hash: a.hash, nextHash: randomBytes(32), expiresAt: now + DAY, now: now + 2 }), { outcome: 'invalid' })
  })

  t.test('pruneSessions deletes the expired, a bounded number per run', async t => {
    const pruned = await store.pruneSessions(now + 10 * DAY, 1)
    t.equal(pruned, 1)
    t.ok(await store.pruneSessions(now + 10 * DAY, 1000) >= 1)
    t.equal(await store.pruneSessions(now + 10 * DAY, 1000), 0)
  })

  t.test('createSession for a user deleted meanwhile: false, nothing stored', async t => {
    const gone = await store.createUser({ email: 'gone@example.com', passwordHash: 'x', createdAt: new Date() })
    t.equal(await store.deleteUser(gone.id), true)
    t.equal(await store.deleteUser(gone.id), false)
    t.equal(await store.createSession({ id: randomBytes(16), userId: gone.id, createdAt: now, expiresAt: now + DAY, ip: null, userAgent: null }, { hash: randomBytes(32), key: randomBytes(32) }), false)
  })
})

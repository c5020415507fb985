import t from 'tap'
import { build, eachDialect } from '../helper.js'

eachDialect(t, 'store', async (t, dialect) => {
  const { store } = await build(t, dialect)
  t.equal(store.dialect, dialect)
  const createdAt = new Date('2026-11-26T03:51:31.123Z')

  t.test('createUser and the finders agree', async t => {
    const user = await store.createUser({ email: 'ada@example.com', passwordHash: '$argon2id$hash', createdAt })
    t.ok(user.id > 0)
    const byEmail = await store.findUserByEmail('ada@example.com')
    const byId = await store.findUserById(user.id)
    t.same(byEmail, { id: user.id, email: 'ada@example.com', passwordHash: '$argon2id$hash', createdAt, tokensNotBefore: 0, emailVerifiedAt: null, disabledAt: null })
    t.same(byId, byEmail)
    t.equal(byId!.createdAt.toISOString(), '2026-11-26T03:51:31.123Z', 'milliseconds and UTC survive the round trip')
  })

  t.test('unknown users are undefined', async t => {
    t.equal(await store.findUserByEmail('nobody@example.com'), undefined)
    t.equal(await store.findUserById(999_999), undefined)
  })

  t.test('a duplicate email throws EmailTaken', async t => {
    await t.rejects(store.createUser({ email: 'ada@example.com', passwordHash: 'x', createdAt }), { code: 'USER_EMAIL_TAKEN', statusCode: 409 })
  })

  t.test('uniqueness is exact: the code, not a collation, decides what is the same email', async t => {
    // A case- or accent-insensitive collation would call these duplicates of ada@example.com.
    // (Trailing spaces never reach the store: the service trims emails first.)
    for (const email of ['ADA@example.com', 'ádá@example.com', 'Ada@Example.com']) {
      const user = await store.createUser({ email, passwordHash: 'x', createdAt })
      t.equal((await store.findUserByEmail(email))!.id, user.id, email)
    }
  })

  t.test('updatePasswordHash replaces the hash', async t => {
    const user = (await store.findUserByEmail('ada@example.com'))!
    await store.updatePasswordHash(user.id, '$argon2id$new')
    t.equal((await store.findUserById(user.id))!.passwordHash, '$argon2id$new')
  })

  t.test('ping answers', async t => {
    await t.resolves(store.ping())
  })
})

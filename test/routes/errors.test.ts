import t from 'tap'
import { build, createUser, eachDialect, login } from '../helper.js'

eachDialect(t, 'errors and request ids', async (t, dialect) => {
  const app = await build(t, dialect)

  t.test('an unknown path is a 404 problem', async t => {
    const res = await app.inject({ method: 'GET', url: '/nowhere?x=1' })
    t.equal(res.statusCode, 404)
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    t.same(res.json(), { type: 'about:blank', title: 'Not Found', status: 404, detail: 'No resource at /nowhere' })
  })

  t.test('a known path with the wrong method is a 405 problem with Allow', async t => {
    const cases: Array<[string, 'GET' | 'POST' | 'DELETE' | 'PUT' | 'PATCH', string]> = [
      ['/users', 'GET', 'POST'],
      ['/users/me', 'PUT', 'GET, HEAD, DELETE'],
      ['/users/me/sessions', 'POST', 'GET, HEAD'],
      ['/users/me/password', 'GET', 'POST'],
      ['/token', 'GET', 'POST'],
      ['/auth/status', 'POST', 'GET, HEAD'],
      ['/health', 'PUT', 'GET, HEAD']
    ]
    for (const [url, method, allow] of cases) {
      const res = await app.inject({ method, url })
      t.equal(res.statusCode, 405, `${method} ${url}`)
      t.equal(res.headers.allow, allow)
      t.equal(res.json().title, 'Method Not Allowed')
    }
  })

  t.test('every response carries X-Request-Id, the client\'s own when it is safe', async t => {
    const own = await app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'abc.DEF-123_x' } })
    t.equal(own.headers['x-request-id'], 'abc.DEF-123_x')
    for (const bad of ['', 'has space', 'x'.repeat(129), 'inject\r\nx', 'ünïcode']) {
      const res = await app.inject({ method: 'GET', url: '/nowhere', headers: { 'x-request-id': bad } })
      t.match(res.headers['x-request-id'], /^[0-9a-f-]{36}$/, JSON.stringify(bad))
    }
    const max = 'x'.repeat(128)
    t.equal((await app.inject({ method: 'GET', url: '/users/me', headers: { 'x-request-id': max } })).headers['x-request-id'], max)
    const errors = await Promise.all([
      app.inject({ method: 'POST', url: '/users', payload: '{', headers: { 'content-type': 'application/json' } }),
      app.inject({ method: 'POST', url: '/token', payload: 'x', headers: { 'content-type': 'text/plain' } }),
      app.inject({ method: 'DELETE', url: '/users/me' })
    ])
    for (const res of errors) t.match(res.headers['x-request-id'], /^[0-9a-f-]{36}$/, String(res.statusCode))
  })

  t.test('a database failure is a 500 that says nothing internal', async t => {
    await createUser(app)
    const { access_token: token } = await login(app)
    // A real fault: the tables vanish under the running service.
    await app.migrator.down({ all: true })
    const res = await app.inject({ method: 'GET', url: '/users/me', headers: { authorization: `Bearer ${token}` } })
    t.equal(res.statusCode, 500)
    t.same(res.json(), { type: 'about:blank', title: 'Internal Server Error', status: 500, detail: 'The server could not complete the request' })
    t.notMatch(res.body, /users|table|SQL|at /i)
    const oauth = await app.inject({ method: 'POST', url: '/token', payload: 'grant_type=password&username=a%40b.io&password=12345678', headers: { 'content-type': 'application/x-www-form-urlencoded' } })
    t.equal(oauth.statusCode, 500)
    t.same(oauth.json(), { error: 'server_error', error_description: 'The server could not complete the request' })
  })
})

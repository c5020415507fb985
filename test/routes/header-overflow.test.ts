import { connect } from 'node:net'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { build } from '../helper.js'

/** Sends one raw request and reads everything until the server closes the connection. */
function raw (port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    const socket = connect(port, '127.0.0.1', () => socket.end(request))
    socket.on('data', chunk => chunks.push(chunk))
    socket.on('error', reject)
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')))
  })
}

t.test('headers over 16 KiB: a 431 problem, and on HEAD the headers alone', async t => {
  const app = await build(t, 'sqlite')
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as AddressInfo
  const request = (method: string) =>
    `${method} /auth/status HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${'A'.repeat(30_000)}\r\n\r\n`

  const get = await raw(port, request('GET'))
  t.match(get, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/)
  t.match(get, /\r\ncontent-type: application\/problem\+json; charset=utf-8\r\n/i)
  const [, body] = get.split('\r\n\r\n')
  t.same(JSON.parse(body!), { type: 'about:blank', title: 'Request Header Fields Too Large', status: 431, detail: 'The request headers are larger than 16 KiB' })

  const head = await raw(port, request('HEAD'))
  t.match(head, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/)
  t.equal(head.split('\r\n\r\n')[1], '', 'no body on HEAD (RFC 9110 §9.3.2)')
})

// The local API's boundary, attacked as a web page and a slow client would: DNS rebinding (a foreign Host),
// cross-site requests (a foreign Origin), a header trickle and a body that never ends; and the auth scheme
// read case-insensitively. Raw sockets, so nothing is normalized by a client library on the way.
import t, { type Test } from 'tap'
import { connect, type Socket } from 'node:net'
import { ApiServer } from '../api-server.ts'

const TOKEN = 'a'.repeat(43)

async function server(t: Test, opts: { headersTimeoutMs?: number; requestTimeoutMs?: number } = {}): Promise<{ port: number }> {
  const api = new ApiServer({ token: TOKEN, ...opts })
  api.add({ method: 'GET', path: '/v1/ping', handler: async () => ({ pong: true }) })
  api.add({ method: 'POST', path: '/v1/echo', handler: async ({ body }) => ({ body: body ?? null }) })
  const url = await api.listen(0)
  t.teardown(() => api.close())
  return { port: Number(new URL(url).port) }
}

/** Sends raw bytes, returns everything the server answered before closing (or after `waitMs` of quiet). */
function raw(port: number, text: string, waitMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1')
    let out = ''
    const done = (): void => {
      s.destroy()
      resolve(out)
    }
    let timer = setTimeout(done, waitMs)
    s.on('data', (d) => {
      out += d.toString('utf8')
      clearTimeout(timer)
      timer = setTimeout(done, 200)
    })
    s.on('end', done)
    s.on('error', reject)
    s.write(text)
  })
}

const get = (port: number, headers: Record<string, string>, path = '/v1/ping'): string =>
  `GET ${path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}Connection: close\r\n\r\n`

const status = (answer: string): number => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1])
const errorName = (answer: string): string | undefined => /"name":"([A-Za-z]+)"/.exec(answer)?.[1]

t.test('a request naming a foreign Host (DNS rebinding) is refused with ForeignHostError, even with the token', async (t) => {
  const { port } = await server(t)
  for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1:${port + 1}`, '127.0.0.1', `127.0.0.1.nip.io:${port}`, '']) {
    const a = await raw(port, get(port, { Host: host, Authorization: `Bearer ${TOKEN}` }))
    t.equal(status(a), 421, `Host '${host}'`)
    t.equal(errorName(a), 'ForeignHostError', `Host '${host}' is answered with a typed error`)
    t.notMatch(a, /pong/, `Host '${host}' reached no route`)
  }
  for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`, `[::1]:${port}`]) {
    const a = await raw(port, get(port, { Host: host, Authorization: `Bearer ${TOKEN}` }))
    t.equal(status(a), 200, `own Host '${host}' is served`)
  }
})

t.test('a cross-site request from a web page (a foreign Origin) is refused with ForeignOriginError', async (t) => {
  const { port } = await server(t)
  const host = `127.0.0.1:${port}`
  for (const origin of ['http://evil.example', 'null', `https://127.0.0.1:${port}`, `http://127.0.0.1:${port}.evil.example`, 'file://']) {
    const a = await raw(port, `POST /v1/echo HTTP/1.1\r\nHost: ${host}\r\nOrigin: ${origin}\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`)
    t.equal(status(a), 403, `Origin '${origin}'`)
    t.equal(errorName(a), 'ForeignOriginError')
  }
  const site = await raw(port, get(port, { Host: host, 'Sec-Fetch-Site': 'cross-site', Authorization: `Bearer ${TOKEN}` }))
  t.equal(errorName(site), 'ForeignOriginError', 'Sec-Fetch-Site: cross-site is refused')
  const own = await raw(port, get(port, { Host: host, Origin: `http://${host}`, Authorization: `Bearer ${TOKEN}` }))
  t.equal(status(own), 200, 'the API\'s own origin is served')
})

t.test('the bearer scheme is case-insensitive; a wrong, short or missing token is UnauthorizedError', async (t) => {
  const { port } = await server(t)
  const host = `127.0.0.1:${port}`
  for (const scheme of ['Bearer', 'bearer', 'BEARER', 'bEaReR']) {
    t.equal(status(await raw(port, get(port, { Host: host, Authorization: `${scheme} ${TOKEN}` }))), 200, `scheme '${scheme}'`)
  }
  for (const auth of [`Bearer ${'b'.repeat(43)}`, `Bearer ${TOKEN.slice(1)}`, `Bearer ${TOKEN}x`, `Basic ${TOKEN}`, `Bearer`, `Bearer ${TOKEN} extra`, '']) {
    const a = await raw(port, get(port, { Host: host, ...(auth ? { Authorization: auth } : {}) }))
    t.equal(status(a), 401, `'${auth.slice(0, 12)}...'`)
    t.equal(errorName(a), 'UnauthorizedError')
  }
})

t.test('a slowloris client (headers or body trickled) is timed out with 408 and closed while others are served', async (t) => {
  const { port } = await server(t, { headersTimeoutMs: 1500, requestTimeoutMs: 2500 })
  const host = `127.0.0.1:${port}`
  const trickle = (first: string, drip: string): { socket: Socket; closed: Promise<string> } => {
    const socket = connect(port, '127.0.0.1')
    let out = ''
    socket.on('data', (d) => { out += d.toString('utf8') })
    socket.write(first)
    const timer = setInterval(() => { if (!socket.destroyed) socket.write(drip) }, 300)
    const closed = new Promise<string>((resolve) => socket.on('close', () => {
      clearInterval(timer)
      resolve(out)
    }))
    socket.on('error', () => undefined)
    return { socket, closed }
  }
  const headers = trickle(`GET /v1/ping HTTP/1.1\r\nHost: ${host}\r\n`, 'X-Slow: 1\r\n')
  const body = trickle(`POST /v1/echo HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n`, ' ')
  t.teardown(() => {
    headers.socket.destroy()
    body.socket.destroy()
  })
  // Meanwhile an honest request is answered at once.
  t.equal(status(await raw(port, get(port, { Host: host, Authorization: `Bearer ${TOKEN}` }))), 200, 'a good request is served during the trickle')
  const [h, b] = await Promise.all([headers.closed, body.closed])
  t.equal(status(h), 408, 'the header trickle was answered 408 and its socket closed by the server')
  t.equal(status(b), 408, 'the endless body was answered 408 and its socket closed by the server')
})

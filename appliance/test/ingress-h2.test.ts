// HTTP/2 at the ingress (spec/ingress.md "HTTP/2"), over real libp2p in one process with real HTTP/1.1 servers
// as the workloads: h2c with prior knowledge and h2 over TLS (ALPN), each stream routed as a request of its own
// (spread over the replicas), bodies streamed both ways, trailers, a WebSocket by extended CONNECT (RFC 8441),
// retries of idempotent requests, and the owner's access policy checked for every request of a connection.
import t from 'tap'
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer } from 'node:http'
import { connect as h2connect, type ClientHttp2Session, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2'
import { createServer as createTcpServer, connect as connectTcp, type Server as TcpServer, type Socket } from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ingressPair } from '../ingress/test-mesh.ts'
import { serverCertificate } from '../tls/certificate.ts'

function listen(srv: HttpServer | TcpServer): Promise<number> {
  return new Promise((r) => srv.listen(0, '127.0.0.1', () => r((srv.address() as { port: number }).port)))
}

interface Seen { method: string; url: string; headers: IncomingMessage['headers']; body: string }

/** An HTTP/1.1 workload that records what reached it and answers with its name (and the body, for a POST). */
function backend(name: string): { server: HttpServer; seen: Seen[]; sockets: Set<Socket> } {
  const seen: Seen[] = []
  const sockets = new Set<Socket>()
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString()
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body })
      res.setHeader('x-backend', name)
      if (req.url === '/stream') {
        // an answer in pieces, the last one only once the client has seen the first (streaming, not buffered)
        res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' })
        res.write('first;')
        const more = (): void => {
          res.write('second;')
          res.addTrailers({ 'x-checksum': 'abc123' })
          res.end()
        }
        req.socket.once('noir-go', more)
        setTimeout(more, 5000).unref()
        return
      }
      res.end(req.method === 'POST' ? `${name}:${body}` : name)
    })
  })
  server.on('connection', (s) => sockets.add(s))
  // WebSocket handshake by hand (RFC 6455 4.2.2), then every byte is echoed upper-cased
  server.on('upgrade', (req, socket) => {
    const accept = createHash('sha1').update(`${req.headers['sec-websocket-key'] as string}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: '' })
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: ${accept}\r\n\r\n`)
    socket.on('data', (d: Buffer) => socket.write(d.toString().toUpperCase()))
    socket.on('end', () => socket.end()) // the peer's end (a half-close carried through) ends it here too
  })
  return { server, seen, sockets }
}

interface Answer { status: number; headers: IncomingHttpHeaders; body: string; trailers: IncomingHttpHeaders }

function ask(session: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string | string[]): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = session.request(headers, body === undefined ? { endStream: true } : {})
    let h: IncomingHttpHeaders = {}
    let trailers: IncomingHttpHeaders = {}
    let text = ''
    req.on('response', (x) => (h = x))
    req.on('trailers', (x) => (trailers = x))
    req.on('data', (d: Buffer) => (text += d.toString()))
    req.on('end', () => resolve({ status: Number(h[':status']), headers: h, body: text, trailers }))
    req.on('error', reject)
    if (Array.isArray(body)) {
      for (const b of body) req.write(b)
      req.end()
    } else if (body !== undefined) req.end(body)
  })
}

const closeSession = (s: ClientHttp2Session): Promise<void> => new Promise((r) => s.close(() => r()))

t.test('h2c with prior knowledge: one connection, each request routed on its own and spread over the replicas', async (t) => {
  const a = backend('a')
  const b = backend('b')
  const pair = await ingressPair([{ contractId: 'ca', hostPort: await listen(a.server) }, { contractId: 'cb', hostPort: await listen(b.server) }])
  const session = h2connect(`http://127.0.0.1:${pair.port}`)
  t.teardown(async () => {
    await closeSession(session)
    await pair.stop()
    a.server.close()
    b.server.close()
  })
  const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => ask(session, { ':path': `/r${i}`, ':authority': 'web.localhost' })))
  t.ok(answers.every((x) => x.status === 200), 'all answered')
  const by = answers.map((x) => x.headers['x-backend'])
  t.ok(by.includes('a') && by.includes('b'), `the requests of one connection spread over both replicas (${by.join(',')})`)
  t.same([...a.seen, ...b.seen].map((s) => s.url).sort(), Array.from({ length: 8 }, (_, i) => `/r${i}`).sort(), 'each request reached one replica once')
  t.ok([...a.seen, ...b.seen].every((s) => s.headers.host === 'web.localhost' && s.headers.connection === 'keep-alive'), 'sent as HTTP/1.1 with the Host, on kept-alive connections')
  // warm: sequential requests reuse the kept streams (no new connection reaches the workload)
  const warm = a.sockets.size + b.sockets.size
  for (let i = 0; i < 6; i++) await ask(session, { ':path': `/w${i}`, ':authority': 'web.localhost' })
  t.equal(a.sockets.size + b.sockets.size, warm, `six more requests opened no connection to the workloads (${warm} kept)`)
  t.equal(pair.ingress.stats.routed, 14, 'routed as fourteen requests')

  // a POST whose body is streamed in pieces without a length (chunked on the replica's side)
  const post = await ask(session, { ':method': 'POST', ':path': '/echo', ':authority': 'web.localhost' }, ['one,', 'two,', 'three'])
  t.match(post.body, /^[ab]:one,two,three$/, 'the whole body reached the replica and came back')
  const seenPost = [...a.seen, ...b.seen].find((s) => s.url === '/echo')!
  t.equal(seenPost.headers['transfer-encoding'], 'chunked', 'without a length it is sent chunked')

  // a route no one serves, and a plain CONNECT (the ingress is not a proxy)
  const unknown = await ask(session, { ':path': '/', ':authority': 'nope.localhost' })
  t.equal(unknown.status, 404)
  t.equal(JSON.parse(unknown.body).title, 'UnknownRouteError')
  const proxy = await ask(session, { ':method': 'CONNECT', ':authority': 'example.org:443' })
  t.equal(proxy.status, 400, 'a plain CONNECT is refused: the ingress is not a proxy')
  t.equal(unknown.headers['content-type'], 'application/problem+json')
})

t.test('h2 over TLS (ALPN): answered; an answer streamed in pieces arrives piece by piece with its trailers', async (t) => {
  const w = backend('w')
  const home = mkdtempSync(join(tmpdir(), 'noir-h2-tls-'))
  const tls = await serverCertificate({ dir: home, hosts: ['localhost', 'web.localhost', '127.0.0.1'] })
  const pair = await ingressPair([{ contractId: 'c1', hostPort: await listen(w.server) }], { tls })
  const session = h2connect(`https://127.0.0.1:${pair.port}`, { ca: tls.cert, servername: 'web.localhost' })
  t.teardown(async () => {
    await closeSession(session)
    await pair.stop()
    w.server.closeAllConnections()
    w.server.close()
    rmSync(home, { recursive: true, force: true })
  })
  const plain = await ask(session, { ':path': '/', ':authority': 'web.localhost' })
  t.equal(plain.status, 200)
  t.equal(plain.body, 'w')
  t.equal((session.socket as unknown as { alpnProtocol: string }).alpnProtocol, 'h2', 'ALPN chose h2')

  const streamed = await new Promise<{ firstBeforeEnd: boolean; body: string; trailers: IncomingHttpHeaders }>((resolve, reject) => {
    const req = session.request({ ':path': '/stream', ':authority': 'web.localhost' }, { endStream: true })
    let body = ''
    let firstBeforeEnd = false
    let trailers: IncomingHttpHeaders = {}
    req.on('data', (d: Buffer) => {
      body += d.toString()
      if (body === 'first;') {
        firstBeforeEnd = true
        // only now may the workload send the rest: the first piece was not held back until the end
        for (const sock of w.sockets) sock.emit('noir-go')
      }
    })
    req.on('trailers', (x) => (trailers = x))
    req.on('end', () => resolve({ firstBeforeEnd, body, trailers }))
    req.on('error', reject)
  })
  t.ok(streamed.firstBeforeEnd, 'the first piece arrived before the answer ended')
  t.equal(streamed.body, 'first;second;')
  t.equal(streamed.trailers['x-checksum'], 'abc123', 'the trailer came through')
})
t.test('a WebSocket opened by extended CONNECT (RFC 8441) is an Upgrade on the replica and carries bytes both ways', async (t) => {
  const w = backend('w')
  const pair = await ingressPair([{ contractId: 'c1', hostPort: await listen(w.server) }])
  const session = h2connect(`http://127.0.0.1:${pair.port}`)
  t.teardown(async () => {
    await closeSession(session)
    await pair.stop()
    w.server.closeAllConnections()
    w.server.close()
  })
  await new Promise<void>((r) => session.once('remoteSettings', () => r()))
  t.ok(session.remoteSettings.enableConnectProtocol, 'the ingress offers extended CONNECT')
  const ws = session.request({ ':method': 'CONNECT', ':protocol': 'websocket', ':path': '/chat', ':scheme': 'http', ':authority': 'web.localhost', 'sec-websocket-version': '13' })
  const status = await new Promise<number>((r) => ws.once('response', (h) => r(Number(h[':status']))))
  t.equal(status, 200, 'the tunnel is open')
  const echoed: string[] = []
  for (const m of ['hello', 'again']) {
    ws.write(m)
    echoed.push(await new Promise<string>((r) => ws.once('data', (d: Buffer) => r(d.toString()))))
  }
  t.same(echoed, ['HELLO', 'AGAIN'], 'both ways, twice, on the one stream')
  const up = w.seen.find((s) => s.url === '/chat')!
  t.equal(up.headers.upgrade, 'websocket', 'the replica saw an HTTP/1.1 Upgrade')
  ws.close()
})

t.test('an idempotent request a replica ends without answering is sent to another; a POST is not', async (t) => {
  const ok = backend('ok')
  const dead = { seen: 0, server: createTcpServer((s) => s.once('data', () => { dead.seen++; s.destroy() })) }
  const pair = await ingressPair([{ contractId: 'c-dead', hostPort: await listen(dead.server) }, { contractId: 'c-ok', hostPort: await listen(ok.server) }])
  const session = h2connect(`http://127.0.0.1:${pair.port}`)
  t.teardown(async () => {
    await closeSession(session)
    await pair.stop()
    ok.server.close()
    dead.server.close()
  })
  for (let i = 0; i < 4; i++) {
    const r = await ask(session, { ':path': `/g${i}`, ':authority': 'web.localhost' })
    t.same([r.status, r.body], [200, 'ok'], `GET ${i} answered`)
  }
  t.ok(dead.seen >= 1, 'the dying replica had a request')
  t.equal(pair.ingress.stats.retried, dead.seen, 'each retried on the other replica')

  const only = await ingressPair([{ contractId: 'c-dead', hostPort: (dead.server.address() as { port: number }).port }])
  const s2 = h2connect(`http://127.0.0.1:${only.port}`)
  t.teardown(async () => {
    await closeSession(s2)
    await only.stop()
  })
  const before = dead.seen
  const post = await ask(s2, { ':method': 'POST', ':path': '/pay', ':authority': 'web.localhost' }, 'pay once')
  t.equal(post.status, 502, 'the POST fails with a problem document')
  t.equal(JSON.parse(post.body).title, 'UpstreamUnreachableError')
  t.equal(dead.seen - before, 1, 'and reached the replica once')
  t.equal(only.ingress.stats.retried, 0)
})

t.test('access control over HTTP/2: every request of a connection is checked; the key never reaches the workload; a smuggled body does not either', async (t) => {
  const key = 'k-' + randomBytes(24).toString('base64url')
  const sha = createHash('sha256').update(key).digest('hex')
  const w = backend('w')
  const pair = await ingressPair([{ contractId: 'c1', hostPort: await listen(w.server) }], { access: { 8080: { apiKeys: [sha] } } })
  const session = h2connect(`http://127.0.0.1:${pair.port}`)
  t.teardown(async () => {
    await closeSession(session)
    await pair.stop()
    w.server.close()
  })
  const none = await ask(session, { ':path': '/a', ':authority': 'web.localhost' })
  t.equal(none.status, 401)
  t.equal(none.headers['www-authenticate'], 'Bearer realm="noir-ingress"')
  const wrong = await ask(session, { ':path': '/b', ':authority': 'web.localhost', authorization: 'Bearer not-the-key' })
  t.equal(wrong.status, 403)
  t.equal(w.seen.length, 0, 'nothing refused reached the workload')
  // the same connection: one request with the key, one without (each is checked, not the connection)
  const good = await ask(session, { ':path': '/c', ':authority': 'web.localhost', authorization: `Bearer ${key}` })
  const after = await ask(session, { ':path': '/d', ':authority': 'web.localhost' })
  t.same([good.status, after.status], [200, 401], 'the key opened its request only')
  t.same(w.seen.map((s) => s.url), ['/c'])
  t.equal(w.seen[0]!.headers.authorization, undefined, 'the key was taken out before the workload')
  // keep-alive and chunked bodies work on an access-controlled port over HTTP/2
  const chunked = await ask(session, { ':method': 'POST', ':path': '/e', ':authority': 'web.localhost', authorization: `Bearer ${key}` }, ['x', 'y'])
  t.equal(chunked.body, 'w:xy')

  // an attacker declares a length of 0 and sends a body holding a second request: HTTP/2 itself refuses the
  // mismatch (Node closes the attacker's connection with a protocol error) and nothing reaches the workload
  const attacker = h2connect(`http://127.0.0.1:${pair.port}`)
  const sessionError = new Promise<string>((r) => attacker.on('error', (err: Error & { code?: string }) => r(err.code ?? err.message)))
  const req = attacker.request({ ':method': 'POST', ':path': '/f', ':authority': 'web.localhost', authorization: `Bearer ${key}`, 'content-length': '0' })
  req.on('error', () => undefined)
  req.end('GET /smuggled HTTP/1.1\r\nhost: web.localhost\r\n\r\n')
  t.equal(await sessionError, 'ERR_HTTP2_SESSION_ERROR', 'the attacker\'s connection is closed')
  await new Promise((r) => setTimeout(r, 200))
  t.notOk(w.seen.some((s) => s.url === '/smuggled' || s.url === '/f'), 'neither the request nor the smuggled one reached the workload')
  const still = await ask(session, { ':path': '/g', ':authority': 'web.localhost', authorization: `Bearer ${key}` })
  t.equal(still.status, 200, 'another client\'s connection is untouched')
})

t.test('http2: false in the config: the preface is not taken (an HTTP/1.1 refusal)', async (t) => {
  const w = backend('w')
  const pair = await ingressPair([{ contractId: 'c1', hostPort: await listen(w.server) }], { http2: false })
  const session = h2connect(`http://127.0.0.1:${pair.port}`)
  session.on('error', () => undefined) // the HTTP/1.1 answer is a protocol error to an HTTP/2 client
  t.teardown(async () => {
    session.destroy()
    await pair.stop()
    w.server.close()
  })
  const err = await ask(session, { ':path': '/', ':authority': 'web.localhost' }).then(() => 'answered', (e: Error) => e.message)
  t.not(err, 'answered', `no HTTP/2 answer (${err})`)
  t.equal(w.seen.length, 0)
})

t.test('HTTP/1.1 on an access-controlled port (per-request routing): an Upgrade is checked, then passed through as sent', async (t) => {
  const key = 'k-' + randomBytes(24).toString('base64url')
  const w = backend('w')
  const pair = await ingressPair([{ contractId: 'c1', hostPort: await listen(w.server) }], { access: { 8080: { apiKeys: [createHash('sha256').update(key).digest('hex')] } } })
  t.teardown(async () => {
    await pair.stop()
    w.server.closeAllConnections()
    w.server.close()
  })
  const wsKey = randomBytes(16).toString('base64')
  const upgrade = (authorization: string | undefined): Promise<{ head: string; socket: Socket }> => new Promise((resolve, reject) => {
    const s = connectTcp({ host: '127.0.0.1', port: pair.port })
    let got = ''
    s.on('error', reject)
    s.on('data', (d: Buffer) => {
      got += d.toString('latin1')
      if (got.includes('\r\n\r\n')) {
        s.removeAllListeners('data')
        resolve({ head: got, socket: s })
      }
    })
    s.write(`GET /chat HTTP/1.1\r\nhost: web.localhost\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-key: ${wsKey}\r\nsec-websocket-version: 13\r\n${authorization ? `authorization: ${authorization}\r\n` : ''}\r\n`)
  })
  const refused = await upgrade(undefined)
  t.match(refused.head, /^HTTP\/1\.1 401/, 'an Upgrade without the key is refused')
  refused.socket.destroy()
  t.equal(w.seen.length, 0)
  const opened = await upgrade(`Bearer ${key}`)
  t.teardown(() => opened.socket.destroy())
  t.match(opened.head, /^HTTP\/1\.1 101/, 'with the key: switched')
  const accept = createHash('sha1').update(`${wsKey}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64')
  t.ok(opened.head.toLowerCase().includes(`sec-websocket-accept: ${accept.toLowerCase()}`), 'the client\'s own key was answered (passed through, not replaced)')
  opened.socket.write('ping')
  const echo = await new Promise<string>((r) => opened.socket.once('data', (d: Buffer) => r(d.toString())))
  t.equal(echo, 'PING', 'bytes both ways after the 101')
  t.equal(w.seen[0]?.headers.authorization, undefined, 'the key did not reach the workload')
  opened.socket.destroy()
  await new Promise((r) => setTimeout(r, 300))
  t.equal([...w.sockets].filter((s) => !s.destroyed).length, 0, 'the client gone, its end reached the workload, which closed its side')
})

t.test('a kept stream the workload closed while idle is not reused: a POST after it is answered', async (t) => {
  const w = backend('w')
  w.server.keepAliveTimeout = 200 // the workload closes an idle connection quickly
  const pair = await ingressPair([{ contractId: 'c1', hostPort: await listen(w.server) }])
  const session = h2connect(`http://127.0.0.1:${pair.port}`)
  t.teardown(async () => {
    await closeSession(session)
    await pair.stop()
    w.server.close()
  })
  t.equal((await ask(session, { ':path': '/warm', ':authority': 'web.localhost' })).status, 200)
  await new Promise((r) => setTimeout(r, 600))
  t.ok([...w.sockets].every((s) => s.destroyed), 'the workload closed its idle connection')
  const post = await ask(session, { ':method': 'POST', ':path': '/pay', ':authority': 'web.localhost' }, 'once')
  t.same([post.status, post.body], [200, 'w:once'], 'the POST went on a fresh stream and was answered')
  t.equal(w.seen.filter((s) => s.url === '/pay').length, 1, 'once')
})

t.test('a kept stream unused for upstreamIdleMs is closed: the workload sees its connection end, the next request opens another', async (t) => {
  const w = backend('w')
  w.server.keepAliveTimeout = 120_000 // the workload keeps an idle connection for two minutes: a close sooner is the ingress's
  const pair = await ingressPair([{ contractId: 'c1', hostPort: await listen(w.server) }], { upstreamIdleMs: 400 })
  const session = h2connect(`http://127.0.0.1:${pair.port}`)
  t.teardown(async () => {
    await closeSession(session)
    await pair.stop()
    w.server.close()
  })
  t.equal((await ask(session, { ':path': '/one', ':authority': 'web.localhost' })).status, 200)
  t.equal((await ask(session, { ':path': '/two', ':authority': 'web.localhost' })).status, 200)
  t.equal([...w.sockets].filter((s) => !s.destroyed).length, 1, 'two requests in a row: one kept connection to the workload')
  const until = Date.now() + 20_000 // far past the 400 ms asked, far short of the workload's two minutes
  while (Date.now() < until && ![...w.sockets].every((s) => s.destroyed)) await new Promise((r) => setTimeout(r, 50))
  t.ok([...w.sockets].every((s) => s.destroyed), 'unused, the kept stream was closed by the ingress (the workload would have kept it two minutes), and the provider closed its connection')
  t.equal((await ask(session, { ':path': '/three', ':authority': 'web.localhost' })).status, 200, 'the next request is answered on a new stream')
  t.equal(w.sockets.size, 2, 'over a second connection')
})

t.test('a kept stream carries request after request without piling up listeners (Node\'s client removes its timeout listener with setTimeout(0, cb))', async (t) => {
  const w = backend('w')
  w.server.keepAliveTimeout = 120_000
  const pair = await ingressPair([{ contractId: 'c1', hostPort: await listen(w.server) }])
  const session = h2connect(`http://127.0.0.1:${pair.port}`)
  const warnings: string[] = []
  const onWarning = (e: Error): void => void warnings.push(`${e.name}: ${e.message}`)
  process.on('warning', onWarning)
  t.teardown(async () => {
    process.off('warning', onWarning)
    await closeSession(session)
    await pair.stop()
    w.server.close()
  })
  for (let i = 0; i < 40; i++) t.equal((await ask(session, { ':path': `/k${i}`, ':authority': 'web.localhost' })).status, 200)
  t.equal([...w.sockets].filter((s) => !s.destroyed).length, 1, 'forty requests in a row over one kept connection to the workload')
  await new Promise((r) => setImmediate(r))
  t.same(warnings.filter((x) => /MaxListenersExceeded/.test(x)), [], 'no listener leak warned of (each request used to leave two timeout listeners on the kept stream)')
})

// The ingress and the provider's forwarder over real libp2p in one process (TCP, Noise, yamux on 127.0.0.1),
// with real HTTP and TCP servers as the workloads: what crosses the mesh is the connection's bytes, unchanged.
import t from 'tap'
import { createServer as createHttpServer, request, Agent, type Server as HttpServer } from 'node:http'
import { createServer as createTcpServer, connect, type Server as TcpServer, type Socket } from 'node:net'
import { request as httpsRequest } from 'node:https'
import type { TLSSocket } from 'node:tls'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHash, randomBytes } from 'node:crypto'
import { ingressPair, DEPLOYMENT } from '../ingress/test-mesh.ts'
import { INGRESS_PROTOCOL, encodeFrame, parseOpenAnswer, readFrame } from '../ingress/protocol.ts'
import { NodeKey } from '../../identity/keys.ts'
import { delegateCapability, issueCapability } from '../../identity/capabilities.ts'
import { serverCertificate } from '../tls/certificate.ts'
import { silentLog } from '../../p2p/log.ts'

function listen(srv: HttpServer | TcpServer): Promise<number> {
  return new Promise((r) => srv.listen(0, '127.0.0.1', () => r((srv.address() as { port: number }).port)))
}

function backend(name: string): { server: HttpServer; connections: () => number } {
  let n = 0
  const server = createHttpServer({ keepAlive: true }, (req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      res.setHeader('x-backend', name)
      res.end(req.method === 'POST' ? body : name)
    })
  })
  server.on('connection', () => n++)
  return { server, connections: () => n }
}

function call(port: number, o: { agent?: Agent; method?: string; body?: Buffer; host?: string } = {}): Promise<{ status: number; body: Buffer; backend: string | undefined; localPort: number | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: o.method ?? 'GET', path: '/', headers: { host: o.host ?? 'web.localhost' }, agent: o.agent ?? false }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), backend: res.headers['x-backend'] as string | undefined, localPort: res.socket?.localPort }))
    })
    req.on('error', reject)
    req.end(o.body)
  })
}

t.test('HTTP/1.1 keep-alive: requests on one client connection reuse one connection to the workload', async (t) => {
  const b = backend('a')
  const pair = await ingressPair([{ contractId: 'c1', hostPort: await listen(b.server) }])
  t.teardown(async () => {
    await pair.stop()
    b.server.closeAllConnections()
    b.server.close()
  })
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  const ports = new Set<number | undefined>()
  for (let i = 0; i < 5; i++) {
    const r = await call(pair.port, { agent })
    t.equal(r.status, 200)
    t.equal(r.body.toString(), 'a')
    ports.add(r.localPort)
  }
  t.equal(ports.size, 1, 'one client connection')
  t.equal(b.connections(), 1, 'one connection reached the workload')
  t.equal(pair.forwarder.stats.opened, 1, 'one stream over the mesh')
  t.equal(pair.ingress.traffic.idleMs('web'), 0, 'the open keep-alive connection keeps the route busy')
  agent.destroy()
  for (let i = 0; i < 100 && pair.ingress.traffic.snapshot()[0]?.active !== 0; i++) await new Promise((r) => setTimeout(r, 20))
  t.match(pair.ingress.traffic.snapshot(), [{ route: 'web', active: 0 }], 'the route is idle once the client leaves')
})

t.test('balance: "request": the requests of one keep-alive HTTP/1.1 connection spread over the replicas', async (t) => {
  const a = backend('a')
  const b = backend('b')
  const replicas = [{ contractId: 'c1', hostPort: await listen(a.server) }, { contractId: 'c2', hostPort: await listen(b.server) }]
  const perConnection = await ingressPair(replicas)
  const perRequest = await ingressPair(replicas, { balance: 'request' })
  t.teardown(async () => {
    await perConnection.stop()
    await perRequest.stop()
    for (const x of [a, b]) {
      x.server.closeAllConnections()
      x.server.close()
    }
  })
  const over = async (port: number): Promise<{ backends: Record<string, number>; ports: Set<number | undefined> }> => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 })
    const backends: Record<string, number> = {}
    const ports = new Set<number | undefined>()
    for (let i = 0; i < 6; i++) {
      const r = await call(port, { agent, method: i % 2 === 0 ? 'GET' : 'POST', ...(i % 2 === 0 ? {} : { body: Buffer.from(`posted ${i}`) }) })
      t.equal(r.status, 200)
      if (i % 2 === 1) t.equal(r.body.toString(), `posted ${i}`, 'a POST body through')
      backends[r.backend!] = (backends[r.backend!] ?? 0) + 1
      ports.add(r.localPort)
    }
    agent.destroy()
    return { backends, ports }
  }
  const sticky = await over(perConnection.port)
  t.equal(sticky.ports.size, 1, 'by connection (the default): one client connection')
  t.equal(Object.keys(sticky.backends).length, 1, `and all six requests on one replica (${JSON.stringify(sticky.backends)})`)
  const spread = await over(perRequest.port)
  t.equal(spread.ports.size, 1, 'by request: still one client connection')
  t.same(spread.backends, { a: 3, b: 3 }, 'and its six requests spread over both replicas')
})

t.test('a 4 MiB body crosses the mesh both ways unchanged', async (t) => {
  const b = backend('a')
  const pair = await ingressPair([{ contractId: 'c1', hostPort: await listen(b.server) }])
  t.teardown(async () => {
    await pair.stop()
    b.server.close()
  })
  const body = Buffer.alloc(4 * 1024 * 1024)
  for (let i = 0; i < body.length; i++) body[i] = (i * 31) & 0xff
  const r = await call(pair.port, { method: 'POST', body })
  t.equal(r.status, 200)
  t.ok(r.body.equals(body), 'echoed byte for byte')
})

t.test('new connections are spread round-robin; a replica that is not ready is skipped until it is', async (t) => {
  const a = backend('a')
  const b = backend('b')
  const replicas = [{ contractId: 'c1', hostPort: await listen(a.server) }, { contractId: 'c2', hostPort: await listen(b.server), ready: { ready: false, why: 'HTTP 500' } as { ready: boolean; why?: string } }]
  const pair = await ingressPair(replicas)
  t.teardown(async () => {
    await pair.stop()
    a.server.close()
    b.server.close()
  })
  const tally = async (n: number): Promise<Record<string, number>> => {
    const seen: Record<string, number> = {}
    for (let i = 0; i < n; i++) {
      const r = await call(pair.port)
      t.equal(r.status, 200)
      seen[r.backend!] = (seen[r.backend!] ?? 0) + 1
    }
    return seen
  }
  t.same(await tally(6), { a: 6 }, 'the replica that is not ready takes nothing')
  const seenB = pair.ingress.routes()[0]!.balancer.replicas().find((r) => r.contractId === 'c2')
  t.match(seenB?.lastRefusal, /ReplicaNotReadyError: .*HTTP 500/, 'the ingress knows why it skipped it')
  replicas[1]!.ready = { ready: true }
  await new Promise((r) => setTimeout(r, 2100)) // its skip period ends
  t.same(await tally(10), { a: 5, b: 5 }, 'ready again: back in rotation, one connection each in turn')
})

t.test('every replica refusing: 503 with a problem document; an unknown host: 404', async (t) => {
  const pair = await ingressPair([{ contractId: 'c1', hostPort: 1, ready: { ready: false, why: 'starting' } }])
  t.teardown(() => pair.stop())
  const r = await call(pair.port)
  t.equal(r.status, 503)
  const p = JSON.parse(r.body.toString()) as { title: string; status: number; detail: string }
  t.equal(p.title, 'NoReadyReplicaError')
  t.match(p.detail, /ReplicaNotReadyError/)
  const u = await call(pair.port, { host: 'other.localhost' })
  t.equal(u.status, 404)
  t.equal(JSON.parse(u.body.toString()).title, 'UnknownRouteError')
})

t.test('raw TCP with half-close: the client ends its side, the workload still answers', async (t) => {
  const srv = createTcpServer((s) => {
    let n = 0
    s.on('data', (c: Buffer) => (n += c.length))
    s.on('end', () => s.end(`got ${n} bytes`))
  })
  const pair = await ingressPair([{ contractId: 'c1', hostPort: await listen(srv) }], { tcp: true })
  t.teardown(async () => {
    await pair.stop()
    srv.close()
  })
  const port = pair.ingress.tcpAddresses[0]!.address.port
  const answer = await new Promise<string>((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port })
    let got = ''
    s.on('data', (c: Buffer) => (got += c.toString()))
    s.on('end', () => resolve(got))
    s.on('error', reject)
    s.end(Buffer.alloc(100_000, 1))
  })
  t.equal(answer, 'got 100000 bytes')
})

t.test('a provider reachable only through a relay (as behind NAT) is served through the circuit', async (t) => {
  const b = backend('hidden')
  const pair = await ingressPair([{ contractId: 'c1', hostPort: await listen(b.server) }], { relay: true })
  t.teardown(async () => {
    await pair.stop()
    b.server.closeAllConnections()
    b.server.close()
  })
  t.match(pair.providerAddress, /\/p2p-circuit\/p2p\//, `the provider has only a circuit address (${pair.providerAddress})`)
  t.same(pair.client.getMultiaddrs(), [], 'the ingress has no address either: nobody can dial it')
  for (let i = 0; i < 3; i++) {
    const r = await call(pair.port)
    t.equal(r.status, 200)
    t.equal(r.body.toString(), 'hidden')
  }
  const conns = pair.client.getConnections(pair.provider.peerId)
  t.ok(conns.length > 0 && conns.every((c) => c.limits != null && c.remoteAddr.toString().includes('/p2p-circuit')), 'only through the relay\'s circuit')
})

t.test('rate limits: a flood from one client gets 429 with Retry-After over HTTP, and is closed over raw TCP', async (t) => {
  const b = backend('a')
  const srv = createTcpServer((s) => s.end('hello'))
  const pair = await ingressPair([{ contractId: 'c1', hostPort: await listen(b.server) }], { rateLimit: { perClient: { perSecond: 0.2, burst: 3 } } })
  const tcpPair = await ingressPair([{ contractId: 'c1', hostPort: await listen(srv) }], { tcp: true, rateLimit: { perClient: { perSecond: 0.2, burst: 2 } } })
  t.teardown(async () => {
    await pair.stop()
    await tcpPair.stop()
    b.server.closeAllConnections()
    b.server.close()
    srv.close()
  })
  const answers: number[] = []
  let retryAfter: string | undefined
  for (let i = 0; i < 6; i++) {
    const r = await new Promise<{ status: number; retry: string | undefined; body: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: pair.port, path: '/', headers: { host: 'web.localhost' }, agent: false }, (res) => {
        let body = ''
        res.on('data', (c: Buffer) => (body += c.toString()))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, retry: res.headers['retry-after'] as string | undefined, body }))
      })
      req.on('error', reject)
      req.end()
    })
    answers.push(r.status)
    if (r.status === 429) {
      retryAfter = r.retry
      t.equal(JSON.parse(r.body).title, 'RateLimitedError', 'a problem document names the refusal')
    }
  }
  t.same(answers, [200, 200, 200, 429, 429, 429], 'the burst passes, the rest of the flood is refused')
  t.ok(Number(retryAfter) >= 1, `Retry-After says when to come back (${retryAfter} s)`)
  t.equal(b.connections(), 3, 'refused connections never reached the workload')
  t.equal(pair.ingress.stats.refused.RateLimitedError, 3)

  const tcpPort = tcpPair.ingress.tcpAddresses[0]!.address.port
  const tcpAnswers: string[] = []
  for (let i = 0; i < 4; i++) {
    tcpAnswers.push(await new Promise<string>((resolve) => {
      const s = connect({ host: '127.0.0.1', port: tcpPort })
      let got = ''
      s.on('data', (c: Buffer) => (got += c.toString()))
      s.on('close', () => resolve(got))
      s.on('error', () => undefined)
    }))
  }
  t.same(tcpAnswers, ['hello', 'hello', '', ''], 'raw TCP: past the burst the connection is closed with no byte')
})

t.test('a replica that ends a connection without answering: an idempotent request is sent to another, a POST is not', async (t) => {
  const ok = backend('ok')
  // a replica that dies with the request in hand: reads it, then resets the connection without a byte back
  const dead = { seen: 0, server: createTcpServer((s) => s.once('data', () => { dead.seen++; s.destroy() })) }
  const replicas = [{ contractId: 'c-dead', hostPort: await listen(dead.server) }, { contractId: 'c-ok', hostPort: await listen(ok.server) }]
  const pair = await ingressPair(replicas)
  t.teardown(async () => {
    await pair.stop()
    ok.server.close()
    dead.server.close()
  })
  for (let i = 0; i < 4; i++) {
    const r = await call(pair.port)
    t.same([r.status, r.backend], [200, 'ok'], `GET ${i}: answered, by the replica that answers`)
  }
  t.ok(dead.seen >= 1, `the dying replica had the request (${dead.seen} time(s)) and it was sent again`)
  t.equal(pair.ingress.stats.retried, dead.seen, 'each one retried once, on the other replica')
  t.match(pair.ingress.routes()[0]!.balancer.replicas().find((r) => r.contractId === 'c-dead')?.lastRefusal, /ended without answering/)

  // a body, or a method that is not idempotent: never sent twice
  const only = await ingressPair([{ contractId: 'c-dead', hostPort: dead.server.address() ? (dead.server.address() as { port: number }).port : 0 }])
  t.teardown(() => only.stop())
  const before = dead.seen
  const post = await call(only.port, { method: 'POST', body: Buffer.from('pay once') }).then(() => 'answered', (err: Error) => err.message)
  t.match(post, /socket hang up|ECONNRESET/, 'the POST fails as the replica did')
  t.equal(dead.seen - before, 1, 'and reached the replica once')
  t.equal(only.ingress.stats.retried, 0)
})

t.test('which first requests may be sent again', async (t) => {
  const { retryableHead } = await import('../ingress/ingress-server.ts')
  const h = (s: string) => Buffer.from(s, 'latin1')
  t.ok(retryableHead(h('GET / HTTP/1.1\r\nHost: a\r\n\r\n')))
  t.ok(retryableHead(h('DELETE /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n')))
  t.notOk(retryableHead(h('POST / HTTP/1.1\r\nHost: a\r\n\r\n')), 'POST')
  t.notOk(retryableHead(h('PUT / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc')), 'a body')
  t.notOk(retryableHead(h('GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n')), 'a chunked body')
  t.notOk(retryableHead(h('GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\n')), 'a pipelined request behind it')
})

t.test('TLS: an HTTPS request reaches the workload; plain HTTP on the TLS port gets nothing; the logged fingerprint is the served certificate', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-ingress-tls-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const tls = await serverCertificate({ dir, hosts: ['localhost', '*.localhost', '127.0.0.1'] })
  t.ok(tls.generated, 'a self-signed certificate was made')
  t.equal((statSync(join(dir, 'tls.key')).mode & 0o777), 0o600, 'its key is 0600')
  const again = await serverCertificate({ dir, hosts: ['localhost'] })
  t.equal(again.fingerprint, tls.fingerprint, 'made once: the next start reuses it')
  const lines: { msg: string; fields: Record<string, unknown> }[] = []
  const log = { ...silentLog, info: (msg: string, fields?: Record<string, unknown>) => void lines.push({ msg, fields: fields ?? {} }) }
  const b = backend('secure')
  const pair = await ingressPair([{ contractId: 'c1', hostPort: await listen(b.server) }], { tls, log })
  t.teardown(async () => {
    await pair.stop()
    b.server.closeAllConnections()
    b.server.close()
  })
  const logged = lines.find((l) => l.msg === 'ingress tls')?.fields.fingerprint
  t.equal(logged, tls.fingerprint, `the fingerprint is logged (${String(logged)})`)
  t.equal(pair.ingress.tlsFingerprint, tls.fingerprint)

  const r = await new Promise<{ status: number; body: string; fingerprint: string }>((resolve, reject) => {
    const req = httpsRequest({ host: '127.0.0.1', port: pair.port, path: '/', servername: 'web.localhost', headers: { host: 'web.localhost' }, agent: false, ca: tls.cert, checkServerIdentity: () => undefined }, (res) => {
      let body = ''
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256
      res.on('data', (c: Buffer) => (body += c.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, fingerprint }))
    })
    req.on('error', reject)
    req.end()
  })
  t.equal(r.status, 200)
  t.equal(r.body, 'secure', 'the HTTPS request reached the workload')
  t.equal(r.fingerprint, tls.fingerprint, 'the served certificate is the one whose fingerprint was logged')
  const strict = await new Promise<string>((resolve) => {
    const req = httpsRequest({ host: '127.0.0.1', port: pair.port, path: '/', headers: { host: 'web.localhost' }, agent: false }, () => resolve('accepted'))
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
    req.end()
  })
  t.match(strict, /SELF_SIGNED|UNABLE_TO_VERIFY|CERT/, `a client that does not pin it refuses the self-signed certificate (${strict})`)

  const before = b.connections()
  const plain = await new Promise<string>((resolve) => {
    const req = request({ host: '127.0.0.1', port: pair.port, path: '/', headers: { host: 'web.localhost' }, agent: false }, (res) => resolve(`HTTP ${res.statusCode}`))
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
    req.end()
  })
  t.notMatch(plain, /^HTTP/, `plain HTTP on the TLS port gets no HTTP answer (${plain})`)
  t.equal(b.connections(), before, 'and never reaches the workload')
})

/** A workload that counts the requests it is handed and remembers the Authorization headers it saw. */
function countingBackend(): { server: HttpServer; requests: () => number; authorizations: (string | undefined)[]; received: () => string } {
  let n = 0
  let received = ''
  const authorizations: (string | undefined)[] = []
  const server = createHttpServer((req, res) => {
    n++
    authorizations.push(req.headers.authorization)
    req.resume()
    req.on('end', () => res.end(`served ${req.url}`))
  })
  // every byte that reached the workload, whether or not its HTTP server acted on it
  server.on('connection', (s: Socket) => s.on('data', (c: Buffer) => (received += c.toString('latin1'))))
  return { server, requests: () => n, authorizations, received: () => received }
}

/** Sends `text`, then `later` once the connection is routed (a separate read at the ingress). */
function raw(port: number, text: string, later?: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port })
    let got = ''
    s.on('data', (c: Buffer) => (got += c.toString('latin1')))
    s.on('close', () => resolve(got))
    s.on('error', () => undefined)
    if (later === undefined) s.end(text)
    else {
      s.write(text)
      setTimeout(() => s.end(later), 150)
    }
  })
}

t.test('access control: an attacker\'s attempts are refused before the mesh and never reach the workload; the owner\'s key and token do', async (t) => {
  const owner = NodeKey.generate()
  const stranger = NodeKey.generate()
  const holder = NodeKey.generate()
  const key = 'k-' + randomBytes(24).toString('base64url')
  const adminKey = 'a-' + randomBytes(24).toString('base64url')
  const sha = (k: string): string => createHash('sha256').update(k).digest('hex')
  const w = countingBackend()
  const hostPort = await listen(w.server)
  const pair = await ingressPair([{ contractId: 'c1', hostPort }], {
    tcp: true,
    routes: [{ name: 'web', deploymentId: DEPLOYMENT, port: 8080, orchestrators: [] }, { name: 'admin', deploymentId: DEPLOYMENT, port: 9090, orchestrators: [] }],
    access: { 8080: { apiKeys: [sha(key)], capability: { issuer: owner.did } }, 9090: { apiKeys: [sha(adminKey)] } },
  })
  t.teardown(async () => {
    await pair.stop()
    w.server.closeAllConnections()
    w.server.close()
  })
  const ability = `/noir/ingress/${DEPLOYMENT}/8080`
  const good = await issueCapability(owner, { audience: holder.did, abilities: [{ can: ability }], ttlMs: 60_000 })
  const delegated = await delegateCapability(holder, good, { audience: stranger.did, abilities: [{ can: ability }], ttlMs: 30_000 })
  const wide = await issueCapability(owner, { audience: holder.did, abilities: [{ can: '/noir/ingress' }], ttlMs: 60_000 })
  const expired = await issueCapability(owner, { audience: holder.did, abilities: [{ can: ability }], ttlMs: 60_000, now: Date.now() - 3_600_000 })
  const foreign = await issueCapability(stranger, { audience: holder.did, abilities: [{ can: ability }], ttlMs: 60_000 })
  const otherDeployment = await issueCapability(owner, { audience: holder.did, abilities: [{ can: '/noir/ingress/web-00000002/8080' }], ttlMs: 60_000 })
  const otherPort = await issueCapability(owner, { audience: holder.did, abilities: [{ can: `/noir/ingress/${DEPLOYMENT}/9090` }], ttlMs: 60_000 })
  const forged = `${good.split('.').slice(0, 2).join('.')}.${Buffer.alloc(64, 7).toString('base64url')}`

  const ask = (authorization: string | undefined, host = 'web.localhost'): Promise<{ status: number; body: string; auth: string | undefined }> => new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: pair.port, path: '/x', headers: { host, ...(authorization !== undefined ? { authorization } : {}) }, agent: false }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => (body += c.toString()))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, auth: res.headers['www-authenticate'] as string | undefined }))
    })
    req.on('error', reject)
    req.end()
  })

  const attempts: [string, string | undefined, number, string][] = [
    ['no Authorization header', undefined, 401, 'IngressAuthRequiredError'],
    ['another scheme (Basic)', `Basic ${Buffer.from(`u:${key}`).toString('base64')}`, 401, 'IngressAuthRequiredError'],
    ['a wrong key', 'Bearer not-the-key', 403, 'IngressAccessDeniedError'],
    ['the key one character short', `Bearer ${key.slice(0, -1)}`, 403, 'IngressAccessDeniedError'],
    ['the SHA-256 listed in the workload, presented as the key', `Bearer ${sha(key)}`, 403, 'IngressAccessDeniedError'],
    ['the key of another port', `Bearer ${adminKey}`, 403, 'IngressAccessDeniedError'],
    ['an expired token', `Bearer ${expired}`, 403, 'IngressAccessDeniedError'],
    ['a token from another issuer', `Bearer ${foreign}`, 403, 'IngressAccessDeniedError'],
    ['a token whose ability names another deployment', `Bearer ${otherDeployment}`, 403, 'IngressAccessDeniedError'],
    ['a token for another port', `Bearer ${otherPort}`, 403, 'IngressAccessDeniedError'],
    ['a token with a forged signature', `Bearer ${forged}`, 403, 'IngressAccessDeniedError'],
  ]
  for (const [what, authorization, status, title] of attempts) {
    const r = await ask(authorization)
    t.equal(r.status, status, `${what}: ${status}`)
    t.equal((JSON.parse(r.body) as { title: string }).title, title, `${what}: ${title}`)
    t.match(r.auth, /^Bearer/, `${what}: WWW-Authenticate: Bearer`)
  }
  const admin = await ask(`Bearer ${key}`, 'admin.localhost')
  t.equal(admin.status, 403, 'the web key does not open the admin port')
  t.equal(w.requests(), 0, 'no refused request reached the workload')
  t.equal(pair.forwarder.stats.opened + Object.values(pair.forwarder.stats.refused).reduce((a, b) => a + b, 0), 0, 'nothing was asked of the provider for them')

  const tcpPort = pair.ingress.tcpAddresses[0]!.address.port
  t.equal(await raw(tcpPort, 'GET / HTTP/1.1\r\nhost: web\r\nauthorization: Bearer ' + key + '\r\n\r\n'), '', 'raw TCP to a port with access is closed with no byte, even carrying the key')
  t.equal(w.requests(), 0)

  for (const [what, bearer] of [['the key', key], ['the owner\'s token', good], ['a delegation of it', delegated], ['a token for every ingress path of the owner', wide]] as const) {
    const r = await ask(`Bearer ${bearer}`)
    t.equal(r.status, 200, `${what} opens the port`)
    t.equal(r.body, 'served /x')
  }
  t.equal(w.requests(), 4, 'each accepted request reached the workload')
  t.same(w.authorizations, [undefined, undefined, undefined, undefined], 'the workload never saw the Authorization header')

  // a second request pipelined behind an accepted one is checked on its own: without a credential it is refused
  const pipelined = await raw(pair.port, `GET /first HTTP/1.1\r\nhost: web.localhost\r\nauthorization: Bearer ${key}\r\nconnection: keep-alive\r\n\r\nGET /second HTTP/1.1\r\nhost: web.localhost\r\n\r\n`)
  t.match(pipelined, /served \/first/)
  t.match(pipelined, /HTTP\/1\.1 401[^]*IngressAuthRequiredError/, 'the pipelined request without a credential gets its own 401')
  t.notMatch(pipelined, /served \/second/, 'and is not served')
  t.equal(w.requests(), 5, 'only the checked request reached the workload')
  t.notMatch(w.received(), /\/second/, 'not one byte of it was forwarded')
  t.notMatch(w.received(), /authorization/i, 'no Authorization header crossed the mesh to the workload')
  // keep-alive: two requests on one connection, each with the key, both served
  const both = await raw(pair.port, `GET /k1 HTTP/1.1\r\nhost: web.localhost\r\nauthorization: Bearer ${key}\r\n\r\nGET /k2 HTTP/1.1\r\nhost: web.localhost\r\nauthorization: Bearer ${good}\r\n\r\n`)
  t.match(both, /served \/k1[^]*served \/k2/, 'a kept-alive connection carries several checked requests')
  const smuggled = await raw(pair.port, `POST /a HTTP/1.1\r\nhost: web.localhost\r\nauthorization: Bearer ${key}\r\ncontent-length: 4\r\n\r\nbodyGET /smuggled HTTP/1.1\r\nhost: web.localhost\r\n\r\n`)
  t.match(smuggled, /served \/a/)
  t.notMatch(smuggled, /served \/smuggled/, 'bytes past Content-Length are a request of their own, checked and refused')
  t.notMatch(w.received(), /smuggled/, 'and never forwarded')
  const chunked = await raw(pair.port, `POST /c HTTP/1.1\r\nhost: web.localhost\r\nauthorization: Bearer ${key}\r\ntransfer-encoding: chunked\r\n\r\n4\r\nbody\r\n0\r\n\r\n`)
  t.match(chunked, /served \/c/, 'a chunked body is carried on an access-controlled port')
  const twoWays = await raw(pair.port, `POST /d HTTP/1.1\r\nhost: web.localhost\r\nauthorization: Bearer ${key}\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n`)
  t.match(twoWays, /^HTTP\/1\.1 400/, 'a head with both Content-Length and Transfer-Encoding (read two ways) is refused')
  const twoKeys = await raw(pair.port, `GET /e HTTP/1.1\r\nhost: web.localhost\r\nauthorization: Bearer ${key}\r\nauthorization: Bearer ${key}\r\n\r\n`)
  t.match(twoKeys, /^HTTP\/1\.1 403/, 'two Authorization headers are refused')
  const late = await raw(pair.port, `POST /b HTTP/1.1\r\nhost: web.localhost\r\nauthorization: Bearer ${key}\r\ncontent-length: 4\r\n\r\nbo`, `dyGET /late HTTP/1.1\r\nhost: web.localhost\r\n\r\n`)
  t.match(late, /served \/b/, 'a body that arrives later is carried up to its Content-Length')
  t.notMatch(w.received(), /\/late/, 'and the request after it, unchecked, is not forwarded')
  t.equal(w.requests(), 10)
  t.same(w.authorizations.filter((a) => a !== undefined), [], 'the workload never saw an Authorization header')

  // a peer that skips the ingress and opens a stream to the provider itself meets the same check there
  const direct = async (bearer?: string, port = 8080): Promise<string> => {
    const conn = pair.client.getConnections(pair.provider.peerId).find((c) => c.status === 'open')!
    const stream = await conn.newStream(INGRESS_PROTOCOL)
    stream.send(encodeFrame({ v: 1, deploymentId: DEPLOYMENT, contractId: 'c1', port, ...(bearer !== undefined ? { bearer } : {}) }))
    stream.send(Buffer.from('GET /direct HTTP/1.1\r\nhost: x\r\n\r\n'))
    const refused = parseOpenAnswer(await readFrame(stream, 5000))
    stream.abort(new Error('done'))
    return refused ? refused.name : 'ok'
  }
  t.equal(await direct(), 'IngressAuthRequiredError', 'straight to the provider with no bearer: refused')
  t.equal(await direct('not-the-key'), 'IngressAccessDeniedError', 'with a wrong key: refused')
  t.equal(await direct(expired), 'IngressAccessDeniedError', 'with an expired token: refused')
  t.equal(await direct(key, 9090), 'IngressAccessDeniedError', 'with the key of another port: refused')
  t.equal(await direct(key), 'ok', 'with the key: opened')
  await new Promise((r) => setTimeout(r, 100))
  t.equal(w.received().match(/\/direct/g)?.length ?? 0, 1, 'only the stream with the right key reached the workload')
})

t.test('rate limits declared by the workload: the stricter of the owner\'s and the operator\'s applies; refused connections never reach the workload', async (t) => {
  const w = countingBackend()
  const hostPort = await listen(w.server)
  const key = 'k-' + randomBytes(24).toString('base64url')
  const routes = [{ name: 'web', deploymentId: DEPLOYMENT, port: 8080, orchestrators: [] }, { name: 'shared', deploymentId: DEPLOYMENT, port: 8081, orchestrators: [] }, { name: 'locked', deploymentId: DEPLOYMENT, port: 8082, orchestrators: [] }, { name: 'loose', deploymentId: DEPLOYMENT, port: 8083, orchestrators: [] }]
  const pair = await ingressPair([{ contractId: 'c1', hostPort }], {
    routes, tcp: true,
    rateLimit: { perClient: { perSecond: 0.01, burst: 3 } },
    workloadRateLimit: {
      8080: { perClient: { perSecond: 0.01, burst: 2 } }, // stricter than the operator's
      8081: { perRoute: { perSecond: 0.01, burst: 2 } }, // every client together
      8082: { perClient: { perSecond: 0.01, burst: 3 } },
      8083: { perClient: { perSecond: 1000, burst: 1000 } }, // looser: the operator's applies
    },
    access: { 8082: { apiKeys: [createHash('sha256').update(key).digest('hex')] } },
  })
  t.teardown(async () => {
    await pair.stop()
    w.server.closeAllConnections()
    w.server.close()
  })
  const ask = (host: string, o: { from?: string; authorization?: string } = {}): Promise<{ status: number; limit: string | undefined; scope: string | undefined; retry: string | undefined }> => new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port: pair.port, path: '/', headers: { host, ...(o.authorization ? { authorization: o.authorization } : {}) }, agent: false, ...(o.from ? { localAddress: o.from } : {}) }, (res) => {
      let body = ''
      res.on('data', (c: Buffer) => (body += c.toString()))
      res.on('end', () => {
        const p = res.statusCode === 429 ? (JSON.parse(body) as { detail: string }) : undefined
        resolve({ status: res.statusCode ?? 0, limit: p && /workload's limit/.test(p.detail) ? 'workload' : p ? 'ingress' : undefined, scope: p && /from this client/.test(p.detail) ? 'client' : p ? 'route' : undefined, retry: res.headers['retry-after'] as string | undefined })
      })
    })
    req.on('error', reject)
    req.end()
  })
  const statuses = async (n: number, host: string, o: { from?: string; authorization?: string } = {}): Promise<number[]> => {
    const out: number[] = []
    for (let i = 0; i < n; i++) out.push((await ask(host, o)).status)
    return out
  }

  t.same(await statuses(2, 'web.localhost'), [200, 200])
  const refused = await ask('web.localhost')
  t.same([refused.status, refused.limit, refused.scope], [429, 'workload', 'client'], 'the workload\'s burst of 2 ends the flood before the operator\'s 3')
  t.ok(Number(refused.retry) >= 1, `with Retry-After (${refused.retry} s)`)
  t.equal(w.requests(), 2, 'the refused connection never reached the workload')

  t.same(await statuses(3, 'loose.localhost'), [200, 200, 200])
  const op = await ask('loose.localhost')
  t.same([op.status, op.limit], [429, 'ingress'], 'a looser workload limit does not lift the operator\'s')
  t.equal(w.requests(), 5)

  const a = await ask('shared.localhost', { from: '127.0.0.1' })
  const b = await ask('shared.localhost', { from: '127.0.0.2' })
  const c = await ask('shared.localhost', { from: '127.0.0.3' })
  t.same([a.status, b.status, c.status, c.limit, c.scope], [200, 200, 429, 'workload', 'route'], 'perRoute counts every client together')
  t.equal(w.requests(), 7)

  // a brute force of keys spends the client's budget: the right key, after it, is refused too
  t.same(await statuses(3, 'locked.localhost', { from: '127.0.0.4', authorization: 'Bearer guess' }), [403, 403, 403], 'three wrong keys')
  t.equal((await ask('locked.localhost', { from: '127.0.0.4', authorization: `Bearer ${key}` })).status, 429, 'the limit comes before the key check')
  t.equal((await ask('locked.localhost', { from: '127.0.0.5', authorization: `Bearer ${key}` })).status, 200, 'another client with the key is served')
  t.equal(w.requests(), 8)

  const tcpPort = pair.ingress.tcpAddresses[0]!.address.port // route 'web' (the first), already over the workload's burst for 127.0.0.1
  t.equal(await raw(tcpPort, 'GET / HTTP/1.1\r\nhost: web\r\n\r\n'), '', 'raw TCP past the workload\'s limit: closed with no byte')
  t.equal(w.requests(), 8)
})

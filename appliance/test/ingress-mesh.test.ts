// The ingress and the provider's forwarder over real libp2p in one process (TCP, Noise, yamux on 127.0.0.1),
// with real HTTP and TCP servers as the workloads: what crosses the mesh is the connection's bytes, unchanged.
import t from 'tap'
import { createServer as createHttpServer, request, Agent, type Server as HttpServer } from 'node:http'
import { createServer as createTcpServer, connect, type Server as TcpServer } from 'node:net'
import { ingressPair } from '../ingress/test-mesh.ts'

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

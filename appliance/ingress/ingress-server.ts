// The ingress's listeners (spec/ingress.md "Routing"): an HTTP listener that routes each connection by its
// Host header (`NAME.<domain>` or `NAME`) and raw TCP listeners bound to one route each. A connection goes to
// one replica (its RouteBalancer picks it) and its bytes are carried over the mesh unchanged, so keep-alive,
// upgrades and any TCP protocol work. A connection that cannot be routed gets an RFC 9457 problem document
// (HTTP) or is closed (raw TCP). With TLS material the HTTP listener speaks HTTPS: TLS ends here and the Host
// of the decrypted request head picks the route as before (raw TCP listeners stay plain TCP).
import { createServer, type Server, type Socket } from 'node:net'
import { createServer as createTlsServer, type TLSSocket } from 'node:tls'
import type { TlsMaterial } from '../tls/certificate.ts'
import { errorFields, type Log } from '../../p2p/log.ts'
import { RouteBalancer, type BalancerDeps } from './balancer.ts'
import { routeNameOfHost, type IngressConfig, type ListenAddress, type RouteSpec } from './config.ts'
import { IngressAccessDeniedError, IngressAuthRequiredError, IngressError, InvalidIngressRequestError, RateLimitedError, UnknownRouteError } from './errors.ts'
import { AccessChecker } from './access.ts'
import { Http1Front } from './h1-front.ts'
import { Http2Front } from './h2-front.ts'
import { RequestRouter } from './request-router.ts'
import type { PortRateLimit } from '../../actors/workload/workload.ts'
import { RateLimiter } from './rate-limit.ts'
import { splice } from './splice.ts'
import { TrafficClock } from './traffic.ts'

/** The most an HTTP request head may take before its Host is known. */
const MAX_HEAD_BYTES = 16 * 1024
const HEAD_TIMEOUT_MS = 10_000
/** A TLS handshake not done by then is dropped. */
const HANDSHAKE_TIMEOUT_MS = 10_000
/** What a client that speaks HTTP/2 with prior knowledge (h2c) sends first (RFC 9113 3.4). */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1')

export interface IngressStats {
  connections: number
  routed: number
  refused: Record<string, number>
  active: number
  /** Idempotent first requests sent again to another replica after one ended without answering. */
  retried: number
}

/** At most this many replicas are tried for one idempotent request that got no answer. */
export const MAX_REQUEST_TRIES = 3
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])

/**
 * Whether `head` (everything read so far) is exactly one whole request that may be sent again: an idempotent
 * method (RFC 9110 9.2.2) without a body (no Content-Length above 0, no Transfer-Encoding), nothing after it.
 */
export function retryableHead(head: Buffer): boolean {
  const end = head.indexOf('\r\n\r\n')
  if (end < 0 || end + 4 !== head.byteLength) return false
  const text = head.subarray(0, end).toString('latin1')
  const method = text.slice(0, text.indexOf(' '))
  if (!IDEMPOTENT.has(method)) return false
  if (/\r\ntransfer-encoding:/i.test(text)) return false
  const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(text)?.[1]
  return length === undefined || Number(length) === 0
}

export class IngressServer {
  readonly #cfg: IngressConfig
  readonly #deps: BalancerDeps
  readonly #log: Log
  readonly #balancers = new Map<string, RouteBalancer>()
  readonly #servers: Server[] = []
  readonly #sockets = new Set<Socket>()
  readonly stats: IngressStats = { connections: 0, routed: 0, refused: {}, active: 0, retried: 0 }
  /** Per-route open connections and last traffic (the idle clock for scale to zero). */
  readonly traffic = new TrafficClock()
  readonly #limiter: RateLimiter | undefined
  /** Per route, the limit the workload's owner declares for its port (`ports[].rateLimit`), as last answered. */
  readonly #workloadLimiters = new Map<string, { key: string; limiter: RateLimiter }>()
  /** The HTTP listener's bound address (after start). */
  address: ListenAddress | undefined
  /** The raw TCP listeners' bound addresses, by route (after start). */
  readonly tcpAddresses: { route: string; address: ListenAddress }[] = []
  readonly #tls: TlsMaterial | undefined
  readonly #access = new AccessChecker()
  /** HTTP/2 connections (ALPN h2, or the h2c preface), each stream routed as a request of its own. */
  readonly #h2: Http2Front | undefined
  /** HTTP/1.1 connections to a port with an access policy: each request checked and routed on its own. */
  readonly #h1: Http1Front
  readonly #router: RequestRouter

  /** `tls`: the HTTP listener's certificate (config `ingress.tls`, loaded by the caller); absent: plain HTTP. */
  constructor(cfg: IngressConfig, deps: BalancerDeps, tls?: TlsMaterial) {
    this.#cfg = cfg
    this.#tls = tls
    this.#deps = deps
    this.#log = deps.log
    this.#limiter = cfg.rateLimit ? new RateLimiter(cfg.rateLimit) : undefined
    for (const r of cfg.routes) this.addRoute(r)
    const routeOf = (authority: string): string | undefined => {
      const name = routeNameOfHost(authority, this.#cfg.domain)
      return name && this.#balancers.has(name) ? name : undefined
    }
    const router = this.#router = new RequestRouter({
      admit: (route, client, authorization) => this.#admitRequest(route, client, authorization),
      opened: (route) => {
        this.stats.routed++
        this.stats.active++
        this.traffic.opened(route)
      },
      closed: (route) => {
        this.stats.active--
        this.traffic.closed(route)
      },
      retried: (route, node, tries) => {
        this.stats.retried++
        this.#log.info('ingress request retried on another replica', { route, after: node, tries })
      },
      refused: (err) => {
        this.#count(err.name)
        this.#log.info('ingress request refused', errorFields(err))
      },
      maxTries: MAX_REQUEST_TRIES,
      log: this.#log,
    }, cfg.upstreamIdleMs !== undefined ? { idleMs: cfg.upstreamIdleMs } : {})
    this.#h1 = new Http1Front({ router, routeOf, problem: problemParts, refused: (err) => this.#count(err.name), log: this.#log })
    this.#h2 = cfg.http2 === false ? undefined : new Http2Front({ router, routeOf, problem: problemParts, refused: (err) => this.#count(err.name), log: this.#log })
  }

  get domain(): string {
    return this.#cfg.domain
  }

  /** What the HTTP listener speaks (ALPN names): HTTP/2 as `h2` over TLS, `h2c` in plain text. */
  get protocols(): string[] {
    return this.#h2 ? ['http/1.1', this.#tls ? 'h2' : 'h2c'] : ['http/1.1']
  }

  /** The SHA-256 fingerprint of the HTTP listener's certificate (undefined: plain HTTP). */
  get tlsFingerprint(): string | undefined {
    return this.#tls?.fingerprint
  }

  routes(): { route: RouteSpec; balancer: RouteBalancer }[] {
    return [...this.#balancers.values()].map((b) => ({ route: b.route, balancer: b }))
  }

  route(name: string): RouteSpec | undefined {
    return this.#balancers.get(name)?.route
  }

  addRoute(r: RouteSpec): void {
    this.#balancers.set(r.name, new RouteBalancer(r, this.#deps))
  }

  async start(): Promise<void> {
    const http = await this.#listen(this.#cfg.listen, (s) => this.#http(s), this.#tls)
    const a = http.address()
    if (a && typeof a === 'object') this.address = { host: a.address, port: a.port }
    if (this.#tls) this.#log.info('ingress tls', { listen: this.address, fingerprint: this.#tls.fingerprint, generated: this.#tls.generated })
    for (const t of this.#cfg.tcp) {
      const srv = await this.#listen(t.listen, (s) => void this.#connect(s, t.route, undefined))
      const ta = srv.address()
      if (ta && typeof ta === 'object') this.tcpAddresses.push({ route: t.route, address: { host: ta.address, port: ta.port } })
    }
  }

  async stop(): Promise<void> {
    this.#router.close()
    for (const s of this.#sockets) s.destroy()
    await Promise.all(this.#servers.map((srv) => new Promise<void>((r) => srv.close(() => r()))))
  }

  #listen(at: ListenAddress, onConnection: (s: Socket) => void, tls?: TlsMaterial): Promise<Server> {
    return new Promise((resolve, reject) => {
      const accepted = (s: Socket): void => {
        this.stats.connections++
        this.#track(s)
        onConnection(s)
      }
      let srv: Server
      if (tls) {
        const alpn = this.#h2 ? ['h2', 'http/1.1'] : ['http/1.1']
        const t = createTlsServer({ key: tls.key, cert: tls.cert, allowHalfOpen: true, handshakeTimeout: HANDSHAKE_TIMEOUT_MS, minVersion: 'TLSv1.2', ALPNProtocols: alpn }, (s: TLSSocket) => {
          s.pause()
          if (s.alpnProtocol === 'h2' && this.#h2) {
            this.stats.connections++
            this.#track(s)
            this.#h2.accept(s)
            return
          }
          accepted(s)
        })
        t.on('connection', (raw: Socket) => this.#track(raw)) // a handshake in progress is closed by stop() too
        t.on('tlsClientError', (err) => this.#count(err.name === 'Error' ? 'TlsHandshakeError' : err.name))
        srv = t
      } else {
        srv = createServer({ pauseOnConnect: true, noDelay: true, allowHalfOpen: true }, accepted)
      }
      srv.once('error', reject)
      srv.listen(at.port, at.host, () => {
        srv.off('error', reject)
        this.#servers.push(srv)
        resolve(srv)
      })
    })
  }

  /**
   * Takes the connection's token from the ingress's buckets and the workload's (both must have one: the stricter
   * limit wins; a refused connection takes none). Throws RateLimitedError.
   */
  #admit(route: string, client: string, declared: PortRateLimit | undefined): void {
    const theirs = declared ? this.#workloadLimiter(route, declared) : undefined
    for (const [limiter, limit] of [[this.#limiter, 'ingress'], [theirs, 'workload']] as const) {
      const d = limiter?.peek(route, client)
      if (d && !d.ok) throw new RateLimitedError(route, d.scope, Math.ceil(d.retryAfterMs / 1000), limit)
    }
    this.#limiter?.take(route, client)
    theirs?.take(route, client)
  }

  /** The route's limiter for the workload's declared limit (a new one, full, when the owner changes it). */
  #workloadLimiter(route: string, declared: PortRateLimit): RateLimiter {
    const key = JSON.stringify(declared)
    const had = this.#workloadLimiters.get(route)
    if (had?.key === key) return had.limiter
    const limiter = new RateLimiter(declared)
    this.#workloadLimiters.set(route, { key, limiter })
    return limiter
  }

  /**
   * For one HTTP/2 request: the rate limits (a request takes a token as a connection does) and the owner's access
   * policy. Resolves with the route's balancer and the bearer for the provider; throws the typed refusal.
   */
  async #admitRequest(route: string, client: string, authorization: string[]): Promise<{ balancer: RouteBalancer; bearer?: string }> {
    const balancer = this.#balancers.get(route)
    if (!balancer) throw new UnknownRouteError(route)
    const ours = this.#limiter?.peek(route, client)
    if (ours && !ours.ok) throw new RateLimitedError(route, ours.scope, Math.ceil(ours.retryAfterMs / 1000))
    const { access, rateLimit } = await balancer.policy()
    this.#admit(route, client, rateLimit)
    if (!access) return { balancer }
    const bearer = await this.#access.check(access, authorization, balancer.route.deploymentId, balancer.route.port)
    return { balancer, bearer }
  }

  #track(s: Socket): void {
    this.#sockets.add(s)
    s.on('close', () => this.#sockets.delete(s))
    s.on('error', () => undefined)
  }

  #count(name: string): void {
    this.stats.refused[name] = (this.stats.refused[name] ?? 0) + 1
  }

  /** Reads the request head up to its Host, then routes the connection (the head goes on unchanged). */
  #http(s: Socket): void {
    let head = Buffer.alloc(0)
    const timer = setTimeout(() => fail(new InvalidIngressRequestError(`no request head within ${HEAD_TIMEOUT_MS} ms`)), HEAD_TIMEOUT_MS)
    const fail = (err: Error): void => {
      clearTimeout(timer)
      s.off('data', onData)
      this.#refuse(s, err, true)
    }
    const onData = (b: Buffer): void => {
      head = Buffer.concat([head, b])
      if (this.#h2 && head.subarray(0, H2_PREFACE.byteLength).equals(H2_PREFACE.subarray(0, Math.min(head.byteLength, H2_PREFACE.byteLength)))) {
        if (head.byteLength < H2_PREFACE.byteLength) return
        // HTTP/2 with prior knowledge: the HTTP/2 server reads it from the start
        clearTimeout(timer)
        s.off('data', onData)
        s.pause()
        s.unshift(head)
        this.#h2.accept(s)
        return
      }
      const end = head.indexOf('\r\n\r\n')
      if (end < 0) {
        if (head.byteLength > MAX_HEAD_BYTES) fail(new InvalidIngressRequestError(`the request head is over ${MAX_HEAD_BYTES} bytes`))
        return
      }
      clearTimeout(timer)
      s.off('data', onData)
      s.pause()
      const host = /\r\nhost:[ \t]*([^\r\n]*)/i.exec(head.subarray(0, end + 2).toString('latin1'))?.[1]
      if (!host) return this.#refuse(s, new InvalidIngressRequestError('the request has no Host header'), true)
      const name = routeNameOfHost(host, this.#cfg.domain)
      if (!name || !this.#balancers.has(name)) return this.#refuse(s, new UnknownRouteError(host.slice(0, 100)), true)
      void this.#connect(s, name, head)
    }
    s.on('data', onData)
    s.resume()
  }

  async #connect(s: Socket, routeName: string, head: Buffer | undefined): Promise<void> {
    const balancer = this.#balancers.get(routeName)
    if (!balancer) return this.#refuse(s, new UnknownRouteError(routeName), head !== undefined)
    const client = s.remoteAddress ?? '?'
    const ours = this.#limiter?.peek(routeName, client) // before anything is asked of the mesh
    if (ours && !ours.ok) return this.#refuse(s, new RateLimitedError(routeName, ours.scope, Math.ceil(ours.retryAfterMs / 1000)), head !== undefined)
    let opened: Awaited<ReturnType<RouteBalancer['open']>>
    try {
      // the owner's rate limit and access policy are checked before any provider is asked for a stream
      const { access, rateLimit } = await balancer.policy()
      if (access && !head) {
        const r = balancer.route
        throw new IngressAuthRequiredError(r.deploymentId, r.port, 'a raw TCP connection cannot carry a key or token')
      }
      if (head && (access || this.#cfg.balance === 'request')) {
        // each request of the connection is routed (checked, and takes its rate-limit token) on its own
        s.unshift(head)
        this.#h1.accept(s)
        return
      }
      this.#admit(routeName, client, rateLimit)
      opened = await balancer.open(head)
    } catch (err) {
      return this.#refuse(s, err as Error, head !== undefined)
    }
    if (s.destroyed) {
      opened.stream.abort(new Error('the client left'))
      return
    }
    this.stats.routed++
    this.stats.active++
    this.traffic.opened(routeName)
    // an idempotent first request that got no answer at all goes to another replica (the head is sent again)
    const retryable = head !== undefined && retryableHead(head)
    const early = head
    try {
      for (let tries = 1; ; tries++) {
        const r = await splice(s, opened.stream, { retryable: retryable && tries < MAX_REQUEST_TRIES })
        if (!r.retry) break
        balancer.markDown(opened.backend, 'ended without answering')
        this.stats.retried++
        this.#log.info('ingress request retried on another replica', { route: routeName, after: opened.backend.node, tries })
        try {
          opened = await balancer.open(early)
        } catch (err) {
          return this.#refuse(s, err as Error, true)
        }
      }
    } catch (err) {
      this.#log.debug('ingress connection failed', { route: routeName, ...errorFields(err) })
      s.destroy()
    } finally {
      this.stats.active--
      this.traffic.closed(routeName)
    }
  }

  #refuse(s: Socket, err: Error, http: boolean): void {
    this.#count(err.name)
    this.#log.info('ingress connection refused', errorFields(err))
    if (!http || s.destroyed) {
      s.destroy()
      return
    }
    s.end(problemResponse(err))
  }
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 429: 'Too Many Requests', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' }

/** A refusal's status, headers and RFC 9457 problem document (for HTTP/1.1 and HTTP/2 alike). */
export function problemParts(err: Error): { status: number; headers: Record<string, string>; body: string } {
  const status = err instanceof IngressError ? err.status : 502
  const code = (err as { code?: unknown }).code
  const body = JSON.stringify({
    type: `https://noirledger.dev/problems/${err.name}`, title: err.name, status, detail: err.message, ...(typeof code === 'string' ? { code } : {}),
  })
  const headers: Record<string, string> = { 'content-type': 'application/problem+json', 'cache-control': 'no-store' }
  if (err instanceof RateLimitedError) headers['retry-after'] = String((err.data as { retryAfterSeconds: number }).retryAfterSeconds)
  else if (err instanceof IngressAuthRequiredError) headers['www-authenticate'] = 'Bearer realm="noir-ingress"'
  else if (err instanceof IngressAccessDeniedError) headers['www-authenticate'] = 'Bearer realm="noir-ingress", error="invalid_token"'
  return { status, headers, body }
}

/** An HTTP/1.1 answer carrying an RFC 9457 problem document for a refused connection. */
export function problemResponse(err: Error): string {
  const p = problemParts(err)
  const extra = Object.entries(p.headers).filter(([k]) => k !== 'content-type' && k !== 'cache-control').map(([k, v]) => `${k}: ${v}\r\n`).join('')
  return `HTTP/1.1 ${p.status} ${REASONS[p.status] ?? 'Error'}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(p.body)}\r\nconnection: close\r\ncache-control: no-store\r\n${extra}\r\n${p.body}`
}

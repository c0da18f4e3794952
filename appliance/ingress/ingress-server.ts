// The ingress's listeners (spec/ingress.md "Routing"): an HTTP listener that routes each connection by its
// Host header (`NAME.<domain>` or `NAME`) and raw TCP listeners bound to one route each. A connection goes to
// one replica (its RouteBalancer picks it) and its bytes are carried over the mesh unchanged, so keep-alive,
// upgrades and any TCP protocol work. A connection that cannot be routed gets an RFC 9457 problem document
// (HTTP) or is closed (raw TCP).
import { createServer, type Server, type Socket } from 'node:net'
import { errorFields, type Log } from '../../p2p/log.ts'
import { RouteBalancer, type BalancerDeps } from './balancer.ts'
import { routeNameOfHost, type IngressConfig, type ListenAddress, type RouteSpec } from './config.ts'
import { IngressError, InvalidIngressRequestError, RateLimitedError, UnknownRouteError } from './errors.ts'
import { RateLimiter } from './rate-limit.ts'
import { splice } from './splice.ts'
import { TrafficClock } from './traffic.ts'

/** The most an HTTP request head may take before its Host is known. */
const MAX_HEAD_BYTES = 16 * 1024
const HEAD_TIMEOUT_MS = 10_000

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
  /** The HTTP listener's bound address (after start). */
  address: ListenAddress | undefined
  /** The raw TCP listeners' bound addresses, by route (after start). */
  readonly tcpAddresses: { route: string; address: ListenAddress }[] = []

  constructor(cfg: IngressConfig, deps: BalancerDeps) {
    this.#cfg = cfg
    this.#deps = deps
    this.#log = deps.log
    this.#limiter = cfg.rateLimit ? new RateLimiter(cfg.rateLimit) : undefined
    for (const r of cfg.routes) this.addRoute(r)
  }

  get domain(): string {
    return this.#cfg.domain
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
    const http = await this.#listen(this.#cfg.listen, (s) => this.#http(s))
    const a = http.address()
    if (a && typeof a === 'object') this.address = { host: a.address, port: a.port }
    for (const t of this.#cfg.tcp) {
      const srv = await this.#listen(t.listen, (s) => void this.#connect(s, t.route, undefined))
      const ta = srv.address()
      if (ta && typeof ta === 'object') this.tcpAddresses.push({ route: t.route, address: { host: ta.address, port: ta.port } })
    }
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy()
    await Promise.all(this.#servers.map((srv) => new Promise<void>((r) => srv.close(() => r()))))
  }

  #listen(at: ListenAddress, onConnection: (s: Socket) => void): Promise<Server> {
    return new Promise((resolve, reject) => {
      const srv = createServer({ pauseOnConnect: true, noDelay: true, allowHalfOpen: true }, (s) => {
        this.stats.connections++
        this.#sockets.add(s)
        s.on('close', () => this.#sockets.delete(s))
        s.on('error', () => undefined)
        onConnection(s)
      })
      srv.once('error', reject)
      srv.listen(at.port, at.host, () => {
        srv.off('error', reject)
        this.#servers.push(srv)
        resolve(srv)
      })
    })
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
    const admitted = this.#limiter?.admit(routeName, s.remoteAddress ?? '?')
    if (admitted && !admitted.ok) return this.#refuse(s, new RateLimitedError(routeName, admitted.scope, Math.ceil(admitted.retryAfterMs / 1000)), head !== undefined)
    let opened: Awaited<ReturnType<RouteBalancer['open']>>
    try {
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
    try {
      for (let tries = 1; ; tries++) {
        const r = await splice(s, opened.stream, { retryable: retryable && tries < MAX_REQUEST_TRIES })
        if (!r.retry) break
        balancer.markDown(opened.backend, 'ended without answering')
        this.stats.retried++
        this.#log.info('ingress request retried on another replica', { route: routeName, after: opened.backend.node, tries })
        try {
          opened = await balancer.open(head)
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
    this.stats.refused[err.name] = (this.stats.refused[err.name] ?? 0) + 1
    this.#log.info('ingress connection refused', errorFields(err))
    if (!http || s.destroyed) {
      s.destroy()
      return
    }
    s.end(problemResponse(err))
  }
}

const REASONS: Record<number, string> = { 400: 'Bad Request', 403: 'Forbidden', 404: 'Not Found', 409: 'Conflict', 429: 'Too Many Requests', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' }

/** An HTTP/1.1 answer carrying an RFC 9457 problem document for a refused connection. */
export function problemResponse(err: Error): string {
  const status = err instanceof IngressError ? err.status : 502
  const code = (err as { code?: unknown }).code
  const body = JSON.stringify({
    type: `https://noirledger.dev/problems/${err.name}`, title: err.name, status, detail: err.message, ...(typeof code === 'string' ? { code } : {}),
  })
  const retry = err instanceof RateLimitedError ? `retry-after: ${(err.data as { retryAfterSeconds: number }).retryAfterSeconds}\r\n` : ''
  return `HTTP/1.1 ${status} ${REASONS[status] ?? 'Error'}\r\ncontent-type: application/problem+json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\ncache-control: no-store\r\n${retry}\r\n${body}`
}

// Per-request routing (spec/ingress.md "Per-request routing"): one HTTP request, already parsed by the front end
// that took its connection (HTTP/2, or HTTP/1.1 on a port with an access policy), is checked (rate limits, the
// owner's access policy), given a replica of its own, and sent to it as an HTTP/1.1 request over a mesh stream
// (Content-Length, or chunked when the length is unknown); the answer is handed to the front end's sink. The
// mesh streams are kept alive and reused, a pool per replica and credential (an http.Agent whose connections
// are ingress streams): a request on a warm stream pays no stream open and no connection to the workload. An idempotent request with no body that got no answer at all is sent again to another
// replica (at most `maxTries`). An Upgrade is carried too: `websocket` (an HTTP/2 extended CONNECT) is made an
// HTTP/1.1 WebSocket handshake with a key of the router's, checked; `passthrough` (an HTTP/1.1 client's own
// Upgrade) goes as the client sent it, and the sink relays the 101 as it came.
import { Agent, request as h1Request, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type RequestOptions } from 'node:http'
import { createHash, randomBytes } from 'node:crypto'
import type { Duplex, Readable } from 'node:stream'
import type { Log } from '../../p2p/log.ts'
import type { RouteBalancer } from './balancer.ts'
import type { Backend, BackendsAnswer } from './backends.ts'
import { InvalidIngressRequestError, UpstreamUnreachableError } from './errors.ts'
import { streamDuplex } from './stream-duplex.ts'
import { DEFAULT_UPSTREAM_IDLE_MS } from './config.ts'

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE'])
/** Headers that belong to one hop (RFC 9110 7.6.1, RFC 9113 8.2.2): never carried from one side to the other. */
export const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'http2-settings', 'host', 'trailer'])
const WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
/** Pools kept (one per replica and credential); the least recently used is closed past this. */
const POOLS_KEPT = 256
/** Kept-alive streams per pool, and idle ones kept. */
const POOL_SOCKETS = 64
const POOL_FREE = 16

/** What the router asks of the ingress for each request. */
export interface RequestGate {
  /**
   * The route's balancer once the rate limits and the owner's access policy let the request through, and the
   * bearer to hand the provider (for a port with an access policy). Throws the typed refusal.
   */
  admit(route: string, client: string, authorization: string[]): Promise<{ balancer: RouteBalancer; bearer?: string }>
  /** A request was routed / ended (stats and the route's traffic clock). */
  opened(route: string): void
  closed(route: string): void
  retried(route: string, node: string, tries: number): void
  /** A refusal, counted by its name. */
  refused(err: Error): void
  maxTries: number
  log: Log
}

export interface ProxiedRequest {
  route: string
  client: string
  method: string
  path: string
  authority: string
  /** The request's headers (lower-case names; pseudo-headers are left out when sent). */
  headers: IncomingHttpHeaders
  /** Every Authorization header value the client sent (more than one is refused on a port with access). */
  authorization: string[]
  /** The body to stream, or undefined when the request has none. */
  body: Readable | undefined
  upgrade?: 'websocket' | 'passthrough'
}

/** Where the answer goes: the front end's side of the request. */
export interface ResponseSink {
  /** The client is gone (the request can be abandoned). */
  readonly gone: boolean
  onGone(cb: () => void): void
  answer(res: IncomingMessage): void
  refuse(err: Error): void
  /** The replica switched protocols: carry `socket` both ways (`head`: bytes it sent behind its 101). */
  upgraded(res: IncomingMessage, socket: Duplex, head: Buffer): void
}

type Outcome = { answered: true } | { answered: false; error: Error }

/** A replica that refused or could not be reached before anything was sent: the next one may be tried. */
class NotOpened extends Error {
  readonly refusal: Error
  constructor(refusal: Error) {
    super(refusal.message)
    this.name = refusal.name
    this.refusal = refusal
  }
}

type Connect = NonNullable<RequestOptions['createConnection']>
/** Pools whose connections are ingress streams to one replica. */
interface Pool { agent: Agent; connect: Connect }

export class RequestRouter {
  readonly #gate: RequestGate
  /** Kept-alive ingress streams, by replica contract and credential. */
  readonly #pools = new Map<string, Pool>()

  /** A kept stream unused this long is closed (the Agent's free-socket timeout). */
  readonly #idleMs: number

  constructor(gate: RequestGate, o: { idleMs?: number } = {}) {
    this.#gate = gate
    this.#idleMs = o.idleMs ?? DEFAULT_UPSTREAM_IDLE_MS
  }

  /** Closes every kept stream. */
  close(): void {
    for (const p of this.#pools.values()) p.agent.destroy()
    this.#pools.clear()
  }

  async handle(req: ProxiedRequest, sink: ResponseSink): Promise<void> {
    let admitted: Awaited<ReturnType<RequestGate['admit']>>
    try {
      admitted = await this.#gate.admit(req.route, req.client, req.authorization)
    } catch (err) {
      return this.#refuse(sink, err as Error)
    }
    if (sink.gone) return
    const { balancer, bearer } = admitted
    const retryable = req.body === undefined && req.upgrade === undefined && IDEMPOTENT.has(req.method)
    this.#gate.opened(req.route)
    try {
      for (let tries = 1; ; tries++) {
        let sent: Awaited<ReturnType<RouteBalancer['each']>> & { value: Outcome }
        try {
          sent = await balancer.each((b, answer) => this.#send(this.#pool(balancer, b, answer, bearer), req, sink, bearer !== undefined))
        } catch (err) {
          return this.#refuse(sink, err as Error)
        }
        const outcome = sent.value
        if (outcome.answered) return
        // the replica took the request and ended without a byte of answer (it died, or closed a kept stream)
        this.#drop(sent.backend.contractId)
        if (retryable && tries < this.#gate.maxTries && !sink.gone) {
          balancer.markDown(sent.backend, 'ended without answering')
          this.#gate.retried(req.route, sent.backend.node, tries)
          continue
        }
        return this.#refuse(sink, new UpstreamUnreachableError(`replica ${sent.backend.index} of '${req.route}'`, `it ended without answering (${outcome.error.message})`))
      }
    } finally {
      this.#gate.closed(req.route)
    }
  }

  #refuse(sink: ResponseSink, err: Error): void {
    this.#gate.refused(err)
    if (!sink.gone) sink.refuse(err)
  }

  /** The pool of kept streams to replica `b` for this credential (made on first use). */
  #pool(balancer: RouteBalancer, b: Backend, answer: BackendsAnswer, bearer: string | undefined): Pool {
    const key = `${b.contractId}\n${bearer ?? ''}`
    let pool = this.#pools.get(key)
    if (pool) {
      this.#pools.delete(key) // most recently used goes last
      this.#pools.set(key, pool)
      return pool
    }
    // each connection of the pool is an ingress stream to this replica, opened with the provider's checks
    const connect: Connect = (_o, cb) => {
      balancer.openOn(b, answer, undefined, bearer).then((stream) => cb(null, streamDuplex(stream)), (err: Error) => cb(new NotOpened(err), undefined as never))
      return undefined
    }
    const agent = new Agent({ keepAlive: true, maxSockets: POOL_SOCKETS, maxFreeSockets: POOL_FREE, scheduling: 'lifo', timeout: this.#idleMs })
    Object.assign(agent, { createConnection: connect })
    pool = { agent, connect }
    this.#pools.set(key, pool)
    if (this.#pools.size > POOLS_KEPT) {
      const [oldest, p] = this.#pools.entries().next().value!
      p.agent.destroy()
      this.#pools.delete(oldest)
    }
    return pool
  }

  /** Closes the kept streams to a replica (it failed a request; a stale stream is not reused). */
  #drop(contractId: string): void {
    for (const [key, pool] of this.#pools) {
      if (key.startsWith(`${contractId}\n`)) {
        pool.agent.destroy()
        this.#pools.delete(key)
      }
    }
  }

  /**
   * Sends one request through `agent` and hands its answer to the sink; resolves once the request is done either
   * way (answered, or ended without a byte of answer). Rejects with NotOpened when no stream to the replica could
   * be opened (nothing was sent: the balancer tries the next replica).
   */
  #send(pool: Pool, r: ProxiedRequest, sink: ResponseSink, stripAuthorization: boolean): Promise<Outcome> {
    return new Promise((resolve, reject) => {
      let answered = false
      let done = false
      let settled = false
      const settle = (outcome: Outcome): void => {
        if (settled) return
        settled = true
        resolve(outcome)
      }
      const out = h1Headers(r.headers, stripAuthorization, r.upgrade === 'passthrough')
      out.host = r.authority
      let key: string | undefined
      if (r.upgrade === 'websocket') {
        key = randomBytes(16).toString('base64')
        Object.assign(out, { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': key, 'sec-websocket-version': '13' })
      } else if (r.body && out['content-length'] === undefined) out['transfer-encoding'] = 'chunked'
      let req: ReturnType<typeof h1Request>
      try {
        // an upgraded connection is never returned to the pool: it gets a stream of its own
        req = h1Request({ ...(r.upgrade ? { createConnection: pool.connect } : { agent: pool.agent }), method: r.upgrade === 'websocket' ? 'GET' : r.method, path: r.path, headers: out, setHost: false })
      } catch (err) {
        // a header Node will not write (a value with a control character): the client's request, not the replica
        this.#refuse(sink, new InvalidIngressRequestError(`the request cannot be sent as HTTP/1.1: ${(err as Error).message}`))
        return settle({ answered: true })
      }
      sink.onGone(() => {
        // the client left before the answer was whole: the stream is not reused (and an endless answer stops)
        if (!done) req.destroy()
        settle({ answered: true })
      })
      req.on('error', (err) => {
        if (err instanceof NotOpened) {
          if (!settled) {
            settled = true
            reject(err.refusal)
          }
          return
        }
        if (!answered) settle({ answered: false, error: err })
      })
      req.on('response', (res) => {
        answered = true
        res.on('end', () => (done = true))
        sink.answer(res)
        res.on('close', () => settle({ answered: true }))
      })
      req.on('upgrade', (res, socket, head) => {
        answered = true
        const accept = key === undefined ? undefined : createHash('sha1').update(`${key}${WS_GUID}`).digest('base64')
        if (r.upgrade === undefined || res.statusCode !== 101 || (accept !== undefined && res.headers['sec-websocket-accept'] !== accept)) {
          socket.destroy()
          this.#refuse(sink, new UpstreamUnreachableError(`the replica of ${r.authority.slice(0, 100)}`, 'it answered the upgrade wrongly'))
          return settle({ answered: true })
        }
        socket.on('close', () => settle({ answered: true }))
        sink.upgraded(res, socket, head)
      })
      if (r.body) r.body.pipe(req)
      else req.end()
    })
  }
}

/**
 * The request's headers for HTTP/1.1: nothing hop-by-hop (but an Upgrade passed through keeps its Upgrade and
 * Connection), no Authorization when the ingress checked it.
 */
function h1Headers(headers: IncomingHttpHeaders, stripAuthorization: boolean, keepUpgrade: boolean): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {}
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || name.startsWith(':')) continue
    if (HOP_BY_HOP.has(name) && !(keepUpgrade && (name === 'upgrade' || name === 'connection'))) continue
    if (stripAuthorization && name === 'authorization') continue
    out[name] = value
  }
  return out
}

/** An answer's end-to-end headers (nothing hop-by-hop). */
export function endToEnd(headers: NodeJS.Dict<string | string[]>): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {}
  for (const [name, value] of Object.entries(headers)) {
    if (HOP_BY_HOP.has(name) || value === undefined) continue
    out[name] = value
  }
  return out
}

// The ingress's per-request HTTP/1.1 front end (spec/ingress.md "Per-request routing"): a connection whose first
// request is for a port with an access policy is parsed here (Node's HTTP parser, strict: a head that could be
// read two ways is refused), and each of its requests is checked and routed on its own by the RequestRouter.
// So keep-alive and chunked bodies work on such ports while every request is checked (a pipelined request
// carries its own credential or is refused), and none of them reaches the workload with its Authorization.
// An Upgrade (WebSocket) is checked as a request, then passed through as the client sent it.
import { createServer as createHttpServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { errorFields, type Log } from '../../p2p/log.ts'
import { InvalidIngressRequestError, UnknownRouteError } from './errors.ts'
import { endToEnd, type ProxiedRequest, type RequestRouter, type ResponseSink } from './request-router.ts'

export const MAX_H1_HEAD_BYTES = 16 * 1024
const HEADERS_TIMEOUT_MS = 10_000
/** How long a kept-alive connection may sit idle between requests. */
const KEEP_ALIVE_MS = 5_000

export interface H1FrontDeps {
  router: RequestRouter
  routeOf(host: string): string | undefined
  /** A refusal's status, headers and problem document. */
  problem(err: Error): { status: number; headers: Record<string, string>; body: string }
  refused(err: Error): void
  log: Log
}

export class Http1Front {
  readonly #server: Server
  readonly #d: H1FrontDeps

  constructor(deps: H1FrontDeps) {
    this.#d = deps
    this.#server = createHttpServer({ keepAlive: true, keepAliveTimeout: KEEP_ALIVE_MS, headersTimeout: HEADERS_TIMEOUT_MS, maxHeaderSize: MAX_H1_HEAD_BYTES, requestTimeout: 0 })
    // a client that ends its side after its requests (half-close) still gets their answers, then the end
    ;(this.#server as Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true
    this.#server.on('request', (req: IncomingMessage, res: ServerResponse) => this.#request(req, res))
    this.#server.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.#upgrade(req, socket, head))
    this.#server.on('clientError', (err: Error & { code?: string }, socket: Duplex) => {
      const refusal = new InvalidIngressRequestError(`the request cannot be read (${err.code ?? err.message})`)
      this.#d.refused(refusal)
      deps.log.info('ingress request refused', errorFields(refusal))
      if (socket.writable) socket.end(rawProblem(this.#d.problem(refusal)))
      else socket.destroy()
    })
  }

  /** Takes over a paused connection (its request head, already read, put back with `unshift`). */
  accept(socket: Socket): void {
    // Node's HTTP server reads a fresh socket's handle directly (native consume), which would skip the bytes put
    // back with unshift: marked as consumed, it reads the socket's stream instead, unshifted head first.
    const handle = (socket as unknown as { _handle?: { _consumed?: boolean } })._handle // oxlint-disable-line no-underscore-dangle -- Node's own field, read by its HTTP server
    if (handle) handle._consumed = true // oxlint-disable-line no-underscore-dangle -- as above
    this.#server.emit('connection', socket)
    socket.resume()
  }

  #target(req: IncomingMessage): { route: string; authority: string } | Error {
    const host = req.headers.host
    if (!host) return new InvalidIngressRequestError('the request has no Host header')
    const route = this.#d.routeOf(host)
    return route ? { route, authority: host } : new UnknownRouteError(host.slice(0, 100))
  }

  #proxied(req: IncomingMessage, target: { route: string; authority: string }, body: boolean): ProxiedRequest {
    return {
      ...target, client: req.socket.remoteAddress ?? '?', method: req.method ?? 'GET', path: req.url ?? '/', headers: req.headers,
      authorization: req.headersDistinct.authorization ?? [], body: body ? req : undefined,
    }
  }

  #request(req: IncomingMessage, res: ServerResponse): void {
    const target = this.#target(req)
    const sink = responseSink(req, res, this.#d.problem)
    if (target instanceof Error) {
      this.#d.refused(target)
      return sink.refuse(target)
    }
    const body = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0
    void this.#d.router.handle(this.#proxied(req, target, body), sink)
  }

  #upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void {
    socket.on('error', () => undefined)
    const target = this.#target(req)
    const sink = upgradeSink(socket, head, this.#d.problem)
    if (target instanceof Error) {
      this.#d.refused(target)
      return sink.refuse(target)
    }
    void this.#d.router.handle({ ...this.#proxied(req, target, false), upgrade: 'passthrough' }, sink)
  }
}

/** An HTTP/1.1 problem answer that closes the connection. */
function rawProblem(p: { status: number; headers: Record<string, string>; body: string }): string {
  const extra = Object.entries(p.headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')
  return `HTTP/1.1 ${p.status} ${STATUS_CODES[p.status] ?? 'Error'}\r\n${extra}content-length: ${Buffer.byteLength(p.body)}\r\nconnection: close\r\n\r\n${p.body}`
}

function responseSink(req: IncomingMessage, res: ServerResponse, problem: H1FrontDeps['problem']): ResponseSink {
  return {
    get gone() {
      return res.destroyed || req.socket.destroyed
    },
    onGone: (cb) => res.once('close', cb),
    refuse: (err) => {
      if (res.headersSent) {
        res.destroy()
        return
      }
      const p = problem(err)
      // a body not read yet would be taken as the next request: such a connection is closed after the answer
      if (!req.complete) res.shouldKeepAlive = false
      res.writeHead(p.status, { ...p.headers, 'content-length': Buffer.byteLength(p.body) })
      res.end(p.body)
    },
    answer: (up: IncomingMessage) => {
      res.writeHead(up.statusCode ?? 502, endToEnd(up.headers))
      up.on('aborted', () => res.destroy()) // a cut answer is cut for the client too, never ended as if whole
      up.on('error', () => res.destroy())
      up.pipe(res, { end: false })
      up.on('end', () => {
        if (up.headers.trailer !== undefined) res.addTrailers(endToEnd(up.trailers) as Record<string, string>)
        res.end()
      })
    },
    upgraded: () => {
      // only an Upgrade request is passed through (upgradeSink): a plain request is never answered with a 101
      res.destroy()
    },
  }
}

function upgradeSink(client: Socket, clientHead: Buffer, problem: H1FrontDeps['problem']): ResponseSink {
  return {
    get gone() {
      return client.destroyed
    },
    onGone: (cb) => client.once('close', cb),
    refuse: (err) => {
      if (!client.destroyed) client.end(rawProblem(problem(err)))
    },
    answer: (up: IncomingMessage) => {
      // the replica declined the upgrade: its answer as it came, then the connection ends
      const lines = [`HTTP/1.1 ${up.statusCode ?? 502} ${up.statusMessage ?? ''}`]
      for (let i = 0; i < up.rawHeaders.length; i += 2) {
        const name = up.rawHeaders[i]!.toLowerCase()
        if (name !== 'connection' && name !== 'keep-alive' && name !== 'transfer-encoding') lines.push(`${up.rawHeaders[i]}: ${up.rawHeaders[i + 1]}`)
      }
      client.write(`${lines.join('\r\n')}\r\nconnection: close\r\n\r\n`)
      up.pipe(client)
    },
    upgraded: (up: IncomingMessage, socket: Duplex, head: Buffer) => {
      const lines = [`HTTP/1.1 101 ${up.statusMessage ?? 'Switching Protocols'}`]
      for (let i = 0; i < up.rawHeaders.length; i += 2) lines.push(`${up.rawHeaders[i]}: ${up.rawHeaders[i + 1]}`)
      client.write(`${lines.join('\r\n')}\r\n\r\n`)
      if (head.byteLength > 0) client.write(head)
      if (clientHead.byteLength > 0) socket.write(clientHead)
      socket.on('error', () => client.destroy())
      client.on('close', () => socket.destroy())
      socket.pipe(client)
      client.pipe(socket)
    },
  }
}

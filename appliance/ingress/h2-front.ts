// The ingress's HTTP/2 front end (spec/ingress.md "HTTP/2"): connections that speak HTTP/2 (ALPN `h2` on the
// TLS listener, or the HTTP/2 preface on the plain one: h2c with prior knowledge) are taken by Node's HTTP/2
// server, and each of their streams is one request for the RequestRouter: its `:authority` picks the route,
// and the answer is relayed back as the stream's response, with its trailers. A WebSocket opened with an
// extended CONNECT (RFC 8441) becomes an HTTP/1.1 WebSocket handshake on the replica's side, and after its 101
// the stream carries the bytes both ways.
import { constants, createServer as createH2Server, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2'
import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import { errorFields, type Log } from '../../p2p/log.ts'
import { InvalidIngressRequestError, UnknownRouteError } from './errors.ts'
import { endToEnd, type RequestRouter, type ResponseSink } from './request-router.ts'

/** The longest header list an HTTP/2 request may carry (as an HTTP/1.1 head may be). */
export const MAX_H2_HEADER_BYTES = 16 * 1024
/** Streams one HTTP/2 connection may have open at once. */
export const MAX_H2_STREAMS = 128

export interface H2FrontDeps {
  router: RequestRouter
  /** The route an `:authority` names (undefined: none). */
  routeOf(authority: string): string | undefined
  /** A refusal's status, headers and problem document. */
  problem(err: Error): { status: number; headers: Record<string, string>; body: string }
  /** A request refused before it was routed (counted). */
  refused(err: Error): void
  log: Log
}

export class Http2Front {
  readonly #server: Http2Server
  readonly #d: H2FrontDeps

  constructor(deps: H2FrontDeps) {
    this.#d = deps
    this.#server = createH2Server({
      settings: { enableConnectProtocol: true, maxConcurrentStreams: MAX_H2_STREAMS, maxHeaderListSize: MAX_H2_HEADER_BYTES },
      maxSessionMemory: 16,
    })
    this.#server.on('stream', (stream, headers, flags) => this.#request(stream, headers, flags))
    this.#server.on('sessionError', (err) => deps.log.debug('ingress http/2 session failed', errorFields(err)))
  }

  /** Takes over a connection that speaks HTTP/2 (whatever it sent so far must have been put back with `unshift`). */
  accept(socket: Socket): void {
    this.#server.emit('connection', socket)
  }

  #request(h2: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number): void {
    h2.on('error', () => undefined) // a reset by the client: its close follows
    const method = headers[':method'] ?? ''
    const websocket = method === 'CONNECT' && headers[':protocol'] === 'websocket'
    const authority = headers[':authority'] ?? headers.host
    const refuse = (err: Error): void => {
      this.#d.refused(err)
      this.#d.log.info('ingress request refused', { http: 2, ...errorFields(err) })
      refuseStream(h2, this.#d.problem(err))
    }
    if (method === 'CONNECT' && !websocket) return refuse(new InvalidIngressRequestError('CONNECT is not served here (the ingress is not a proxy); an extended CONNECT opens a WebSocket'))
    if (!authority) return refuse(new InvalidIngressRequestError('the request has no :authority'))
    const route = this.#d.routeOf(authority)
    if (!route) return refuse(new UnknownRouteError(authority.slice(0, 100)))
    const hasBody = (flags & constants.NGHTTP2_FLAG_END_STREAM) === 0 && !websocket
    void this.#d.router.handle({
      route, client: h2.session?.socket?.remoteAddress ?? '?', method, path: headers[':path'] ?? '/', authority, headers,
      authorization: headers.authorization === undefined ? [] : [headers.authorization].flat(),
      body: hasBody ? h2 : undefined, ...(websocket ? { upgrade: 'websocket' as const } : {}),
    }, streamSink(h2, (err) => refuseStream(h2, this.#d.problem(err))))
  }
}

/** A refused request's problem document, or a reset once its answer began (never ended as if whole). */
function refuseStream(h2: ServerHttp2Stream, p: { status: number; headers: Record<string, string>; body: string }): void {
  if (h2.destroyed) return
  if (h2.headersSent) {
    h2.close(constants.NGHTTP2_INTERNAL_ERROR)
    return
  }
  h2.respond({ ':status': p.status, ...p.headers, 'content-length': Buffer.byteLength(p.body) })
  h2.end(p.body)
}

/** The HTTP/2 stream as the router's sink. */
function streamSink(h2: ServerHttp2Stream, refuse: (err: Error) => void): ResponseSink {
  return {
    get gone() {
      return h2.destroyed
    },
    onGone: (cb) => h2.once('close', cb),
    refuse,
    answer: (res: IncomingMessage) => {
      if (h2.destroyed) {
        res.destroy()
        return
      }
      const trailers = res.headers.trailer !== undefined
      h2.respond({ ':status': res.statusCode ?? 502, ...endToEnd(res.headers) }, { waitForTrailers: trailers })
      if (trailers) h2.once('wantTrailers', () => h2.sendTrailers(endToEnd(res.trailers)))
      // a cut answer is reset, never ended as if whole
      res.on('aborted', () => h2.close(constants.NGHTTP2_INTERNAL_ERROR))
      res.on('error', () => h2.close(constants.NGHTTP2_INTERNAL_ERROR))
      res.pipe(h2)
    },
    upgraded: (res: IncomingMessage, socket: Duplex, head: Buffer) => {
      const pass: Record<string, string | string[]> = {}
      for (const n of ['sec-websocket-protocol', 'sec-websocket-extensions']) if (res.headers[n] !== undefined) pass[n] = res.headers[n]
      h2.respond({ ':status': 200, ...pass })
      if (head.byteLength > 0) h2.write(head)
      socket.on('error', () => h2.close(constants.NGHTTP2_INTERNAL_ERROR))
      socket.pipe(h2)
      h2.pipe(socket)
    },
  }
}

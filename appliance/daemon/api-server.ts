// The daemon's local API: HTTP on 127.0.0.1 with a bearer token (spec/api.md). JSON in, JSON out; an
// error is `{ "error": { "name", "code", "message", "data"? } }` with a fitting HTTP status; a route may
// answer with an NDJSON stream instead.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { timingSafeEqual } from 'node:crypto'
import type { AddressInfo } from 'node:net'
import { chmodSync, rmSync } from 'node:fs'
import type { ApiRoute, HttpMethod, JsonValue } from './service.ts'
import { isNdjson } from './service.ts'
import { DuplicateServiceError, ForeignHostError, ForeignOriginError, InvalidRequestError, RequestTooLargeError, RouteNotFoundError, UnauthorizedError, httpStatusFor } from './errors.ts'
import { errorFields, silentLog, type Log } from '../../p2p/log.ts'
import { SchemaValidator } from '../../core/schema-check.ts'

export const MAX_REQUEST_BYTES = 4 * 1024 * 1024
/** A client must send its whole header block within this time, and its whole request within the next. */
export const HEADERS_TIMEOUT_MS = 10_000
export const REQUEST_TIMEOUT_MS = 30_000

export interface ApiServerOptions {
  token: string
  log?: Log
  /** Overrides HEADERS_TIMEOUT_MS (tests). */
  headersTimeoutMs?: number
  /** Overrides REQUEST_TIMEOUT_MS (tests). */
  requestTimeoutMs?: number
  /** Told of every answered request (metrics): method, the matched route's pattern ('unmatched' if none), status, ms. */
  onRequest?: (method: string, route: string, status: number, ms: number) => void
  /** Pages served on the loopback TCP listener beside the API, with their own sessions (the worker console). */
  pages?: PageGate
}

/** Pages on the API's loopback listener, behind the same Host/Origin checks (appliance/console/console-gate.ts). */
export interface PageGate {
  /** Paths it answers itself (no bearer token needed: it has its own login). */
  serves(pathname: string): boolean
  serve(req: IncomingMessage, res: ServerResponse, url: URL): void
  /** A request without the bearer token that a page session may make (a narrow list of routes). */
  allows(req: IncomingMessage, method: string, pathname: string): boolean
}

/** The scheme is case-insensitive (RFC 9110 section 11.1); one or more spaces before the token. */
const BEARER = /^bearer +(\S+)$/i

const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])

interface CompiledRoute {
  route: ApiRoute
  segments: string[]
  /** The route's body schema, compiled once. */
  body: SchemaValidator | undefined
}

/** A body its route's schema refuses: every issue, by path (InvalidRequestError). */
export function checkBody(v: SchemaValidator, body: unknown): void {
  const issues = v.validate(body === undefined ? null : body)
  if (issues.length > 0) throw new InvalidRequestError(`the request body is not valid: ${issues.map((i) => `${i.path}: ${i.reason}`).join('; ')}`, { issues })
}

function errorBody(err: unknown): { error: { name: string; code: string; message: string; data?: unknown } } {
  const e = err instanceof Error ? err : new Error(String(err))
  const code = (e as { code?: unknown }).code
  const data = (e as { data?: unknown }).data
  return {
    error: {
      name: e.name || 'Error',
      code: typeof code === 'string' ? code : 'ERR_INTERNAL',
      message: e.message,
      ...(data !== undefined ? { data } : {}),
    },
  }
}

export class ApiServer {
  readonly #routes = new Map<HttpMethod, CompiledRoute[]>()
  readonly #token: Buffer
  readonly #log: Log
  readonly #servers: Server[] = []
  #socketPath: string | undefined
  readonly #active = new Set<AbortController>()
  readonly #headersTimeoutMs: number
  readonly #requestTimeoutMs: number
  readonly #onRequest: ApiServerOptions['onRequest']
  readonly #pages: PageGate | undefined

  constructor(opts: ApiServerOptions) {
    this.#onRequest = opts.onRequest
    this.#pages = opts.pages
    this.#token = Buffer.from(opts.token, 'utf8')
    this.#log = opts.log ?? silentLog
    this.#headersTimeoutMs = opts.headersTimeoutMs ?? HEADERS_TIMEOUT_MS
    this.#requestTimeoutMs = opts.requestTimeoutMs ?? REQUEST_TIMEOUT_MS
  }

  add(route: ApiRoute): void {
    if (!route.path.startsWith('/')) throw new DuplicateServiceError(`route path '${route.path}' must start with /`)
    const list = this.#routes.get(route.method) ?? []
    const segments = route.path.split('/').slice(1)
    const clash = list.find((r) => r.route.path === route.path)
    if (clash) throw new DuplicateServiceError(`route ${route.method} ${route.path} is defined twice`)
    list.push({ route, segments, body: route.body ? new SchemaValidator(route.body) : undefined })
    this.#routes.set(route.method, list)
  }

  /** Every route, for `GET /v1` (discovery) and tests. */
  list(): Array<{ method: string; path: string }> {
    return [...this.#routes.entries()].flatMap(([m, rs]) => rs.map((r) => ({ method: m, path: r.route.path }))).sort((a, b) => a.path.localeCompare(b.path) || a.method.localeCompare(b.method))
  }

  /** Listens on 127.0.0.1:`port` (0: ephemeral); returns the base URL. */
  async listen(port = 0): Promise<string> {
    let bound = 0
    const server = await this.#serve((srv, cb) => srv.listen(port, '127.0.0.1', cb), () => bound)
    bound = (server.address() as AddressInfo).port
    return `http://127.0.0.1:${bound}`
  }

  /**
   * Also serves the API on a unix socket (mode 0600). A socket in the node home reaches the daemon from
   * any network namespace of the same machine (tests that run nodes in namespaces use it).
   */
  async listenSocket(path: string): Promise<void> {
    rmSync(path, { force: true })
    // No Host check here: a browser cannot reach a unix socket, and only the owner may open it (0600).
    await this.#serve((srv, cb) => srv.listen(path, cb), undefined)
    chmodSync(path, 0o600)
    this.#socketPath = path
  }

  /** `loopbackPort`: for a TCP listener, the port whose loopback names are the only Hosts accepted. */
  async #serve(listen: (srv: Server, cb: () => void) => void, loopbackPort: (() => number) | undefined): Promise<Server> {
    // Slow clients (a header trickle, a body that never ends) get 408 and their socket closed; the timers
    // are checked every second instead of Node's default 30 s, so a slow client cannot hold a socket long.
    const server = createServer({
      headersTimeout: this.#headersTimeoutMs,
      requestTimeout: this.#requestTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, this.#headersTimeoutMs),
      maxHeaderSize: 16 * 1024,
    }, (req, res) => void this.#handle(req, res, loopbackPort?.()))
    server.keepAliveTimeout = 5_000
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      listen(server, () => {
        server.off('error', reject)
        resolve()
      })
    })
    this.#servers.push(server)
    return server
  }

  async close(): Promise<void> {
    for (const c of this.#active) c.abort()
    const servers = this.#servers.splice(0)
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => {
      s.close(() => resolve())
      s.closeAllConnections()
    })))
    if (this.#socketPath) rmSync(this.#socketPath, { force: true })
  }

  #match(method: string, pathname: string): { route: ApiRoute; body: SchemaValidator | undefined; params: Record<string, string> } | undefined {
    const list = this.#routes.get(method as HttpMethod)
    if (!list) return undefined
    const parts = pathname.split('/').slice(1)
    for (const r of list) {
      if (r.segments.length !== parts.length) continue
      const params: Record<string, string> = {}
      let ok = true
      for (let i = 0; i < parts.length; i++) {
        const s = r.segments[i]!
        if (s.startsWith(':')) {
          try {
            params[s.slice(1)] = decodeURIComponent(parts[i]!)
          } catch {
            ok = false
            break
          }
        } else if (s !== parts[i]) {
          ok = false
          break
        }
      }
      if (ok) return { route: r.route, body: r.body, params }
    }
    return undefined
  }

  #authorized(req: IncomingMessage): boolean {
    const h = req.headers.authorization
    const m = typeof h === 'string' ? BEARER.exec(h) : null
    if (!m) return false
    const given = Buffer.from(m[1]!, 'utf8')
    return given.length === this.#token.length && timingSafeEqual(given, this.#token)
  }

  /**
   * Deny what a web page could send: a Host that is not this listener's loopback name (DNS rebinding) and
   * any Origin but the API's own (a cross-site request). The CLI sends neither a foreign Host nor an Origin.
   */
  #checkCaller(req: IncomingMessage, port: number | undefined): void {
    if (port === undefined) return
    const own = new Set([`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`])
    const host = (req.headers.host ?? '').toLowerCase()
    if (!own.has(host)) throw new ForeignHostError(`Host '${host.slice(0, 100)}' is not this API (only 127.0.0.1:${port}, localhost:${port} or [::1]:${port})`)
    const origin = req.headers.origin
    if (origin !== undefined && !own.has(origin.toLowerCase().replace(/^http:\/\//, '')) ) {
      throw new ForeignOriginError(`requests from web pages of another origin are refused (Origin '${String(origin).slice(0, 100)}')`)
    }
    if (origin !== undefined && !/^http:\/\//i.test(origin)) throw new ForeignOriginError(`Origin '${String(origin).slice(0, 100)}' is not this API`)
    const site = req.headers['sec-fetch-site']
    if (site === 'cross-site' || site === 'same-site') throw new ForeignOriginError(`requests from other sites are refused (Sec-Fetch-Site: ${site})`)
  }

  async #readBody(req: IncomingMessage): Promise<JsonValue | undefined> {
    const chunks: Buffer[] = []
    let n = 0
    for await (const c of req) {
      n += (c as Buffer).length
      if (n > MAX_REQUEST_BYTES) throw new RequestTooLargeError(`request body exceeds ${MAX_REQUEST_BYTES} bytes`)
      chunks.push(c as Buffer)
    }
    if (n === 0) return undefined
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8')) as JsonValue
    } catch (err) {
      throw new InvalidRequestError(`request body is not JSON: ${(err as Error).message}`)
    }
  }

  #send(res: ServerResponse, status: number, value: unknown): void {
    const body = JSON.stringify(value)
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' })
    res.end(body)
  }

  async #handle(req: IncomingMessage, res: ServerResponse, loopbackPort: number | undefined): Promise<void> {
    const controller = new AbortController()
    this.#active.add(controller)
    res.once('close', () => controller.abort())
    const url = new URL(req.url ?? '/', 'http://127.0.0.1')
    const onRequest = this.#onRequest
    let route = 'unmatched'
    if (onRequest) {
      const t0 = performance.now()
      // a label never takes a caller's free text: an unknown method is 'other'
      const method = KNOWN_METHODS.has(req.method ?? '') ? req.method! : 'other'
      res.once('close', () => onRequest(method, route, res.statusCode, performance.now() - t0))
    }
    try {
      this.#checkCaller(req, loopbackPort)
      // the pages live on the loopback TCP listener only (never the unix socket), after the Host/Origin checks
      const pages = loopbackPort !== undefined ? this.#pages : undefined
      if (pages?.serves(url.pathname)) {
        route = '/console'
        return pages.serve(req, res, url)
      }
      if (!this.#authorized(req) && !pages?.allows(req, req.method ?? 'GET', url.pathname)) throw new UnauthorizedError('missing or wrong bearer token (see api.json in the node home)')
      const m = this.#match(req.method ?? 'GET', url.pathname)
      if (!m) throw new RouteNotFoundError(`no route ${req.method} ${url.pathname} (GET /v1 lists them)`)
      route = m.route.path
      const body = await this.#readBody(req)
      if (m.body) checkBody(m.body, body)
      const out = await m.route.handler({ params: m.params, query: url.searchParams, body, signal: controller.signal })
      if (isNdjson(out)) {
        res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' })
        res.flushHeaders()
        try {
          for await (const item of out.ndjson) {
            if (controller.signal.aborted) break
            if (!res.write(JSON.stringify(item) + '\n')) await new Promise<void>((r) => { res.once('drain', r); res.once('close', r) })
          }
        } catch (err) {
          // the stream failed after the headers: the last line carries the error
          if (!res.writableEnded) res.write(JSON.stringify(errorBody(err)) + '\n')
        }
        res.end()
        return
      }
      this.#send(res, 200, out === undefined ? null : out)
    } catch (err) {
      const status = httpStatusFor(err)
      if (status >= 500) this.#log.warn('api request failed', { method: req.method, path: url.pathname, ...errorFields(err) })
      if (!res.headersSent) this.#send(res, status, errorBody(err))
      else res.end()
    } finally {
      this.#active.delete(controller)
    }
  }
}

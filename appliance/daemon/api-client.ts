// A client of a node daemon's local API (spec/api.md): finds it through $NOIR_HOME/api.json, sends the
// bearer token, turns error documents back into errors with the daemon's `name` and `code` (ApiCallError).
// Speaks HTTP over 127.0.0.1 or over the daemon's unix socket (`socket` option). Used by the CLI and the gateway.
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { readApiFile, type ApiFile } from './api-file.ts'
import { ApiCallError, NoDaemonError } from './errors.ts'

export { ApiCallError, NoDaemonError }

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

export interface ApiClientOptions {
  /** Base URL, e.g. http://127.0.0.1:41234 (host and port are ignored when `socket` is set). */
  url: string
  token: string
  /** Connect through this unix socket instead of TCP. */
  socket?: string
  info?: ApiFile
}

export class ApiClient {
  readonly url: string
  readonly socket: string | undefined
  readonly #token: string
  /** The api.json this client was made from (when made by `forHome`). */
  readonly info: ApiFile | undefined

  constructor(o: ApiClientOptions) {
    this.url = o.url.replace(/\/$/, '')
    this.#token = o.token
    this.socket = o.socket
    this.info = o.info
  }

  /** The client of the daemon running with `home`; NoDaemonError when none is running there. */
  static forHome(home: string, opts: { viaSocket?: boolean } = {}): ApiClient {
    const info = readApiFile(home)
    if (!info) throw new NoDaemonError(`no daemon is running for ${home} (no api.json there; start one with \`noir node start\`)`)
    return new ApiClient({ url: info.url, token: info.token, info, ...(opts.viaSocket ? { socket: info.socket } : {}) })
  }

  get<T = Json>(path: string, opts: { signal?: AbortSignal } = {}): Promise<T> {
    return this.request<T>('GET', path, undefined, opts)
  }

  post<T = Json>(path: string, body?: unknown, opts: { signal?: AbortSignal } = {}): Promise<T> {
    return this.request<T>('POST', path, body ?? {}, opts)
  }

  async request<T = Json>(method: string, path: string, body?: unknown, opts: { signal?: AbortSignal } = {}): Promise<T> {
    const res = await this.#open(method, path, body, opts.signal)
    const chunks: Buffer[] = []
    for await (const c of res) chunks.push(c as Buffer)
    const text = Buffer.concat(chunks).toString('utf8')
    let doc: unknown
    try {
      doc = text.length > 0 ? JSON.parse(text) : null
    } catch {
      throw new ApiCallError(res.statusCode ?? 0, 'ApiProtocolError', 'ERR_API_PROTOCOL', `the daemon answered ${res.statusCode} with a non-JSON body`)
    }
    const status = res.statusCode ?? 0
    if (status < 200 || status >= 300) throw toError(status, doc)
    return doc as T
  }

  /** Reads an NDJSON route line by line; ends when the daemon ends the stream or `signal` aborts. */
  async *stream<T = Json>(path: string, opts: { signal?: AbortSignal } = {}): AsyncGenerator<T> {
    let res: IncomingMessage
    try {
      res = await this.#open('GET', path, undefined, opts.signal)
    } catch (err) {
      if (opts.signal?.aborted) return
      throw err
    }
    const status = res.statusCode ?? 0
    if (status < 200 || status >= 300) {
      const chunks: Buffer[] = []
      for await (const c of res) chunks.push(c as Buffer)
      let doc: unknown = null
      try {
        doc = JSON.parse(Buffer.concat(chunks).toString('utf8'))
      } catch {
        // not JSON: a generic error below
      }
      throw toError(status, doc)
    }
    const decoder = new TextDecoder()
    let buf = ''
    try {
      for await (const chunk of res) {
        buf += decoder.decode(chunk as Buffer, { stream: true })
        let nl: number
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl)
          buf = buf.slice(nl + 1)
          if (line.trim().length === 0) continue
          const doc = JSON.parse(line) as unknown
          if (isErrorDoc(doc)) throw toError(500, doc)
          yield doc as T
        }
      }
    } catch (err) {
      if (opts.signal?.aborted) return
      throw err
    } finally {
      res.destroy()
    }
  }

  #open(method: string, path: string, body: unknown, signal: AbortSignal | undefined, retried = false): Promise<IncomingMessage> {
    const u = new URL(this.url + path)
    const payload = body !== undefined ? Buffer.from(JSON.stringify(body), 'utf8') : undefined
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = httpRequest(
        {
          method,
          path: u.pathname + u.search,
          ...(this.socket ? { socketPath: this.socket } : { host: u.hostname, port: u.port }),
          headers: {
            authorization: `Bearer ${this.#token}`,
            ...(payload ? { 'content-type': 'application/json', 'content-length': payload.byteLength } : {}),
          },
          ...(signal ? { signal } : {}),
        },
        resolve,
      )
      req.once('error', (err: NodeJS.ErrnoException) => {
        if (signal?.aborted) return reject(err)
        // a kept-alive socket the daemon closed while it sat in the pool: the request never reached the
        // daemon, so it is sent once more on a fresh socket (Node's documented pattern, `req.reusedSocket`)
        if (!retried && req.reusedSocket && err.code === 'ECONNRESET') return resolve(this.#open(method, path, body, signal, true))
        reject(new NoDaemonError(`the daemon at ${this.socket ?? this.url} does not answer (${err.code ?? err.message})`))
      })
      req.end(payload)
    })
  }
}

function isErrorDoc(doc: unknown): doc is { error: { name?: unknown; code?: unknown; message?: unknown; data?: unknown } } {
  return typeof doc === 'object' && doc !== null && 'error' in doc && typeof (doc as { error: unknown }).error === 'object'
}

function toError(status: number, doc: unknown): ApiCallError {
  if (isErrorDoc(doc)) {
    const e = doc.error
    return new ApiCallError(status, typeof e.name === 'string' ? e.name : 'ApiError', typeof e.code === 'string' ? e.code : 'ERR_API', typeof e.message === 'string' ? e.message : `HTTP ${status}`, e.data)
  }
  return new ApiCallError(status, 'ApiError', 'ERR_API', `HTTP ${status}`)
}

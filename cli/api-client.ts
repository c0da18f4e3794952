// A client of a node daemon's local API (spec/api.md): finds it through $NOIR_HOME/api.json, sends the
// bearer token, turns error documents back into errors with the daemon's `name` and `code` (ApiCallError).
import { readApiFile, type ApiFile } from '../appliance/daemon/api-file.ts'
import { ApiCallError, NoDaemonError } from '../appliance/daemon/errors.ts'

export { ApiCallError, NoDaemonError }

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json }

export class ApiClient {
  readonly url: string
  private readonly token: string
  /** The api.json this client was made from (when made by `forHome`). */
  readonly info: ApiFile | undefined

  constructor(o: { url: string; token: string; info?: ApiFile }) {
    this.url = o.url.replace(/\/$/, '')
    this.token = o.token
    this.info = o.info
  }

  /** The client of the daemon running with `home`; NoDaemonError when none is running there. */
  static forHome(home: string): ApiClient {
    const info = readApiFile(home)
    if (!info) throw new NoDaemonError(`no daemon is running for ${home} (no api.json there; start one with \`noir node start\`)`)
    return new ApiClient({ url: info.url, token: info.token, info })
  }

  get<T = Json>(path: string, opts: { signal?: AbortSignal } = {}): Promise<T> {
    return this.request<T>('GET', path, undefined, opts)
  }

  post<T = Json>(path: string, body?: unknown, opts: { signal?: AbortSignal } = {}): Promise<T> {
    return this.request<T>('POST', path, body ?? {}, opts)
  }

  async request<T = Json>(method: string, path: string, body?: unknown, opts: { signal?: AbortSignal } = {}): Promise<T> {
    const res = await this.fetch(method, path, body, opts.signal)
    const text = await res.text()
    let doc: unknown
    try {
      doc = text.length > 0 ? JSON.parse(text) : null
    } catch {
      throw new ApiCallError(res.status, 'ApiProtocolError', 'ERR_API_PROTOCOL', `the daemon answered ${res.status} with a non-JSON body`)
    }
    if (!res.ok) throw toError(res.status, doc)
    return doc as T
  }

  /** Reads an NDJSON route line by line; ends when the daemon ends the stream or `signal` aborts. */
  async *stream<T = Json>(path: string, opts: { signal?: AbortSignal } = {}): AsyncGenerator<T> {
    const res = await this.fetch('GET', path, undefined, opts.signal)
    if (!res.ok) throw toError(res.status, await res.json().catch(() => null))
    if (!res.body) return
    const decoder = new TextDecoder()
    let buf = ''
    try {
      for await (const chunk of res.body) {
        buf += decoder.decode(chunk as Uint8Array, { stream: true })
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
    }
  }

  private async fetch(method: string, path: string, body: unknown, signal: AbortSignal | undefined): Promise<Response> {
    try {
      return await fetch(this.url + path, {
        method,
        headers: { authorization: `Bearer ${this.token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(signal ? { signal } : {}),
      })
    } catch (err) {
      if (signal?.aborted) throw err
      const cause = (err as { cause?: { code?: string } }).cause
      throw new NoDaemonError(`the daemon at ${this.url} does not answer (${cause?.code ?? (err as Error).message})`)
    }
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

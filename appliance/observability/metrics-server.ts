// The scrape endpoint: `GET /metrics` only, on the address config.json `metrics.listen` names (loopback unless
// `exposed`). Nothing else is served on it: every other path is 404, every other method 405. It carries
// counts and latencies, never keys, payloads or paths on disk (spec/security.md).
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { NodeMetrics } from './node-metrics.ts'
import type { MetricsConfig } from './config.ts'
import type { Log } from '../../p2p/log.ts'
import { MetricsListenError } from './errors.ts'

export class MetricsServer {
  readonly #server: Server
  readonly #metrics: NodeMetrics
  #url = ''

  constructor(metrics: NodeMetrics, log: Log) {
    this.#metrics = metrics
    this.#server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]
      if (path !== '/metrics') {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('only /metrics is served here\n')
        return
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' }).end('GET /metrics\n')
        return
      }
      this.#metrics.scrape().then((text) => {
        res.writeHead(200, { 'content-type': this.#metrics.contentType, 'cache-control': 'no-store' })
        res.end(req.method === 'HEAD' ? undefined : text)
      }, (err: Error) => {
        log.warn('metrics scrape failed', { error: err.name, message: err.message })
        res.writeHead(500, { 'content-type': 'text/plain' }).end('scrape failed\n')
      })
    })
    this.#server.headersTimeout = 10_000
    this.#server.requestTimeout = 30_000
  }

  /** Listens; resolves with the scrape URL. Rejects with MetricsListenError (address in use, not on this host). */
  listen(cfg: MetricsConfig): Promise<string> {
    return new Promise((resolve, reject) => {
      const failed = (err: NodeJS.ErrnoException): void => {
        const host = cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host
        reject(new MetricsListenError(`metrics endpoint cannot listen on ${host}:${cfg.port}: ${err.code ?? err.message}`))
      }
      this.#server.once('error', failed)
      this.#server.listen(cfg.port, cfg.host, () => {
        this.#server.off('error', failed)
        const a = this.#server.address() as AddressInfo
        this.#url = `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}/metrics`
        resolve(this.#url)
      })
    })
  }

  get url(): string {
    return this.#url
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      this.#server.closeAllConnections()
      this.#server.close(() => resolve())
      if (!this.#server.listening) resolve()
    })
  }
}

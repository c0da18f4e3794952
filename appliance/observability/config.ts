// config.json `metrics` and `tracing` sections (spec/observability.md, "Config"), checked strictly: an unknown
// field or a bad value stops the daemon with a ConfigError naming it. Both are off unless configured; the
// metrics endpoint listens on loopback unless its owner says `exposed: true`.
import { isIP } from 'node:net'
import { ConfigError } from '../daemon/errors.ts'
import { DEFAULT_LOG_RETENTION, type LogRetention } from '../daemon/log.ts'

export interface MetricsConfig {
  /** Where the scrape endpoint listens (`GET /metrics`); port 0: an ephemeral port. */
  readonly host: string
  readonly port: number
}

export interface TracingConfig {
  /** OTLP/HTTP (JSON) traces endpoint, e.g. `http://127.0.0.1:4318/v1/traces`. */
  readonly otlp: string
  /** Share of new traces kept, 0..1 (a trace started elsewhere follows its parent's decision). Default 1. */
  readonly sampleRatio: number
  /** Spans batched before export; default 512 (a full batch is sent at once). */
  readonly batchSize: number
  /** How often a partial batch is sent, ms. Default 1000. */
  readonly flushMs: number
}

export interface ObservabilityConfig {
  readonly metrics: MetricsConfig | undefined
  readonly tracing: TracingConfig | undefined
  /** How much of the node's log file is kept (when `log` names a file). */
  readonly logs: LogRetention
}

function isLoopback(host: string): boolean {
  return host === '::1' || (isIP(host) === 4 && host.startsWith('127.'))
}

function section(v: unknown, name: string, fields: readonly string[]): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new ConfigError(`config.json: '${name}' must be an object`)
  for (const k of Object.keys(v)) if (!fields.includes(k)) throw new ConfigError(`config.json: '${name}.${k}' is not a known field (known: ${fields.join(', ')})`)
  return v as Record<string, unknown>
}

/** `"127.0.0.1:9464"` or `"[::1]:9464"` into host and port; an IP literal only (no name to resolve). */
export function parseListen(v: unknown, field: string): { host: string; port: number } {
  const m = typeof v === 'string' ? /^(?:\[([0-9a-fA-F:.]+)\]|(\d{1,3}(?:\.\d{1,3}){3})):(\d{1,5})$/.exec(v) : null
  if (!m) throw new ConfigError(`config.json: '${field}' must be "IP:PORT" (e.g. "127.0.0.1:9464", "[::1]:9464")`)
  const host = (m[1] ?? m[2])!
  const port = Number(m[3])
  if (isIP(host) === 0) throw new ConfigError(`config.json: '${field}': ${host} is not an IP address`)
  if (port > 65535) throw new ConfigError(`config.json: '${field}': ${port} is not a port number`)
  return { host, port }
}

export function metricsConfig(v: unknown): MetricsConfig | undefined {
  if (v === undefined || v === null) return undefined
  const r = section(v, 'metrics', ['listen', 'exposed'])
  const listen = parseListen(r.listen, 'metrics.listen')
  if ('exposed' in r && typeof r.exposed !== 'boolean') throw new ConfigError("config.json: 'metrics.exposed' must be true or false")
  if (!isLoopback(listen.host) && r.exposed !== true) {
    throw new ConfigError(`config.json: 'metrics.listen' ${listen.host} is not a loopback address: set 'metrics.exposed': true to serve metrics beyond this machine`)
  }
  return listen
}

export function tracingConfig(v: unknown): TracingConfig | undefined {
  if (v === undefined || v === null) return undefined
  const r = section(v, 'tracing', ['otlp', 'sampleRatio', 'batchSize', 'flushMs'])
  let url: URL
  try {
    url = new URL(String(r.otlp))
  } catch {
    throw new ConfigError("config.json: 'tracing.otlp' must be an http(s) URL (e.g. \"http://127.0.0.1:4318/v1/traces\")")
  }
  if (typeof r.otlp !== 'string' || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new ConfigError("config.json: 'tracing.otlp' must be an http(s) URL")
  if (url.username !== '' || url.password !== '') throw new ConfigError("config.json: 'tracing.otlp' must not carry credentials in the URL")
  const ratio = r.sampleRatio ?? 1
  if (typeof ratio !== 'number' || !(ratio >= 0 && ratio <= 1)) throw new ConfigError("config.json: 'tracing.sampleRatio' must be a number from 0 to 1")
  const batchSize = r.batchSize ?? 512
  if (!Number.isInteger(batchSize) || (batchSize as number) < 1 || (batchSize as number) > 10_000) throw new ConfigError("config.json: 'tracing.batchSize' must be an integer from 1 to 10000")
  const flushMs = r.flushMs ?? 1000
  if (!Number.isInteger(flushMs) || (flushMs as number) < 10 || (flushMs as number) > 60_000) throw new ConfigError("config.json: 'tracing.flushMs' must be an integer from 10 to 60000 (ms)")
  return { otlp: url.toString(), sampleRatio: ratio, batchSize: batchSize as number, flushMs: flushMs as number }
}

/** config.json `logs`: `{ maxBytes?: 65536.., files?: 0..20 }` (defaults 64 MiB, 3). */
export function logsConfig(v: unknown): LogRetention {
  if (v === undefined || v === null) return DEFAULT_LOG_RETENTION
  const r = section(v, 'logs', ['maxBytes', 'files'])
  const maxBytes = r.maxBytes ?? DEFAULT_LOG_RETENTION.maxBytes
  if (!Number.isSafeInteger(maxBytes) || (maxBytes as number) < 65_536) throw new ConfigError("config.json: 'logs.maxBytes' must be an integer of at least 65536 (bytes)")
  const files = r.files ?? DEFAULT_LOG_RETENTION.files
  if (!Number.isInteger(files) || (files as number) < 0 || (files as number) > 20) throw new ConfigError("config.json: 'logs.files' must be an integer from 0 to 20")
  return { maxBytes: maxBytes as number, files: files as number }
}

export function observabilityConfig(cfg: { metrics?: unknown; tracing?: unknown; logs?: unknown }): ObservabilityConfig {
  return { metrics: metricsConfig(cfg.metrics), tracing: tracingConfig(cfg.tracing), logs: logsConfig(cfg.logs) }
}

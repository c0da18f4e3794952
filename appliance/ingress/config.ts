// The `ingress` section of config.json (spec/ingress.md "Configuration"). Absent: the node opens no ingress
// (it still forwards for the replicas it runs and answers for the deployments it orchestrates). Present: every
// field is checked, unknown ones refused, and a bad section stops the daemon with a ConfigError naming it.
//
//   "ingress": {
//     "listen": "127.0.0.1:8080",              HTTP (Host-routed) listener
//     "domain": "localhost",                    a route NAME is served as Host NAME.<domain> (and NAME alone)
//     "routes": [{ "name": "web", "deployment": "ID", "port": 8080, "orchestrators": ["did:key:..."] }],
//     "tcp": [{ "listen": "127.0.0.1:9000", "route": "web" }],  raw TCP listeners, one route each
//     "rateLimit": { "perClient": { "perSecond": 20, "burst": 40 }, "perRoute": { "perSecond": 500, "burst": 1000 } },
//     "tls": { "cert": "/path/cert.pem", "key": "/path/key.pem" }   or { "selfSigned": true }: the HTTP listener speaks HTTPS
//     "http2": true                             HTTP/2 beside HTTP/1.1 (ALPN h2 with TLS, h2c prior knowledge without)
//     "upstreamIdleMs": 30000                   a kept stream to a replica unused this long is closed (100..3600000)
//     "balance": "connection"                   HTTP/1.1: each connection to one replica, or "request": each request on its own
//   }
import { ConfigError } from '../daemon/errors.ts'
import { isIP } from 'node:net'
import type { BucketSpec, RateLimitSpec } from './rate-limit.ts'

export interface RouteSpec {
  /** DNS-label name: the Host an HTTP client uses (`NAME.<domain>`), and what `noir endpoints` lists. */
  name: string
  deploymentId: string
  port: number
  /** Who to ask for the replica set, in order (the deployment's orchestrator, then its standby). Empty: this node. */
  orchestrators: string[]
}

export interface ListenAddress {
  host: string
  port: number
}

export interface IngressConfig {
  listen: ListenAddress
  domain: string
  routes: RouteSpec[]
  tcp: { listen: ListenAddress; route: string }[]
  /** New connections per client address and per route (absent: no limit). */
  rateLimit?: RateLimitSpec
  /** The HTTP listener terminates TLS: with these files, or a self-signed certificate kept in the node's home. */
  tls?: IngressTls
  /** HTTP/2 on the HTTP listener (ALPN h2 with TLS, the h2c preface without); default true. */
  http2?: boolean
  /** A kept-alive stream to a replica (per-request routing) unused this long is closed; default 30 s. */
  upstreamIdleMs?: number
  /**
   * How plain HTTP/1.1 connections are balanced: `connection` (absent; the connection spliced to one replica) or
   * `request` (each request of a keep-alive connection routed on its own, as HTTP/2 and ports with access are).
   */
  balance?: 'request'
}

/** How long an unused kept stream to a replica stays open when the config does not say. */
export const DEFAULT_UPSTREAM_IDLE_MS = 30_000

export type IngressTls = { cert: string; key: string } | { selfSigned: true }

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
const DID = /^did:key:z[1-9A-HJ-NP-Za-km-z]{20,80}$/
const DOMAIN = /^[a-z0-9]([a-z0-9.-]{0,200}[a-z0-9])?$/

const bad = (field: string, why: string): ConfigError => new ConfigError(`config.json: 'ingress.${field}' ${why}`)

function only(o: Record<string, unknown>, allowed: string[], at: string): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) throw bad(`${at}${at ? '.' : ''}${k}`, `is not a known field (known: ${allowed.join(', ')})`)
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)

export function parseListen(v: unknown, field: string): ListenAddress {
  if (typeof v !== 'string') throw bad(field, 'must be "HOST:PORT" (e.g. "127.0.0.1:8080")')
  const i = v.lastIndexOf(':')
  const host = v.slice(0, i).replace(/^\[(.*)\]$/, '$1')
  const port = Number(v.slice(i + 1))
  if (i < 1 || !isIP(host)) throw bad(field, `must be "HOST:PORT" with an IP address as HOST (got ${JSON.stringify(v)})`)
  if (!Number.isInteger(port) || port < 0 || port > 65535 || v.slice(i + 1) === '') throw bad(field, `has no valid port (got ${JSON.stringify(v)})`)
  return { host, port }
}

export function parseRoute(r: unknown, at: string): RouteSpec {
  if (!isObject(r)) throw bad(at, 'must be an object { name, deployment, port, orchestrators? }')
  only(r, ['name', 'deployment', 'port', 'orchestrators'], at)
  if (typeof r.name !== 'string' || !NAME.test(r.name)) throw bad(`${at}.name`, 'must be a DNS label (a-z, 0-9, -; at most 63)')
  if (typeof r.deployment !== 'string' || !/^[A-Za-z0-9._~:@+-]{1,160}$/.test(r.deployment)) throw bad(`${at}.deployment`, 'must be a deployment id')
  if (!Number.isInteger(r.port) || (r.port as number) < 1 || (r.port as number) > 65535) throw bad(`${at}.port`, 'must be a port number (1-65535) the workload declares')
  const orchestrators = r.orchestrators ?? []
  if (!Array.isArray(orchestrators) || !orchestrators.every((d) => typeof d === 'string' && DID.test(d)) || orchestrators.length > 8) throw bad(`${at}.orchestrators`, 'must be a list of at most 8 did:key DIDs')
  return { name: r.name, deploymentId: r.deployment, port: r.port as number, orchestrators: orchestrators as string[] }
}

/** The ingress section, or undefined when the node opens no ingress. Throws ConfigError. */
export function parseIngressConfig(v: unknown): IngressConfig | undefined {
  if (v === undefined || v === null) return undefined
  if (!isObject(v)) throw new ConfigError("config.json: 'ingress' must be an object { listen, domain?, routes?, tcp? }")
  only(v, ['listen', 'domain', 'routes', 'tcp', 'rateLimit', 'tls', 'http2', 'upstreamIdleMs', 'balance'], '')
  if (v.balance !== undefined && v.balance !== 'request' && v.balance !== 'connection') throw bad('balance', 'must be "connection" (default) or "request"')
  if (v.http2 !== undefined && typeof v.http2 !== 'boolean') throw bad('http2', 'must be true or false (default true)')
  const idle = v.upstreamIdleMs
  if (idle !== undefined && !(Number.isSafeInteger(idle) && (idle as number) >= 100 && (idle as number) <= 3_600_000)) throw bad('upstreamIdleMs', 'must be whole milliseconds from 100 to 3600000 (default 30000)')
  const listen = parseListen(v.listen, 'listen')
  const domain = v.domain ?? 'localhost'
  if (typeof domain !== 'string' || !DOMAIN.test(domain)) throw bad('domain', 'must be a DNS name (e.g. "localhost" or "apps.example.org")')
  if (v.routes !== undefined && (!Array.isArray(v.routes) || v.routes.length > 1000)) throw bad('routes', 'must be a list of at most 1000 routes')
  const routes = ((v.routes ?? []) as unknown[]).map((r, i) => parseRoute(r, `routes[${i}]`))
  const names = new Set<string>()
  for (const [i, r] of routes.entries()) {
    if (names.has(r.name)) throw bad(`routes[${i}].name`, `'${r.name}' is used twice`)
    names.add(r.name)
  }
  if (v.tcp !== undefined && (!Array.isArray(v.tcp) || v.tcp.length > 64)) throw bad('tcp', 'must be a list of at most 64 listeners')
  const tcp = ((v.tcp ?? []) as unknown[]).map((t, i) => {
    if (!isObject(t)) throw bad(`tcp[${i}]`, 'must be an object { listen, route }')
    only(t, ['listen', 'route'], `tcp[${i}]`)
    if (typeof t.route !== 'string' || !names.has(t.route)) throw bad(`tcp[${i}].route`, 'must name one of ingress.routes')
    return { listen: parseListen(t.listen, `tcp[${i}].listen`), route: t.route }
  })
  const rateLimit = parseRateLimit(v.rateLimit)
  const tls = parseTls(v.tls)
  return { listen, domain, routes, tcp, ...(rateLimit ? { rateLimit } : {}), ...(tls ? { tls } : {}), ...(v.http2 === false ? { http2: false } : {}), ...(idle !== undefined ? { upstreamIdleMs: idle as number } : {}), ...(v.balance === 'request' ? { balance: 'request' as const } : {}) }
}

function parseTls(v: unknown): IngressTls | undefined {
  if (v === undefined) return undefined
  if (!isObject(v)) throw bad('tls', 'must be an object { cert, key } or { selfSigned: true }')
  if ('selfSigned' in v) {
    only(v, ['selfSigned'], 'tls')
    if (v.selfSigned !== true) throw bad('tls.selfSigned', 'must be true (omit \'tls\' for plain HTTP)')
    return { selfSigned: true }
  }
  only(v, ['cert', 'key'], 'tls')
  for (const f of ['cert', 'key'] as const) {
    if (typeof v[f] !== 'string' || v[f].length === 0 || v[f].length > 4096) throw bad(`tls.${f}`, 'must be the path of a PEM file')
  }
  return { cert: v.cert as string, key: v.key as string }
}

function parseBucket(v: unknown, at: string): BucketSpec {
  if (!isObject(v)) throw bad(at, 'must be an object { perSecond, burst }')
  only(v, ['perSecond', 'burst'], at)
  const { perSecond, burst } = v
  if (typeof perSecond !== 'number' || !Number.isFinite(perSecond) || perSecond <= 0 || perSecond > 1_000_000) throw bad(`${at}.perSecond`, 'must be a number of new connections per second (> 0, <= 1000000)')
  if (!Number.isInteger(burst) || (burst as number) < 1 || (burst as number) > 1_000_000) throw bad(`${at}.burst`, 'must be an integer (1-1000000): the connections let through at once')
  return { perSecond, burst: burst as number }
}

function parseRateLimit(v: unknown): RateLimitSpec | undefined {
  if (v === undefined) return undefined
  if (!isObject(v)) throw bad('rateLimit', 'must be an object { perClient?, perRoute? }')
  only(v, ['perClient', 'perRoute'], 'rateLimit')
  return {
    ...(v.perClient !== undefined ? { perClient: parseBucket(v.perClient, 'rateLimit.perClient') } : {}),
    ...(v.perRoute !== undefined ? { perRoute: parseBucket(v.perRoute, 'rateLimit.perRoute') } : {}),
  }
}

/** The route name a Host header asks for (`NAME.<domain>[:port]` or `NAME[:port]`), or undefined. */
export function routeNameOfHost(host: string, domain: string): string | undefined {
  const h = host.trim().toLowerCase().replace(/:\d+$/, '')
  const name = h.endsWith(`.${domain}`) ? h.slice(0, -(domain.length + 1)) : h
  return NAME.test(name) ? name : undefined
}

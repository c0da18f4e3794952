// Rate limits at the ingress (spec/ingress.md "Rate limits"): a token bucket per client address on each route
// and one per route, each new connection taking one token from both. A connection refused by either gets a
// RateLimitedError (HTTP: 429 with Retry-After; raw TCP: closed). Client buckets are kept for at most
// MAX_CLIENTS addresses per route (the least recently used is dropped: a dropped client starts again full,
// never emptier than it was).

export interface BucketSpec {
  /** Tokens added per second. */
  perSecond: number
  /** The most tokens a bucket holds (the burst it lets through at once). */
  burst: number
}

export interface RateLimitSpec {
  perClient?: BucketSpec
  perRoute?: BucketSpec
}

const MAX_CLIENTS = 10_000

export class TokenBucket {
  #tokens: number
  #at: number
  readonly #spec: BucketSpec

  constructor(spec: BucketSpec, now: number) {
    this.#spec = spec
    this.#tokens = spec.burst
    this.#at = now
  }

  #refill(now: number): void {
    if (now > this.#at) this.#tokens = Math.min(this.#spec.burst, this.#tokens + ((now - this.#at) / 1000) * this.#spec.perSecond)
    this.#at = Math.max(this.#at, now)
  }

  /** Ms until one token is there (0: one is there now). */
  waitMs(now: number): number {
    this.#refill(now)
    return this.#tokens >= 1 ? 0 : Math.ceil(((1 - this.#tokens) / this.#spec.perSecond) * 1000)
  }

  take(now: number): void {
    this.#refill(now)
    this.#tokens -= 1
  }
}

export type RateDecision = { ok: true } | { ok: false; scope: 'client' | 'route'; retryAfterMs: number }

export class RateLimiter {
  readonly #spec: RateLimitSpec
  readonly #now: () => number
  readonly #routes = new Map<string, TokenBucket>()
  readonly #clients = new Map<string, Map<string, TokenBucket>>()

  constructor(spec: RateLimitSpec, now: () => number = Date.now) {
    this.#spec = spec
    this.#now = now
  }

  /** Takes a token for a new connection from `client` to `route`, or says how long to wait; takes none when refused. */
  admit(route: string, client: string): RateDecision {
    const d = this.peek(route, client)
    if (d.ok) this.take(route, client)
    return d
  }

  /** Whether a new connection from `client` to `route` would be let through now (takes nothing). */
  peek(route: string, client: string): RateDecision {
    const now = this.#now()
    const { c, r } = this.#buckets(route, client, now)
    const cw = c?.waitMs(now) ?? 0
    if (cw > 0) return { ok: false, scope: 'client', retryAfterMs: cw }
    const rw = r?.waitMs(now) ?? 0
    if (rw > 0) return { ok: false, scope: 'route', retryAfterMs: rw }
    return { ok: true }
  }

  /** Takes the connection's token from both buckets (after `peek` said yes, here and at every other limiter asked). */
  take(route: string, client: string): void {
    const now = this.#now()
    const { c, r } = this.#buckets(route, client, now)
    c?.take(now)
    r?.take(now)
  }

  #buckets(route: string, client: string, now: number): { c: TokenBucket | undefined; r: TokenBucket | undefined } {
    const r = this.#spec.perRoute ? this.#bucket(this.#routes, route, this.#spec.perRoute, now) : undefined
    const clients = this.#clients.get(route) ?? new Map<string, TokenBucket>()
    this.#clients.set(route, clients)
    const c = this.#spec.perClient ? this.#clientBucket(clients, client, this.#spec.perClient, now) : undefined
    return { c, r }
  }

  #bucket(m: Map<string, TokenBucket>, key: string, spec: BucketSpec, now: number): TokenBucket {
    let b = m.get(key)
    if (!b) m.set(key, (b = new TokenBucket(spec, now)))
    return b
  }

  #clientBucket(m: Map<string, TokenBucket>, key: string, spec: BucketSpec, now: number): TokenBucket {
    const b = m.get(key)
    if (b) {
      m.delete(key) // re-inserted last: the map's order is least recently used first
      m.set(key, b)
      return b
    }
    if (m.size >= MAX_CLIENTS) m.delete(m.keys().next().value!)
    return this.#bucket(m, key, spec, now)
  }
}

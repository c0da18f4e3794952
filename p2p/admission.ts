// Admission for what strangers send (spec/pubsub.md "Admission"): token buckets whose table is bounded by
// least-recently-used eviction (never cleared wholesale, which would hand every sender a fresh burst), and
// a tally of refusals logged as counts per reason per interval instead of one line per message.
import type { Log } from './log.ts'

export interface Rate {
  perSecond: number
  burst: number
}

/** Token buckets by key, at most `max` of them: the least recently used goes first. */
export class BucketTable {
  readonly #rate: Rate
  readonly #max: number
  readonly #buckets = new Map<string, { tokens: number; last: number }>()
  /** Buckets evicted to stay within `max`. */
  evicted = 0

  constructor(rate: Rate, max: number) {
    this.#rate = rate
    this.#max = max
  }

  get size(): number {
    return this.#buckets.size
  }

  /** Takes one token for `key`; false when its bucket is empty. */
  take(key: string, now: number): boolean {
    let b = this.#buckets.get(key)
    if (b) {
      this.#buckets.delete(key) // re-inserted below: the Map's order is the recency order
      b.tokens = Math.min(this.#rate.burst, b.tokens + ((now - b.last) / 1000) * this.#rate.perSecond)
      b.last = now
    } else {
      b = { tokens: this.#rate.burst, last: now }
      if (this.#buckets.size >= this.#max) {
        this.#buckets.delete(this.#buckets.keys().next().value!)
        this.evicted++
      }
    }
    this.#buckets.set(key, b)
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }
}

/** Counts refusals by reason and logs them once per interval (and on flush), never one line each. */
export class RejectionTally {
  readonly #log: Log
  readonly #what: string
  readonly #intervalMs: number
  #counts: Record<string, number> = {}
  #pending = 0
  #since: number
  /** Every refusal since start, by reason (for status and tests). */
  readonly total: Record<string, number> = {}

  constructor(log: Log, what: string, intervalMs = 10_000, now = Date.now()) {
    this.#log = log
    this.#what = what
    this.#intervalMs = intervalMs
    this.#since = now
  }

  add(reason: string, now: number): void {
    this.#counts[reason] = (this.#counts[reason] ?? 0) + 1
    this.total[reason] = (this.total[reason] ?? 0) + 1
    this.#pending++
    if (now - this.#since >= this.#intervalMs) this.flush(now)
  }

  flush(now: number): void {
    if (this.#pending > 0) this.#log.warn(this.#what, { ...this.#counts, intervalMs: now - this.#since })
    this.#counts = {}
    this.#pending = 0
    this.#since = now
  }
}

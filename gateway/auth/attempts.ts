// Counts failed attempts per key (an account's email, a client address) in a sliding window and refuses
// more than `max` (ASVS V6.3: anti-automation). In memory: a gateway restart forgets (the PostgreSQL store of
// several gateways will share it: not built yet). Hand-written: a map of timestamps per key is all it needs.
import { RateLimitedError } from '../errors.ts'

export class Attempts {
  readonly #max: number
  readonly #windowMs: number
  readonly #seen = new Map<string, number[]>()

  constructor(max: number, windowMs: number) {
    this.#max = max
    this.#windowMs = windowMs
  }

  #recent(key: string, now: number): number[] {
    const l = (this.#seen.get(key) ?? []).filter((t) => now - t < this.#windowMs)
    if (l.length === 0) this.#seen.delete(key)
    else this.#seen.set(key, l)
    return l
  }

  /** Throws RateLimitedError when `key` failed `max` times within the window. */
  check(key: string, now: number): void {
    const l = this.#recent(key, now)
    if (l.length >= this.#max) throw new RateLimitedError('too many attempts; try again later', { retryAfterSeconds: Math.ceil((l[0]! + this.#windowMs - now) / 1000) })
  }

  fail(key: string, now: number): void {
    this.#seen.set(key, [...this.#recent(key, now), now])
  }

  clear(key: string): void {
    this.#seen.delete(key)
  }
}

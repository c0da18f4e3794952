// Counts failed attempts per subject (an account's email, an account id) in a sliding window and refuses
// more than `max` (ASVS V6.3: anti-automation). Kept in the gateway's database, so every gateway on one
// PostgreSQL counts the same attempts (an attacker gains nothing by spreading guesses over gateways) and a
// restart forgets nothing.
import { RateLimitedError } from '../errors.ts'
import type { GatewayStore } from '../store/gateway-store.ts'

export class Attempts {
  readonly #store: GatewayStore
  readonly #kind: string
  readonly #max: number
  readonly #windowMs: number

  /** `kind`: what is counted ('login', 'code', 'mail'), so one subject's kinds are limited apart. */
  constructor(store: GatewayStore, kind: string, max: number, windowMs: number) {
    this.#store = store
    this.#kind = kind
    this.#max = max
    this.#windowMs = windowMs
  }

  /** Throws RateLimitedError when `subject` failed `max` times within the window. */
  async check(subject: string, now: number): Promise<void> {
    const { count, first } = await this.#store.attemptsSince(this.#kind, subject, now - this.#windowMs)
    if (count >= this.#max) throw new RateLimitedError('too many attempts; try again later', { retryAfterSeconds: Math.max(1, Math.ceil(((first ?? now) + this.#windowMs - now) / 1000)) })
  }

  async fail(subject: string, now: number): Promise<void> {
    await this.#store.addAttempt(this.#kind, subject, now, now - this.#windowMs)
  }

  async clear(subject: string): Promise<void> {
    await this.#store.clearAttempts(this.#kind, subject)
  }
}

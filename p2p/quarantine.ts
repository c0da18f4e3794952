// Peers that broke the protocol on an authenticated session (a bad envelope signature) are refused for a
// while: the host's connection gater asks `denies(peer)` for every inbound connection (after Noise told us who
// it is) and every dial. Entries expire on their own; the list is bounded.
import type { PeerId } from '@libp2p/interface'

export const DEFAULT_QUARANTINE_MS = 60_000
const MAX_ENTRIES = 10_000

export class PeerQuarantine {
  readonly #until = new Map<string, number>()
  readonly #now: () => number

  constructor(now: () => number = Date.now) {
    this.#now = now
  }

  /** Refuses `peer` for `ms` from now (0: not at all). */
  add(peer: PeerId, ms: number): void {
    if (ms <= 0) return
    if (this.#until.size >= MAX_ENTRIES) this.#prune()
    if (this.#until.size >= MAX_ENTRIES) this.#until.delete(this.#until.keys().next().value as string)
    this.#until.set(peer.toString(), this.#now() + ms)
  }

  denies(peer: PeerId): boolean {
    const key = peer.toString()
    const until = this.#until.get(key)
    if (until === undefined) return false
    if (until > this.#now()) return true
    this.#until.delete(key)
    return false
  }

  get size(): number {
    this.#prune()
    return this.#until.size
  }

  #prune(): void {
    const now = this.#now()
    for (const [k, until] of this.#until) if (until <= now) this.#until.delete(k)
  }
}

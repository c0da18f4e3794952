// Peers that broke the protocol on an authenticated session (a signature or seal that did not verify, a batch
// never sealed): nothing more of theirs is acted on here for a while, what of theirs still waits is dropped,
// and the transport hangs up on them (spec/actors.md, "Signature checks").
import type { Clock } from '../clock.ts'

/**
 * How long nothing more of a peer that broke the protocol is acted on here: what it sent before the
 * transport heard of the violation. The transport stops delivering its frames itself while it hangs up (p2p
 * waits at most 2 s for the peer to read its refusal) and keeps it out after (its quarantine).
 */
const VIOLATOR_MS = 2_000
/** Peers remembered as violators (least recently added forgotten first). */
const MAX_VIOLATORS = 4096

export class Violators {
  readonly #clock: Clock
  /** Peer DID -> until when nothing of it is read. */
  readonly #until = new Map<string, number>()

  constructor(clock: Clock) {
    this.#clock = clock
  }

  /** True while `peerDid` is not read (a cheap check first: usually no peer is). */
  has(peerDid: string): boolean {
    if (this.#until.size === 0) return false
    const until = this.#until.get(peerDid)
    if (until === undefined) return false
    if (this.#clock.now() < until) return true
    this.#until.delete(peerDid)
    return false
  }

  /** Stops reading `peerDid` for a while. */
  add(peerDid: string): void {
    this.#until.delete(peerDid)
    this.#until.set(peerDid, this.#clock.now() + VIOLATOR_MS)
    if (this.#until.size > MAX_VIOLATORS) this.#until.delete(this.#until.keys().next().value!)
  }
}

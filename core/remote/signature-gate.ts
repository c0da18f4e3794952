// The per-sender signature gate (spec/actors.md, "Signature checks"): nothing reaches a behavior before its
// signature (or its batch's seal) is verified, except a read-only behavior when nothing of that sender waits
// before it, and each sender's envelopes are delivered in the order they arrived. An envelope whose check is
// under way waits in its sender's queue; it goes once its check passed and everything before it went.
import type { Envelope } from '../../identity/index.ts'
import { UnverifiedBacklogError } from '../errors.ts'

/** An inbound envelope in its sender's queue. */
export interface GateEntry {
  env: Envelope
  /** The actor path; undefined for an answer (held for its seal with inline checks). */
  path: string | undefined
  /** Its signature (or its batch's seal) verified: delivered once everything before it is. */
  ready: boolean
  /** Refused after all (a bad signature or seal, no seal in time, or its sender broke the protocol). */
  dead: boolean
}

/** What the signature thread keeps of a check it runs: enough to answer the envelope and name the peer. */
export interface Unverified {
  peerDid: string
  /** Undefined for a seal none of whose members decoded. */
  env: Envelope | undefined
  /** Envelopes that wait for this check before delivery (the envelope itself, or a sealed batch's members). */
  entries?: GateEntry[]
}

/** One sender's envelopes waiting for their checks, in arrival order. */
interface Queue {
  entries: (GateEntry | undefined)[]
  head: number
}

export interface SignatureGateDeps {
  /** Envelopes that may wait here at once; one more is refused with UnverifiedBacklogError. */
  maxUnverified: number
  /** Hands a checked envelope on (to its actor, or to the ask it answers). */
  deliver(env: Envelope, path: string | undefined, peerDid: string): void
  /** Answers an envelope that will never be delivered. */
  refuse(peerDid: string, error: Error, env: Envelope): void
}

export class SignatureGate {
  readonly #deps: SignatureGateDeps
  /** Per sender: envelopes waiting for their signature checks before delivery, in order. */
  readonly #queues = new Map<string, Queue>()
  /** Entries in #queues (bounded by maxUnverified). */
  #gated = 0

  constructor(deps: SignatureGateDeps) {
    this.#deps = deps
  }

  /** True when envelopes of `peerDid` wait (a new one must wait behind them, even a read-only one). */
  holds(peerDid: string): boolean {
    return this.#queues.has(peerDid)
  }

  /** An envelope whose check is done (`ready`) or under way: delivered now if nothing of its sender waits. */
  enter(env: Envelope, path: string, peerDid: string, ready: boolean): GateEntry | undefined {
    if (ready && !this.#queues.has(peerDid)) {
      this.#deps.deliver(env, path, peerDid)
      return undefined
    }
    const entry: GateEntry = { env, path, ready, dead: false }
    return this.push(peerDid, entry) ? entry : undefined
  }

  /** Queues an entry behind its sender's others (refused when too many wait); false when refused. */
  push(peerDid: string, entry: GateEntry): boolean {
    if (this.#gated >= this.#deps.maxUnverified) {
      entry.dead = true
      this.#deps.refuse(peerDid, new UnverifiedBacklogError(this.#gated, this.#deps.maxUnverified), entry.env)
      return false
    }
    let queue = this.#queues.get(peerDid)
    if (queue === undefined) {
      queue = { entries: [], head: 0 }
      this.#queues.set(peerDid, queue)
    }
    queue.entries.push(entry)
    this.#gated++
    if (entry.ready && queue.entries.length - queue.head === 1) this.#drain(peerDid)
    return true
  }

  /** A check someone waited on passed: its envelopes may go once everything before them went. */
  passed(u: Unverified): void {
    if (u.entries === undefined) return
    for (const e of u.entries) e.ready = true
    this.#drain(u.peerDid)
  }

  /** Refuses entries that can never be delivered (answered with `error`, or silently), and lets those behind them go. */
  kill(peerDid: string, entries: readonly GateEntry[], error: Error | undefined): void {
    for (const e of entries) {
      if (e.dead) continue
      e.dead = true
      if (error !== undefined) this.#deps.refuse(peerDid, error, e.env)
    }
    this.#drain(peerDid)
  }

  /**
   * Drops everything of `peerDid` that waits, unanswered (it broke the protocol and is hung up on). False
   * when nothing of it waited.
   */
  drop(peerDid: string): boolean {
    const queue = this.#queues.get(peerDid)
    if (queue === undefined) return false
    for (let i = queue.head; i < queue.entries.length; i++) queue.entries[i]!.dead = true
    this.#drain(peerDid)
    return true
  }

  /** Delivers the sender's entries from the front while they are ready (dead ones are skipped). */
  #drain(peerDid: string): void {
    const queue = this.#queues.get(peerDid)
    if (queue === undefined) return
    const entries = queue.entries
    while (queue.head < entries.length) {
      const e = entries[queue.head]!
      if (!e.ready && !e.dead) break
      entries[queue.head++] = undefined
      this.#gated--
      if (!e.dead) this.#deps.deliver(e.env, e.path, peerDid)
    }
    if (queue.head === entries.length) this.#queues.delete(peerDid)
    else if (queue.head > 1024 && queue.head * 2 > entries.length) {
      queue.entries = entries.slice(queue.head)
      queue.head = 0
    }
  }
}

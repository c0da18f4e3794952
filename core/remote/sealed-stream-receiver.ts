// The inbound half of sealed streams (spec/envelope.md, "Sealed streams"; spec/actors.md, "Signature checks").
// A member frame is admitted at once (decode, expiry, replay, sender bound to the peer) and kept in its open
// batch until the batch seal arrives; the seal is checked over the members' payloads (on the signature thread
// with concurrent checks). Members that wait for the seal sit in their sender's signature gate meanwhile. A
// batch whose seal cannot vouch for it (a member missing or turned away, the count wrong, no seal in time)
// ends unsealed: its waiting members are refused; a sender that sent every member and never sealed broke the
// protocol.
import {
  BadSignatureError,
  IdentityError,
  KIND_SEAL,
  MalformedEnvelopeError,
  UnsealedEnvelopeError,
  decodePayload,
  decodeStreamFrame,
  didOf,
  verifySeal,
  type Envelope,
  type EnvelopeVerifier,
  type SignatureWorker,
} from '../../identity/index.ts'
import type { Clock } from '../clock.ts'
import { SenderMismatchError } from '../errors.ts'
import type { SystemEvent } from '../types.ts'
import { isAnswer } from './answers.ts'
import type { GateEntry, SignatureGate, Unverified } from './signature-gate.ts'
import type { Violators } from './violators.ts'

/** A batch of a sealed stream whose seal has not arrived yet. */
interface OpenBatch {
  peerDid: string
  batch: number
  /** Member payloads in index order, refused ones included (the seal covers what the sender sent). */
  payloads: Uint8Array[]
  /** Member frames received (kept or not). */
  received: number
  /**
   * A member is missing (joined late, a gap) or was turned away at the limit: the seal cannot be checked,
   * the batch ends unsealed, and its payloads are no longer kept.
   */
  broken: boolean
  /**
   * The sender's connections all closed while this batch was open: it may have crashed, so a missing seal is
   * no violation (a sender that stays connected and never seals is one).
   */
  senderGone: boolean
  /** The first member that decoded (to answer a violation and name the batch). */
  first: Envelope | undefined
  /** Members that passed every other check and wait for the seal (they also sit in their sender's gate). */
  entries: GateEntry[]
  /** Members that passed their checks (delivered, or held for the seal). */
  counted: number
  /** Members delivered before the seal (read-only behaviors, answers: concurrent checks only). */
  early: number
  openedAt: number
}

/** The endpoint's receive steps a member goes through once admitted (core/remote/endpoint.ts). */
export interface ReceiveSteps {
  /** Answers an envelope with a refusal. */
  refuse(peerDid: string, error: Error, env: Envelope): void
  /** Refuses what did not pass decode or admission (an answer is reported, never answered). */
  refuseDecoded(peerDid: string, err: unknown, decoded: Envelope | undefined): void
  /** The local actor path a (non-answer) envelope is for; undefined once it was refused. */
  pathOf(env: Envelope, peerDid: string): string | undefined
  /** Hands a checked envelope to its actor, or an answer to its ask. */
  deliver(env: Envelope, path: string | undefined, peerDid: string): void
  /** Matches an answer with its ask. */
  answered(env: Envelope, peerDid: string): void
  /** The behavior at `path` only reads its actor (may run before the seal is checked). */
  readOnly(path: string, behavior: string): boolean
  /** The peer broke the protocol: a seal that did not verify, or a batch it never sealed. */
  violation(u: Unverified, error: IdentityError): void
}

export interface SealedStreamReceiverDeps {
  clock: Clock
  /** The transport authenticates its peers: a sealed stream is accepted only then. */
  authenticated: boolean
  /** Seals are checked on the thread (`worker`) while the members go on; otherwise inline, before delivery. */
  concurrent: boolean
  worker: SignatureWorker<Unverified> | undefined
  verifier: EnvelopeVerifier
  maxBytes: number
  /** Member payloads that may wait for their seals at once. */
  maxUnverified: number
  /** Bytes of member payloads that may wait for their seals at once. */
  maxUnsealedBytes: number
  /** Time a batch waits for its seal before it ends unsealed. */
  sealTimeoutMs: number
  gate: SignatureGate
  violators: Violators
  emit(event: SystemEvent): void
  steps: ReceiveSteps
}

export class SealedStreamReceiver {
  readonly #deps: SealedStreamReceiverDeps
  readonly #gate: SignatureGate
  readonly #steps: ReceiveSteps
  /** Open inbound batches by `${peerDid}\n${batch}`. */
  readonly #open = new Map<string, OpenBatch>()
  /** The batch the last member joined (still open): checked before the map. */
  #lastOpen: OpenBatch | undefined
  /** Payloads kept in open batches, counted against maxUnverified, and their bytes (maxUnsealedBytes). */
  #openPayloads = 0
  #openBytes = 0
  #sweep: NodeJS.Timeout | undefined

  constructor(deps: SealedStreamReceiverDeps) {
    this.#deps = deps
    this.#gate = deps.gate
    this.#steps = deps.steps
  }

  /** One sealed-stream frame (a member or a seal) from `peerDid`. */
  receive(bytes: Uint8Array, peerDid: string): void {
    let frame
    try {
      if (!this.#deps.authenticated) throw new MalformedEnvelopeError('a sealed stream needs a transport that authenticates its peers; send self-signed envelopes')
      frame = decodeStreamFrame(bytes, this.#deps.maxBytes)
    } catch (err) {
      return this.#steps.refuseDecoded(peerDid, err, undefined)
    }
    if (frame.kind === KIND_SEAL) return this.#onSeal(peerDid, frame.batch, frame.count, frame.signature)
    // members of one batch arrive back to back: the last one's batch is checked before the map
    const last = this.#lastOpen
    let open = last !== undefined && last.batch === frame.batch && last.peerDid === peerDid ? last : undefined
    if (open === undefined) {
      const key = batchKey(peerDid, frame.batch)
      open = this.#open.get(key)
      if (open === undefined) {
        open = { peerDid, batch: frame.batch, payloads: [], received: 0, broken: false, senderGone: false, first: undefined, entries: [], counted: 0, early: 0, openedAt: this.#deps.clock.now() }
        this.#open.set(key, open)
        this.#armSweep()
      }
      this.#lastOpen = open
    }
    if (frame.index !== open.received) this.#breakBatch(open)
    open.received++
    if (this.#openPayloads >= this.#deps.maxUnverified || this.#openBytes + frame.payload.byteLength > this.#deps.maxUnsealedBytes) {
      // a peer that sends members faster than seals: turned away, and the batch can no longer be proven
      const why = `${this.#openPayloads} envelopes (${this.#openBytes} bytes) already wait for their seal`
      this.#breakBatch(open)
      let decoded: Envelope | undefined
      try {
        decoded = decodePayload(frame.payload)
      } catch {
        decoded = undefined
      }
      return this.#steps.refuseDecoded(peerDid, new UnsealedEnvelopeError(why), decoded)
    }
    if (!open.broken) {
      // a view into the frame: kept until the seal is checked (the member is delivered meanwhile)
      open.payloads.push(frame.payload)
      this.#openPayloads++
      this.#openBytes += frame.payload.byteLength
    }
    let env: Envelope
    try {
      env = this.#deps.verifier.admitPayload(frame.payload)
    } catch (err) {
      let decoded: Envelope | undefined
      try {
        decoded = decodePayload(frame.payload)
      } catch {
        decoded = undefined
      }
      return this.#steps.refuseDecoded(peerDid, err, decoded)
    }
    open.counted++
    open.first ??= env
    const senderDid = didOf(env.from)
    if (senderDid !== peerDid) return this.#steps.refuse(peerDid, new SenderMismatchError(senderDid, peerDid), env)
    const answer = isAnswer(env)
    if (answer && this.#deps.concurrent) {
      // an answer reaches no behavior: with concurrent checks it goes on at once (spec/actors.md)
      open.early++
      return this.#steps.answered(env, peerDid)
    }
    if (open.broken) return this.#steps.refuse(peerDid, brokenBatchError(open), env)
    const path = answer ? undefined : this.#steps.pathOf(env, peerDid)
    if (!answer && path === undefined) return
    if (this.#deps.concurrent && !this.#gate.holds(peerDid) && this.#steps.readOnly(path!, env.behavior)) {
      // a read-only behavior with nothing of this sender waiting: answered before the seal
      open.early++
      return this.#steps.deliver(env, path, peerDid)
    }
    const entry: GateEntry = { env, path, ready: false, dead: false }
    if (this.#gate.push(peerDid, entry)) open.entries.push(entry)
  }

  /** Forgets the open batches of a peer that broke the protocol (what of it waited was dropped). */
  dropPeer(peerDid: string): void {
    for (const [key, open] of this.#open) {
      if (open.peerDid !== peerDid) continue
      this.#close(key, open)
    }
  }

  /** Resolves once every batch open now got its seal or ended unsealed. */
  async batchesClosed(): Promise<void> {
    const waiting = new Set(this.#open.values())
    while ([...waiting].some((b) => this.#open.get(batchKey(b.peerDid, b.batch)) === b)) await new Promise((r) => setTimeout(r, 1))
  }

  /** Stops the unsealed-batch deadline. */
  close(): void {
    clearInterval(this.#sweep)
    this.#sweep = undefined
  }

  /**
   * The batch cannot be proven any more: its payloads are let go, and its waiting members (which could now
   * never be delivered) are refused at once.
   */
  #breakBatch(open: OpenBatch): void {
    if (open.broken) return
    open.broken = true
    this.#release(open)
    const entries = open.entries
    open.entries = []
    this.#gate.kill(open.peerDid, entries, brokenBatchError(open))
  }

  #onSeal(peerDid: string, batch: number, count: number, signature: Uint8Array): void {
    const key = batchKey(peerDid, batch)
    const open = this.#open.get(key)
    if (open === undefined) return // every member was lost (or never sent): nothing to vouch for
    const payloads = open.payloads
    this.#close(key, open)
    if (open.broken || open.received !== count) {
      this.#unsealed(open, `the seal covers ${count} envelopes, ${open.received} arrived${open.broken ? ' (some missing, out of order or turned away)' : ''}`)
      return
    }
    const checked: Unverified = { peerDid, env: open.first, entries: open.entries }
    if (this.#deps.concurrent) {
      // checked on the thread: the waiting members go once it passed; a failure is a violation
      let route
      try {
        route = this.#deps.worker!.submitSeal(peerDid, payloads, signature, open.first?.id ?? '?', checked, open.entries.length > 0)
      } catch (err) {
        return this.#sealViolation(checked, err)
      }
      if (route === 'checked') this.#gate.passed(checked)
      return
    }
    let ok: boolean
    try {
      ok = verifySeal(peerDid, payloads, signature)
    } catch {
      ok = false
    }
    if (!ok) return this.#sealViolation(checked, new BadSignatureError(`seal of the batch of envelope ${open.first?.id ?? '?'} (${count} envelopes) does not verify with ${peerDid}`))
    this.#gate.passed(checked)
  }

  #sealViolation(u: Unverified, err: unknown): void {
    const error = err instanceof IdentityError ? err : new BadSignatureError(err instanceof Error ? err.message : String(err))
    this.#steps.violation(u, error)
  }

  /** Lets go of the payloads an open batch keeps (it closed, or can no longer be proven). */
  #release(open: OpenBatch): void {
    this.#openPayloads -= open.payloads.length
    for (const p of open.payloads) this.#openBytes -= p.byteLength
    open.payloads = []
  }

  #close(key: string, open: OpenBatch): void {
    this.#open.delete(key)
    if (this.#lastOpen === open) this.#lastOpen = undefined
    this.#release(open)
    if (this.#open.size === 0 && this.#sweep !== undefined) {
      clearInterval(this.#sweep)
      this.#sweep = undefined
    }
  }

  /** A batch its seal cannot vouch for: waiting members are refused; those delivered early are reported. */
  #unsealed(open: OpenBatch, reason: string): UnsealedEnvelopeError {
    const error = new UnsealedEnvelopeError(`batch of envelope ${open.first?.id ?? '?'}: ${reason}`)
    this.#deps.emit({ type: 'unsealed', peerDid: open.peerDid, envelopes: open.counted, firstEnvelopeId: open.first?.id, delivered: open.early > 0, reason })
    const entries = open.entries
    open.entries = []
    this.#gate.kill(open.peerDid, entries, error)
    return error
  }

  /**
   * Every connection to `peerDid` closed: its batches open now may never be sealed (a crash, kill -9). They
   * still wait for their seal (a sender that reconnects may send it) and end unsealed at the deadline, their
   * held members refused, but without a violation: a restarted node is not refused for its crash.
   */
  senderGone(peerDid: string): void {
    for (const open of this.#open.values()) if (open.peerDid === peerDid) open.senderGone = true
  }

  /** The unsealed-batch deadline: checked a few times per seal time-out while batches are open. */
  #armSweep(): void {
    if (this.#sweep !== undefined) return
    const timeoutMs = this.#deps.sealTimeoutMs
    this.#sweep = setInterval(() => {
      const now = this.#deps.clock.now()
      for (const [key, open] of this.#open) {
        if (now - open.openedAt < timeoutMs) continue
        this.#close(key, open)
        const error = this.#unsealed(open, `no seal within ${timeoutMs} ms`)
        // every member came, in order, and the seal did not: a sender that never seals is a violation (a
        // dropped stream shows as missing members instead, and only ends the batch)
        if (!open.broken && !open.senderGone && !this.#deps.violators.has(open.peerDid)) this.#steps.violation({ peerDid: open.peerDid, env: undefined }, error)
      }
    }, Math.max(10, Math.floor(timeoutMs / 4)))
    this.#sweep.unref()
  }
}

function brokenBatchError(open: OpenBatch): UnsealedEnvelopeError {
  return new UnsealedEnvelopeError(`batch ${open.batch} of ${open.peerDid} cannot be proven: a member is missing, out of order or was turned away`)
}

function batchKey(peerDid: string, batch: number): string {
  return `${peerDid}\n${batch}`
}

// The signed remote path (spec/actors.md, "Remote messages"). Outbound: messages queued in one turn are
// signed together (one Ed25519 signature over a Merkle batch when there are several) and handed to the
// Transport in order. Inbound: decode (bounded) -> signature -> expiry -> replay (identity's
// EnvelopeVerifier) -> sender DID bound to the delivering peer -> answer matching, or the actor's
// behavior lookup -> capability check -> mailbox (in the ActorSystem). Every refusal is answered to the
// peer with a typed error; an answer is never answered.
//
// Over a transport that authenticates peers (libp2p's Noise session is bound to the peer's did:key):
// - outbound envelopes travel as a sealed stream (identity/sealed-stream.ts): each payload goes out at once as
//   a numbered batch member, and the batch seal (one signature over their Merkle root, signed on identity's
//   SignatureWorker thread) follows, piggybacked on the next write or within a few ms;
// - inbound signatures (envelopes and seals) are checked on that thread, on another core, while the pipeline
//   goes on; a failure is answered, reported as a `peer-violation` and the peer is disconnected
//   (spec/actors.md, "Signature checks"). With inline checks, members wait for their seal before delivery.
import {
  BadSignatureError,
  DEFAULT_MAX_BYTES,
  EnvelopeVerifier,
  IdentityError,
  KIND_SEAL,
  MalformedEnvelopeError,
  SignatureWorker,
  UnsealedEnvelopeError,
  decodeEnvelope,
  decodePayload,
  decodeStreamFrame,
  didOf,
  MEMBER_HEADER,
  encodeSeal,
  isStreamFrame,
  parseAddress,
  prepareEnvelopeFrame,
  setMemberHeader,
  signEnvelope,
  signEnvelopeBatch,
  verifySeal,
  type Envelope,
  type EnvelopeInit,
  type JsonValue,
  type DecodedWire,
  type NodeKey,
  type SignedEnvelope,
  randomEnvelopeId,
} from '../identity/index.ts'
import type { Replier } from './actor-system.ts'
import type { Clock } from './clock.ts'
import { InvalidMessageError, MisaddressedError, NoirError, SenderMismatchError, UnexpectedReplyError, UnverifiedBacklogError } from './errors.ts'
import { DEFAULT_SEAL_WINDOW_MS, type RemoteEndpoint, type RemoteEndpointDeps } from './remote-contract.ts'
import type { InboundEnvelope, SendSink } from './transport.ts'
import type { TellOptions } from './types.ts'
import { fromWireError, isWireError, toWireError, type WireError } from './wire-error.ts'

/** Behavior of an answer to an earlier envelope (`inReplyTo`): `{ ok: true, value }` or `{ ok: false, error }`. */
export const REPLY_BEHAVIOR = '/noir/reply'
/** Behavior of a refusal that cannot name the refused envelope (it could not be decoded): `{ error }`. */
export const ERROR_BEHAVIOR = '/noir/error'
/** Largest number of envelopes signed under one batch signature (each carries its Merkle path). */
const BATCH_MAX = 256
/**
 * Largest sealed-stream batch (its members carry no path): one signature made, and one checked, per this many
 * envelopes. At 256 the signature threads' per-batch costs were about a third of their time at 100k tells/s;
 * at 1024 most batches under load still close on the count, well inside the seal window.
 */
const SEALED_BATCH_MAX = 1024

export type ReplyBody = { ok: true; value: JsonValue } | { ok: false; error: WireError }

interface Outgoing {
  toDid: string
  init: EnvelopeInit
  /** Set for messages we originate (to report a send failure); unset for answers. */
  origin: { behavior: string; to: string; reply: Replier | undefined } | undefined
  /** Runs once the transport took the envelope (or failed to). */
  onSent?: () => void
  /** Sent with its own signature even on a sealed stream: the refusal before a hang-up, which no seal may follow. */
  selfSigned?: boolean
  /** Its envelope's id, once encoded. */
  id?: string
}

/** What the signature worker keeps of an envelope it checks: enough to answer it and name the peer. */
interface Unverified {
  peerDid: string
  /** Undefined for a seal none of whose members decoded. */
  env: Envelope | undefined
  /** Envelopes that wait for this check before delivery (the envelope itself, or a sealed batch's members). */
  entries?: GateEntry[]
}

/**
 * An inbound envelope in its sender's queue (spec/actors.md, "Signature checks"): nothing reaches a behavior
 * before its signature is verified, except a read-only behavior when nothing of that sender waits before it.
 */
interface GateEntry {
  env: Envelope
  /** The actor path; undefined for an answer (held for its seal with inline checks). */
  path: string | undefined
  /** Its signature (or its batch's seal) verified: delivered once everything before it is. */
  ready: boolean
  /** Refused after all (a bad signature or seal, no seal in time, or its sender broke the protocol). */
  dead: boolean
}

/** One sender's envelopes waiting for their checks, in arrival order. */
interface Gate {
  entries: (GateEntry | undefined)[]
  head: number
}

/**
 * How long nothing more of a peer that broke the protocol is acted on here: what it sent before the
 * transport heard of the violation. The transport stops delivering its frames itself while it hangs up (p2p
 * waits at most 2 s for the peer to read its refusal) and keeps it out after (its quarantine).
 */
const VIOLATOR_MS = 2_000
/** Peers remembered as violators (least recently added forgotten first). */
const MAX_VIOLATORS = 4096

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

interface PendingRemote {
  reply: Replier
  /** The node asked: only it may answer. */
  toDid: string
  /** Sealed streams: the batch the ask went out in, and `${toDid} ${behavior}` (to learn read-only behaviors). */
  batch?: number
  key?: string
}

/** (destination, behavior) pairs learned to be read-only at their node, remembered (least recent forgotten). */
const MAX_READ_ONLY_LEARNED = 1024

export interface RemoteEndpointOptions {
  /** Largest accepted envelope in bytes; default identity's DEFAULT_MAX_BYTES (1 MiB). */
  maxBytes?: number
  /**
   * When inbound signatures are checked. 'concurrent' (the default) checks them on a worker thread while
   * the envelope is delivered, but only over a transport that authenticates peers; 'inline' checks every
   * signature before delivery. spec/actors.md, "Signature checks".
   */
  signatureCheck?: 'inline' | 'concurrent'
  /** Envelopes that may wait for the signature worker (or for their seal) before checks go inline. Default 65,536. */
  maxUnverified?: number
  /**
   * Over a transport that authenticates peers, send envelopes as a sealed stream (the default) rather than
   * each with its own signature and Merkle path. spec/envelope.md, "Sealed streams".
   */
  sealedStreams?: boolean
  /** Time a batch member waits for its seal before it counts as unsealed. Default 10 s. */
  sealTimeoutMs?: number
  /** Bytes of member payloads that may wait for their seals (beside `maxUnverified` of them). Default 64 MiB. */
  maxUnsealedBytes?: number
  /**
   * Sealed streams: an outgoing batch stays open this long from its first member (or until it holds 1024),
   * then one signature seals it. Members go out at once either way; a longer window means fewer signatures
   * (and fewer checks at the receiver). Default 25 ms.
   */
  sealWindowMs?: number
}

function isAnswer(env: Pick<Envelope, 'behavior'>): boolean {
  return env.behavior === REPLY_BEHAVIOR || env.behavior === ERROR_BEHAVIOR
}

function jsonBody(value: unknown): JsonValue {
  return (value === undefined ? null : value) as JsonValue
}

class SignedRemote implements RemoteEndpoint {
  readonly #deps: RemoteEndpointDeps
  readonly #key: NodeKey
  readonly #clock: Clock
  readonly #verifier: EnvelopeVerifier
  /** The thread, when the transport authenticates peers (for sealing, and for concurrent checks). */
  readonly #worker: SignatureWorker<Unverified> | undefined
  /** Inbound signatures are checked concurrently (on #worker). */
  readonly #concurrent: boolean
  readonly #sealedOut: boolean
  readonly #authenticated: boolean
  readonly #maxBytes: number
  readonly #maxUnverified: number
  readonly #sealTimeoutMs: number
  readonly #pending = new Map<string, PendingRemote>()
  /** Next batch number per destination node (random start: a restarted sender does not reuse open numbers). */
  readonly #nextBatch = new Map<string, number>()
  /** Outgoing batches not sealed yet, per destination node. */
  readonly #outBatches = new Map<string, { batch: number; payloads: Uint8Array[] }>()
  readonly #sealWindowMs: number
  #sealWindow: NodeJS.Timeout | undefined
  /** Per destination: resolves when the last seal asked for is handed to the transport. */
  readonly #lastSeal = new Map<string, Promise<void>>()
  /** Open inbound batches by `${peerDid}\n${batch}`. */
  readonly #open = new Map<string, OpenBatch>()
  /** The batch the last member joined (still open): checked before the map. */
  #lastOpen: OpenBatch | undefined
  /** Payloads kept in open batches, counted against maxUnverified, and their bytes (maxUnsealedBytes). */
  #openPayloads = 0
  #openBytes = 0
  readonly #maxUnsealedBytes: number
  #sweep: NodeJS.Timeout | undefined
  #outbox: Outgoing[] = []
  #flushScheduled = false
  #closed = false
  /** Per destination: the last batch whose seal was handed to the transport. */
  readonly #sealedThrough = new Map<string, number>()
  /** `${toDid} ${behavior}` answered before its ask's seal went out: read-only there (no urgent seal). */
  readonly #readOnlyAt = new Set<string>()
  /** Per sender: envelopes waiting for their signature checks before delivery, in order. */
  readonly #gates = new Map<string, Gate>()
  /** Entries in #gates (bounded by maxUnverified). */
  #gated = 0
  /** Peers that broke the protocol: nothing more of theirs is read (until the time here). */
  readonly #violators = new Map<string, number>()

  constructor(deps: RemoteEndpointDeps, options: RemoteEndpointOptions) {
    this.#deps = deps
    this.#key = deps.key
    this.#clock = deps.clock
    this.#maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
    this.#verifier = new EnvelopeVerifier({ now: () => this.#clock.now(), maxBytes: this.#maxBytes })
    this.#authenticated = deps.transport.authenticatesPeers === true
    this.#sealedOut = this.#authenticated && options.sealedStreams !== false
    this.#concurrent = this.#authenticated && (options.signatureCheck ?? 'concurrent') === 'concurrent'
    this.#maxUnverified = options.maxUnverified ?? 65_536
    this.#sealTimeoutMs = options.sealTimeoutMs ?? 10_000
    this.#maxUnsealedBytes = options.maxUnsealedBytes ?? 64 * 1024 * 1024
    this.#sealWindowMs = options.sealWindowMs ?? DEFAULT_SEAL_WINDOW_MS
    if (this.#concurrent || this.#sealedOut) {
      this.#worker = new SignatureWorker<Unverified>({
        onFailure: (u, error) => this.#onBadSignature(u, error),
        onPassed: (u) => this.#passed(u),
        onThreadLost: (error) => this.#deps.emit({ type: 'signature-thread-lost', error }),
        maxBacklog: this.#maxUnverified,
        ...(this.#sealedOut ? { signer: this.#key } : {}),
      })
      // started now: it takes a moment to load, and a fresh node's first seals should not wait for that
      this.#worker.start()
    }
  }

  /**
   * Resolves once every envelope received so far has had its signature checked: its seal arrived and was
   * checked (or its batch ended unsealed), and the thread has checked everything handed to it.
   */
  async signaturesChecked(): Promise<void> {
    const waiting = new Set(this.#open.values())
    while ([...waiting].some((b) => this.#open.get(batchKey(b.peerDid, b.batch)) === b)) await new Promise((r) => setTimeout(r, 1))
    await this.#worker?.drained()
    // and what passed was delivered (passes are collected by the worker's poll)
    while (this.#worker !== undefined && this.#worker.awaited > 0) await new Promise((r) => setTimeout(r, 1))
  }

  // ---- outbound ------------------------------------------------------------------------------------------------

  send(to: string, behavior: string, body: unknown, from: string, options: TellOptions | undefined, reply: Replier | undefined): string {
    const toDid = parseAddress(to).did
    const id = randomEnvelopeId()
    const init: EnvelopeInit = { id, from, to, behavior, body: jsonBody(body), now: this.#clock.now() }
    if (options?.ttlMs !== undefined) init.ttlMs = options.ttlMs
    if (options?.proofs !== undefined && options.proofs.length > 0) init.proofs = [...options.proofs]
    // replyTo marks an ask: the receiver answers it. A tell has none; only its refusal is answered (to `from`).
    if (reply?.expectsReply) {
      init.replyTo = from
      this.#pending.set(id, { reply, toDid })
    }
    this.#queue({ toDid, init, origin: { behavior, to, reply } })
    return id
  }

  /** Drops a pending ask (it timed out or was given up): a late answer is reported as unmatched. */
  forget(id: string): void {
    this.#pending.delete(id)
  }

  #queue(out: Outgoing): void {
    this.#outbox.push(out)
    if (!this.#flushScheduled) {
      this.#flushScheduled = true
      queueMicrotask(this.#flush)
    }
  }

  #flush = (): void => {
    this.#flushScheduled = false
    const outbox = this.#outbox
    this.#outbox = []
    if (this.#sealedOut) return this.#flushSealed(outbox)
    for (let i = 0; i < outbox.length; i += BATCH_MAX) {
      const chunk = outbox.slice(i, i + BATCH_MAX)
      for (const [out, signed] of this.#sign(chunk)) this.#transmit(out, signed.envelope.id, signed.bytes)
    }
  }

  /**
   * Sealed stream: seals the thread has signed go first (they ride in this write), then each envelope as the
   * next member of its destination's open batch. A batch is sealed when full or when its window closes.
   */
  #flushSealed(outbox: Outgoing[]): void {
    this.#worker!.collectSeals()
    // destinations sent an ask in this flush: its receiver may hold it for the seal, so the seal goes now
    let asked: Set<string> | undefined
    for (const o of outbox) {
      if (o.selfSigned) {
        for (const [out, signed] of this.#sign([o])) this.#transmit(out, signed.envelope.id, signed.bytes)
        continue
      }
      const prepared = this.#prepare(o)
      if (prepared === undefined) continue
      const toDid = prepared.out.toDid
      let open = this.#outBatches.get(toDid)
      if (open === undefined) {
        const batch = this.#nextBatch.get(toDid) ?? (Math.random() * 0x1_0000_0000) >>> 0
        this.#nextBatch.set(toDid, (batch + 1) >>> 0)
        open = { batch, payloads: [] }
        this.#outBatches.set(toDid, open)
        this.#sealWindow ??= setTimeout(this.#sealAll, this.#sealWindowMs)
      }
      this.#transmit(prepared.out, prepared.id, setMemberHeader(prepared.frame, open.batch, open.payloads.length))
      open.payloads.push(prepared.payload)
      if (open.payloads.length >= SEALED_BATCH_MAX) this.#sealBatch(toDid)
      else if (o.init.replyTo !== undefined && o.origin !== undefined) {
        // an ask: its receiver holds it for the seal unless the behavior only reads, so the seal goes at
        // once, unless this behavior there was seen answered before its seal (then waking the thread for
        // the seal would only slow the ask)
        const key = `${toDid} ${o.origin.behavior}`
        const pending = this.#pending.get(prepared.id)
        if (pending !== undefined) {
          pending.batch = open.batch
          pending.key = key
        }
        if (!this.#readOnlyAt.has(key)) (asked ??= new Set()).add(toDid)
      }
    }
    if (asked !== undefined) for (const toDid of asked) this.#sealBatch(toDid, true)
  }

  #sealAll = (): void => {
    clearTimeout(this.#sealWindow)
    this.#sealWindow = undefined
    for (const toDid of [...this.#outBatches.keys()]) this.#sealBatch(toDid)
  }

  /** Closes the destination's open batch and asks the thread for its seal, sent when it comes back. */
  #sealBatch(toDid: string, urgent = false): void {
    const open = this.#outBatches.get(toDid)
    if (open === undefined) return
    this.#outBatches.delete(toDid)
    const { batch, payloads } = open
    const sent = new Promise<void>((resolve) => {
      this.#worker!.seal(payloads, (signature) => {
        this.#sealedThrough.set(toDid, batch)
        // a failed send is reported to the members' senders by their own sends
        this.#deps.transport.send(toDid, encodeSeal(batch, payloads.length, signature)).then(resolve, () => resolve())
      }, urgent)
    })
    // seals are handed back in order, so the last one's hand-off means every earlier one was handed off
    this.#lastSeal.set(toDid, sent)
    void sent.then(() => {
      if (this.#lastSeal.get(toDid) === sent) this.#lastSeal.delete(toDid)
    })
  }

  /** Seals what is open to `toDid` now; resolves once every seal to it so far is handed to the transport. */
  #sealsSent(toDid: string): Promise<void> {
    if (this.#sealedOut) this.#sealBatch(toDid)
    return this.#lastSeal.get(toDid) ?? Promise.resolve()
  }

  /**
   * One outgoing envelope as a member frame (header left to fill, payload after it), or undefined when it
   * cannot be encoded (reported, or answered with an error).
   */
  #prepare(o: Outgoing): { out: Outgoing; id: string; frame: Uint8Array; payload: Uint8Array } | undefined {
    try {
      const { envelope, frame, payload } = prepareEnvelopeFrame(this.#key, o.init, MEMBER_HEADER)
      return { out: o, id: envelope.id, frame, payload }
    } catch (err) {
      const fixed = this.#unsendable(o, err)
      if (fixed === undefined) return undefined
      try {
        const { envelope, frame, payload } = prepareEnvelopeFrame(this.#key, fixed.init, MEMBER_HEADER)
        return { out: fixed, id: envelope.id, frame, payload }
      } catch {
        return undefined // nothing sensible left to send
      }
    }
  }

  /**
   * An outgoing envelope that cannot be encoded: a message of ours fails its sender; an answer whose value
   * cannot be encoded becomes an answer with a typed error (returned, to be sent instead).
   */
  #unsendable(o: Outgoing, err: unknown): Outgoing | undefined {
    const why = err instanceof Error ? err.message : String(err)
    if (o.origin) {
      this.#pending.delete(o.init.id!)
      this.#failOrigin(o, new InvalidMessageError(o.origin.behavior, `cannot be sent: ${why}`))
      return undefined
    }
    if (o.init.behavior === REPLY_BEHAVIOR && (o.init.body as { ok?: unknown } | null)?.ok === true) {
      const fixed: EnvelopeInit = { ...o.init, body: { ok: false, error: toWireError(new InvalidMessageError(REPLY_BEHAVIOR, `the answer cannot be encoded: ${why}`)) } as unknown as JsonValue }
      return { ...o, init: fixed }
    }
    return undefined
  }

  /** Signs a chunk in one batch; if any init is refused, signs one by one so only the bad ones fail. */
  #sign(chunk: Outgoing[]): [Outgoing, SignedEnvelope][] {
    if (chunk.length > 1) {
      try {
        const signed = signEnvelopeBatch(this.#key, chunk.map((o) => o.init))
        return chunk.map((o, i) => [o, signed[i]!])
      } catch {
        // fall through to single signing to find the culprit(s)
      }
    }
    const out: [Outgoing, SignedEnvelope][] = []
    for (const o of chunk) {
      try {
        out.push([o, signEnvelope(this.#key, o.init)])
      } catch (err) {
        const fixed = this.#unsendable(o, err)
        if (fixed === undefined) continue
        try {
          out.push([fixed, signEnvelope(this.#key, fixed.init)])
        } catch {
          // nothing sensible left to send
        }
      }
    }
    return out
  }

  #transmit(out: Outgoing, id: string, bytes: Uint8Array): void {
    out.id = id
    const transport = this.#deps.transport
    if (transport.post !== undefined) return transport.post(out.toDid, bytes, this.#sent, out)
    transport.send(out.toDid, bytes).then(
      () => this.#sent.handedOff(out),
      (err: unknown) => this.#sent.failed(out, err instanceof Error ? err : new Error(String(err))),
    )
  }

  /** What became of an envelope handed to the transport (`post`'s sink; `send`'s promise ends here too). */
  readonly #sent: SendSink<Outgoing> = {
    handedOff: (out) => {
      out.onSent?.()
      out.origin?.reply?.handedOff?.()
    },
    failed: (out, error) => {
      out.onSent?.()
      if (!out.origin) return
      this.#pending.delete(out.id!)
      this.#failOrigin(out, error)
    },
  }

  #failOrigin(out: Outgoing, error: Error): void {
    const origin = out.origin!
    if (origin.reply) origin.reply.fail(error)
    else this.#deps.emit({ type: 'rejected', to: origin.to, behavior: origin.behavior, error })
  }

  /** Queues an answer to `env` (a reply or a refusal). Never answers an answer. */
  answer(env: Pick<Envelope, 'id' | 'from' | 'to' | 'behavior' | 'replyTo'>, peerDid: string, body: ReplyBody, fromAddress: string, onSent?: () => void, selfSigned = false): void {
    if (isAnswer(env) || this.#closed) {
      onSent?.()
      return
    }
    const to = env.replyTo ?? env.from
    let toDid: string
    try {
      toDid = parseAddress(to).did
    } catch {
      toDid = peerDid
    }
    // Answers go to the node that delivered the envelope: a refusal must reach whoever sent these bytes.
    const target = toDid === peerDid ? to : peerDid
    const out: Outgoing = { toDid: peerDid, init: { from: fromAddress, to: target, behavior: REPLY_BEHAVIOR, inReplyTo: env.id, body: body as unknown as JsonValue, now: this.#clock.now() }, origin: undefined }
    if (onSent) out.onSent = onSent
    if (selfSigned) out.selfSigned = true
    this.#queue(out)
  }

  #refuse(peerDid: string, error: Error, env: Pick<Envelope, 'id' | 'from' | 'to' | 'behavior' | 'replyTo'> | undefined): void {
    this.#deps.emit({ type: 'rejected', to: env?.to ?? this.#key.did, behavior: env?.behavior ?? '(undecodable)', error })
    if (this.#closed) return
    if (env) return this.answer(env, peerDid, { ok: false, error: toWireError(error) }, this.#key.did)
    this.#queue({ toDid: peerDid, init: { from: this.#key.did, to: peerDid, behavior: ERROR_BEHAVIOR, body: { error: toWireError(error) } as unknown as JsonValue, now: this.#clock.now() }, origin: undefined })
  }

  // ---- inbound ---------------------------------------------------------------------------------------------------

  receive(inbound: InboundEnvelope): void {
    const { bytes, peerDid } = inbound
    // a peer that broke the protocol is being hung up on: nothing more of its is read (its refusal was sent)
    if (this.#violators.size > 0 && this.#isViolator(peerDid)) return
    if (isStreamFrame(bytes)) return this.#receiveStream(bytes, peerDid)
    let env: Envelope
    let unverified: DecodedWire | undefined
    try {
      if (this.#concurrent) {
        unverified = this.#verifier.admit(bytes)
        env = unverified.envelope
      } else env = this.#verifier.verify(bytes)
    } catch (err) {
      let decoded: Envelope | undefined
      try {
        decoded = decodeEnvelope(bytes).envelope
      } catch {
        decoded = undefined
      }
      return this.#refuseDecoded(peerDid, err, decoded)
    }
    const senderDid = didOf(env.from)
    if (senderDid !== peerDid) return this.#refuse(peerDid, new SenderMismatchError(senderDid, peerDid), env)
    if (unverified === undefined) {
      // checked inline above
      if (isAnswer(env)) return this.#onAnswer(env, peerDid)
      const path = this.#pathOf(env, peerDid)
      if (path !== undefined) this.#enter(env, path, peerDid, true)
      return
    }
    // checked on the worker while we go on; inline (and thrown here) when the worker cannot take it. An answer
    // (it reaches no behavior) and a message for a read-only behavior with nothing of its sender waiting go on
    // at once; anything else waits in its sender's queue until the check passed.
    const path = isAnswer(env) ? undefined : this.#pathOf(env, peerDid)
    if (!isAnswer(env) && path === undefined) return
    const early = path === undefined || (!this.#gates.has(peerDid) && this.#deps.readOnly(path, env.behavior))
    const entry: GateEntry | undefined = early ? undefined : { env, path, ready: false, dead: false }
    let route
    try {
      route = this.#worker!.submit(senderDid, unverified, bytes, env.id, entry ? { peerDid, env, entries: [entry] } : { peerDid, env }, entry !== undefined)
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err))
      if (isAnswer(env)) return this.#deps.emit({ type: 'rejected', to: env.to, behavior: env.behavior, error })
      return this.#refuse(peerDid, error, env)
    }
    if (path === undefined) return this.#onAnswer(env, peerDid)
    if (entry === undefined) return this.#deliver(env, path, peerDid)
    entry.ready = route === 'checked'
    this.#push(peerDid, entry)
  }

  /** A refusal of what did not pass decode or admission; an answer is reported, never answered. */
  #refuseDecoded(peerDid: string, err: unknown, decoded: Envelope | undefined): void {
    const error = err instanceof Error ? err : new Error(String(err))
    if (decoded && isAnswer(decoded)) return this.#deps.emit({ type: 'rejected', to: decoded.to, behavior: decoded.behavior, error })
    this.#refuse(peerDid, error, decoded)
  }

  /** The local actor path a (non-answer) envelope is for; undefined once it was refused. */
  #pathOf(env: Envelope, peerDid: string): string | undefined {
    let path: string
    try {
      const to = parseAddress(env.to)
      if (to.did !== this.#key.did) return void this.#refuse(peerDid, new MisaddressedError(env.to, this.#key.did), env)
      path = to.path.slice(1)
    } catch (err) {
      return void this.#refuse(peerDid, err instanceof Error ? err : new Error(String(err)), env)
    }
    if (path === '') return void this.#refuse(peerDid, new MisaddressedError(env.to, `${this.#key.did}/<actor>`), env)
    return path
  }

  /** Hands a checked envelope to the actor system (behavior lookup, capability check, mailbox), or an answer to its ask. */
  #deliver(env: Envelope, path: string | undefined, peerDid: string): void {
    if (path === undefined) return this.#onAnswer(env, peerDid)
    this.#deps.deliver(path, env.behavior, env.body, env.from, peerDid, env.proofs, new RemoteReplier(this, env, peerDid))
  }

  // ---- the senders' queues: delivery only after the signature check, in each sender's order -------------------

  /** An envelope whose check is done (`ready`) or under way: delivered now if nothing of its sender waits. */
  #enter(env: Envelope, path: string, peerDid: string, ready: boolean): GateEntry | undefined {
    if (ready && !this.#gates.has(peerDid)) {
      this.#deliver(env, path, peerDid)
      return undefined
    }
    const entry: GateEntry = { env, path, ready, dead: false }
    return this.#push(peerDid, entry) ? entry : undefined
  }

  /** Queues an entry behind its sender's others (refused when too many wait); false when refused. */
  #push(peerDid: string, entry: GateEntry): boolean {
    if (this.#gated >= this.#maxUnverified) {
      entry.dead = true
      this.#refuse(peerDid, new UnverifiedBacklogError(this.#gated, this.#maxUnverified), entry.env)
      return false
    }
    let gate = this.#gates.get(peerDid)
    if (gate === undefined) {
      gate = { entries: [], head: 0 }
      this.#gates.set(peerDid, gate)
    }
    gate.entries.push(entry)
    this.#gated++
    if (entry.ready && gate.entries.length - gate.head === 1) this.#drain(peerDid)
    return true
  }

  /** Delivers the sender's entries from the front while they are ready (dead ones are skipped). */
  #drain(peerDid: string): void {
    const gate = this.#gates.get(peerDid)
    if (gate === undefined) return
    const entries = gate.entries
    while (gate.head < entries.length) {
      const e = entries[gate.head]!
      if (!e.ready && !e.dead) break
      entries[gate.head++] = undefined
      this.#gated--
      if (!e.dead) this.#deliver(e.env, e.path, peerDid)
    }
    if (gate.head === entries.length) this.#gates.delete(peerDid)
    else if (gate.head > 1024 && gate.head * 2 > entries.length) {
      gate.entries = entries.slice(gate.head)
      gate.head = 0
    }
  }

  /** A check someone waited on passed: its envelopes may go once everything before them went. */
  #passed(u: Unverified): void {
    if (u.entries === undefined) return
    for (const e of u.entries) e.ready = true
    this.#drain(u.peerDid)
  }

  /** Refuses entries that can never be delivered, and lets those behind them go. */
  #kill(peerDid: string, entries: readonly GateEntry[], error: Error | undefined): void {
    for (const e of entries) {
      if (e.dead) continue
      e.dead = true
      if (error !== undefined) this.#refuse(peerDid, error, e.env)
    }
    this.#drain(peerDid)
  }

  #isViolator(peerDid: string): boolean {
    const until = this.#violators.get(peerDid)
    if (until === undefined) return false
    if (this.#clock.now() < until) return true
    this.#violators.delete(peerDid)
    return false
  }

  /** Stops reading a peer that broke the protocol: what of its still waits is dropped (it is hung up on). */
  #markViolator(peerDid: string): void {
    this.#violators.delete(peerDid)
    this.#violators.set(peerDid, this.#clock.now() + VIOLATOR_MS)
    if (this.#violators.size > MAX_VIOLATORS) this.#violators.delete(this.#violators.keys().next().value!)
    const gate = this.#gates.get(peerDid)
    if (gate === undefined) return
    for (let i = gate.head; i < gate.entries.length; i++) gate.entries[i]!.dead = true
    this.#drain(peerDid)
    for (const [key, open] of this.#open) {
      if (open.peerDid !== peerDid) continue
      this.#close(key, open)
    }
  }

  // ---- inbound sealed streams (spec/envelope.md, "Sealed streams") ------------------------------------------

  #receiveStream(bytes: Uint8Array, peerDid: string): void {
    let frame
    try {
      if (!this.#authenticated) throw new MalformedEnvelopeError('a sealed stream needs a transport that authenticates its peers; send self-signed envelopes')
      frame = decodeStreamFrame(bytes, this.#maxBytes)
    } catch (err) {
      return this.#refuseDecoded(peerDid, err, undefined)
    }
    if (frame.kind === KIND_SEAL) return this.#onSeal(peerDid, frame.batch, frame.count, frame.signature)
    // members of one batch arrive back to back: the last one's batch is checked before the map
    const last = this.#lastOpen
    let open = last !== undefined && last.batch === frame.batch && last.peerDid === peerDid ? last : undefined
    if (open === undefined) {
      const key = batchKey(peerDid, frame.batch)
      open = this.#open.get(key)
      if (open === undefined) {
        open = { peerDid, batch: frame.batch, payloads: [], received: 0, broken: false, first: undefined, entries: [], counted: 0, early: 0, openedAt: this.#clock.now() }
        this.#open.set(key, open)
        this.#armSweep()
      }
      this.#lastOpen = open
    }
    if (frame.index !== open.received) this.#breakBatch(open)
    open.received++
    if (this.#openPayloads >= this.#maxUnverified || this.#openBytes + frame.payload.byteLength > this.#maxUnsealedBytes) {
      // a peer that sends members faster than seals: turned away, and the batch can no longer be proven
      const why = `${this.#openPayloads} envelopes (${this.#openBytes} bytes) already wait for their seal`
      this.#breakBatch(open)
      let decoded: Envelope | undefined
      try {
        decoded = decodePayload(frame.payload)
      } catch {
        decoded = undefined
      }
      return this.#refuseDecoded(peerDid, new UnsealedEnvelopeError(why), decoded)
    }
    if (!open.broken) {
      // a view into the frame: kept until the seal is checked (the member is delivered meanwhile)
      open.payloads.push(frame.payload)
      this.#openPayloads++
      this.#openBytes += frame.payload.byteLength
    }
    let env: Envelope
    try {
      env = this.#verifier.admitPayload(frame.payload)
    } catch (err) {
      let decoded: Envelope | undefined
      try {
        decoded = decodePayload(frame.payload)
      } catch {
        decoded = undefined
      }
      return this.#refuseDecoded(peerDid, err, decoded)
    }
    open.counted++
    open.first ??= env
    const senderDid = didOf(env.from)
    if (senderDid !== peerDid) return this.#refuse(peerDid, new SenderMismatchError(senderDid, peerDid), env)
    const answer = isAnswer(env)
    if (answer && this.#concurrent) {
      // an answer reaches no behavior: with concurrent checks it goes on at once (spec/actors.md)
      open.early++
      return this.#onAnswer(env, peerDid)
    }
    if (open.broken) return this.#refuse(peerDid, brokenBatchError(open), env)
    const path = answer ? undefined : this.#pathOf(env, peerDid)
    if (!answer && path === undefined) return
    if (this.#concurrent && !this.#gates.has(peerDid) && this.#deps.readOnly(path!, env.behavior)) {
      // a read-only behavior with nothing of this sender waiting: answered before the seal
      open.early++
      return this.#deliver(env, path, peerDid)
    }
    const entry: GateEntry = { env, path, ready: false, dead: false }
    if (this.#push(peerDid, entry)) open.entries.push(entry)
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
    this.#kill(open.peerDid, entries, brokenBatchError(open))
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
    if (this.#concurrent) {
      // checked on the thread: the waiting members go once it passed; a failure is a violation
      let route
      try {
        route = this.#worker!.submitSeal(peerDid, payloads, signature, open.first?.id ?? '?', checked, open.entries.length > 0)
      } catch (err) {
        return this.#sealViolation(checked, err)
      }
      if (route === 'checked') this.#passed(checked)
      return
    }
    let ok: boolean
    try {
      ok = verifySeal(peerDid, payloads, signature)
    } catch {
      ok = false
    }
    if (!ok) return this.#sealViolation(checked, new BadSignatureError(`seal of the batch of envelope ${open.first?.id ?? '?'} (${count} envelopes) does not verify with ${peerDid}`))
    this.#passed(checked)
  }

  #sealViolation(u: Unverified, err: unknown): void {
    const error = err instanceof IdentityError ? err : new BadSignatureError(err instanceof Error ? err.message : String(err))
    this.#onBadSignature(u, error)
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
    this.#kill(open.peerDid, entries, error)
    return error
  }

  #armSweep(): void {
    if (this.#sweep !== undefined) return
    this.#sweep = setInterval(() => {
      const now = this.#clock.now()
      for (const [key, open] of this.#open) {
        if (now - open.openedAt < this.#sealTimeoutMs) continue
        this.#close(key, open)
        const error = this.#unsealed(open, `no seal within ${this.#sealTimeoutMs} ms`)
        // every member came, in order, and the seal did not: a sender that never seals is a violation (a
        // dropped stream shows as missing members instead, and only ends the batch)
        if (!open.broken && !this.#isViolator(open.peerDid)) this.#onBadSignature({ peerDid: open.peerDid, env: undefined }, error)
      }
    }, Math.max(10, Math.floor(this.#sealTimeoutMs / 4)))
    this.#sweep.unref()
  }

  /**
   * An envelope already delivered failed its concurrent signature check. The session was authenticated, so
   * its sender is known: it is told (a typed refusal), reported, and disconnected once the refusal is sent.
   */
  #onBadSignature(u: Unverified, error: IdentityError): void {
    const { peerDid, env } = u
    if (this.#isViolator(peerDid)) {
      // checked after the first violation (it was on the thread already): nothing of it is acted on or answered
      if (u.entries !== undefined) this.#kill(peerDid, u.entries, undefined)
      return
    }
    if (u.entries !== undefined) {
      // what waited for this check is refused (the first member is answered below, last)
      this.#kill(peerDid, u.entries.filter((e) => e.env !== env), error)
      for (const e of u.entries) e.dead = true
    }
    this.#markViolator(peerDid)
    this.#deps.emit({ type: 'peer-violation', peerDid, envelopeId: env?.id ?? '', behavior: env?.behavior ?? '(sealed batch)', error })
    // the refusal must reach the peer with its seal (a strict peer holds members until then): hang up only
    // once every seal to it is handed to the transport
    const hangUp = (): void => void this.#sealsSent(peerDid).then(() => this.#deps.transport.disconnect?.(peerDid, error))
    if (env === undefined) return hangUp()
    // self-signed: the last thing the peer hears must verify on its own, whatever happens to the stream
    this.answer(env, peerDid, { ok: false, error: toWireError(error) }, this.#key.did, hangUp, true)
  }

  #onAnswer(env: Envelope, senderDid: string): void {
    const id = env.inReplyTo
    const pending = id === undefined ? undefined : this.#pending.get(id)
    const body = env.body as Partial<{ ok: boolean; value: JsonValue; error: unknown }> | null
    if (id === undefined || pending === undefined || pending.toDid !== senderDid) {
      // Not an answer to an ask of ours: a refused tell, a late answer, or noise.
      if (body && isWireError(body.error) && id !== undefined) {
        this.#deps.emit({ type: 'rejected', to: env.from, behavior: env.behavior, error: fromWireError(body.error) })
      } else {
        this.#deps.emit({ type: 'unmatched-reply', from: env.from, inReplyTo: id ?? '' })
      }
      return
    }
    this.#pending.delete(id!)
    if (pending.key !== undefined && pending.batch !== undefined) this.#learn(pending.key, pending.batch, senderDid)
    if (body && body.ok === true) pending.reply.ok(body.value)
    else if (body && isWireError(body.error)) pending.reply.fail(fromWireError(body.error))
    else pending.reply.fail(new UnexpectedReplyError(`answer to ${id} has neither a value nor an error`))
  }

  /**
   * An answer to an ask sent in `batch`: if that batch's seal had not gone out yet, the receiver answered
   * before it could check the seal, so the behavior only reads there.
   */
  #learn(key: string, batch: number, toDid: string): void {
    const through = this.#sealedThrough.get(toDid)
    if (through !== undefined && ((through - batch) | 0) >= 0) return
    this.#readOnlyAt.delete(key)
    this.#readOnlyAt.add(key)
    if (this.#readOnlyAt.size > MAX_READ_ONLY_LEARNED) this.#readOnlyAt.delete(this.#readOnlyAt.values().next().value!)
  }

  close(error: Error): void {
    this.#sealAll()
    this.#closed = true
    clearInterval(this.#sweep)
    this.#sweep = undefined
    void this.#worker?.stop()
    const pending = [...this.#pending.values()]
    this.#pending.clear()
    for (const p of pending) p.reply.fail(error)
  }
}

function brokenBatchError(open: OpenBatch): UnsealedEnvelopeError {
  return new UnsealedEnvelopeError(`batch ${open.batch} of ${open.peerDid} cannot be proven: a member is missing, out of order or was turned away`)
}

function batchKey(peerDid: string, batch: number): string {
  return `${peerDid}\n${batch}`
}

/** Answers one inbound envelope: an ask gets its value or error, a tell only its refusal. */
class RemoteReplier implements Replier {
  readonly expectsReply: boolean
  readonly #remote: SignedRemote
  readonly #env: Envelope
  readonly #peerDid: string
  #done = false

  constructor(remote: SignedRemote, env: Envelope, peerDid: string) {
    this.#remote = remote
    this.#env = env
    this.#peerDid = peerDid
    this.expectsReply = env.replyTo !== undefined
  }

  ok(value: unknown): void {
    if (this.#done || !this.expectsReply) return
    this.#done = true
    this.#remote.answer(this.#env, this.#peerDid, { ok: true, value: jsonBody(value) }, this.#env.to)
  }

  fail(error: Error): void {
    if (this.#done) return
    this.#done = true
    const wire = toWireError(error instanceof NoirError || error.name !== 'Error' ? error : new NoirError(error.message))
    this.#remote.answer(this.#env, this.#peerDid, { ok: false, error: wire }, this.#env.to)
  }
}

/** The default RemoteEndpointFactory. */
export function signedRemote(options: RemoteEndpointOptions = {}): (deps: RemoteEndpointDeps) => RemoteEndpoint {
  return (deps) => new SignedRemote(deps, options)
}

// The outbound half of the signed remote path (spec/actors.md, "Remote messages"; spec/envelope.md, "Sealed
// streams"). Envelopes queued in one turn go out together, in order:
// - self-signed: one Ed25519 signature over a Merkle batch of up to 256 (each envelope still verifiable alone);
// - over a transport that authenticates peers, as a sealed stream: each payload goes out at once as the next
//   numbered member of its destination's open batch, and the batch seal (one signature over their Merkle root,
//   signed on identity's SignatureWorker thread) follows when the batch is full, when its window closes, or at
//   once after an ask (its receiver may hold the ask for the seal).
// What becomes of each envelope (handed off, or failed) is told to the message's sender.
import {
  MEMBER_HEADER,
  encodeSeal,
  parseAddress,
  prepareEnvelopeFrame,
  randomEnvelopeId,
  setMemberHeader,
  signEnvelope,
  signEnvelopeBatch,
  type Envelope,
  type EnvelopeInit,
  type JsonValue,
  type NodeKey,
  type SignatureWorker,
  type SignedEnvelope,
} from '../../identity/index.ts'
import type { Replier } from '../repliers.ts'
import type { Clock } from '../clock.ts'
import { InvalidMessageError } from '../errors.ts'
import type { SendSink, Transport } from '../transport.ts'
import type { SystemEvent, TellOptions } from '../types.ts'
import { toWireError } from '../wire-error.ts'
import { ERROR_BEHAVIOR, REPLY_BEHAVIOR, isAnswer, jsonBody, type ReplyBody } from './answers.ts'
import type { PendingAsks } from './pending-asks.ts'

/** Largest number of envelopes signed under one batch signature (each carries its Merkle path). */
const BATCH_MAX = 256
/**
 * Largest sealed-stream batch (its members carry no path): one signature made, and one checked, per this many
 * envelopes. At 256 the signature threads' per-batch costs were about a third of their time at 100k tells/s;
 * at 1024 most batches under load still close on the count, well inside the seal window.
 */
const SEALED_BATCH_MAX = 1024
/** (destination, behavior) pairs learned to be read-only at their node, remembered (least recent forgotten). */
const MAX_READ_ONLY_LEARNED = 1024

/** What signs a sealed stream's seals: the signature thread. */
export type Sealer = Pick<SignatureWorker<unknown>, 'seal' | 'collectSeals'>

export interface EnvelopeSenderDeps {
  /** Signs every envelope (and names the node in refusals). */
  key: NodeKey
  clock: Clock
  transport: Transport
  emit(event: SystemEvent): void
  /** Where an ask waits for its answer (and is forgotten when it cannot be sent). */
  asks: PendingAsks
  /** Set when envelopes go out as a sealed stream: the thread that signs the seals. */
  sealer: Sealer | undefined
  /** How long an outgoing sealed-stream batch stays open from its first member. */
  sealWindowMs: number
}

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

export class EnvelopeSender {
  readonly #key: NodeKey
  readonly #clock: Clock
  readonly #transport: Transport
  readonly #emit: (event: SystemEvent) => void
  readonly #asks: PendingAsks
  readonly #sealer: Sealer | undefined
  readonly #sealWindowMs: number
  #outbox: Outgoing[] = []
  #flushScheduled = false
  #closed = false
  /** Next batch number per destination node (random start: a restarted sender does not reuse open numbers). */
  readonly #nextBatch = new Map<string, number>()
  /** Outgoing batches not sealed yet, per destination node. */
  readonly #outBatches = new Map<string, { batch: number; payloads: Uint8Array[] }>()
  #sealWindow: NodeJS.Timeout | undefined
  /** Per destination: resolves when the last seal asked for is handed to the transport. */
  readonly #lastSeal = new Map<string, Promise<void>>()
  /** Per destination: the last batch whose seal was handed to the transport. */
  readonly #sealedThrough = new Map<string, number>()
  /** `${toDid} ${behavior}` answered before its ask's seal went out: read-only there (no urgent seal). */
  readonly #readOnlyAt = new Set<string>()

  constructor(deps: EnvelopeSenderDeps) {
    this.#key = deps.key
    this.#clock = deps.clock
    this.#transport = deps.transport
    this.#emit = deps.emit
    this.#asks = deps.asks
    this.#sealer = deps.sealer
    this.#sealWindowMs = deps.sealWindowMs
  }

  /** Queues a message to an actor on another node; an ask waits in the pending asks. Returns the envelope id. */
  send(to: string, behavior: string, body: unknown, from: string, options: TellOptions | undefined, reply: Replier | undefined, trace?: string): string {
    const toDid = parseAddress(to).did
    const id = randomEnvelopeId()
    const init: EnvelopeInit = { id, from, to, behavior, body: jsonBody(body), now: this.#clock.now() }
    if (options?.ttlMs !== undefined) init.ttlMs = options.ttlMs
    if (options?.proofs !== undefined && options.proofs.length > 0) init.proofs = [...options.proofs]
    if (trace !== undefined) init.trace = trace
    // replyTo marks an ask: the receiver answers it. A tell has none; only its refusal is answered (to `from`).
    if (reply?.expectsReply) {
      init.replyTo = from
      this.#asks.add(id, reply, toDid)
    }
    this.#queue({ toDid, init, origin: { behavior, to, reply } })
    return id
  }

  /** Queues an answer to `env` (a reply or a refusal). Never answers an answer; nothing once closed. */
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

  /** Queues a refusal of bytes that named no envelope (`/noir/error`); nothing once closed. */
  refuseUndecodable(peerDid: string, error: Error): void {
    if (this.#closed) return
    this.#queue({ toDid: peerDid, init: { from: this.#key.did, to: peerDid, behavior: ERROR_BEHAVIOR, body: { error: toWireError(error) } as unknown as JsonValue, now: this.#clock.now() }, origin: undefined })
  }

  /** Seals what is open to `toDid` now; resolves once every seal to it so far is handed to the transport. */
  sealsSent(toDid: string): Promise<void> {
    if (this.#sealer !== undefined) this.#sealBatch(toDid)
    return this.#lastSeal.get(toDid) ?? Promise.resolve()
  }

  /**
   * An answer to an ask sent in `batch` arrived: if that batch's seal had not gone out yet, the receiver
   * answered before it could check the seal, so the behavior (`key`) only reads there.
   */
  answeredBefore(key: string, batch: number, toDid: string): void {
    const through = this.#sealedThrough.get(toDid)
    if (through !== undefined && ((through - batch) | 0) >= 0) return
    this.#readOnlyAt.delete(key)
    this.#readOnlyAt.add(key)
    if (this.#readOnlyAt.size > MAX_READ_ONLY_LEARNED) this.#readOnlyAt.delete(this.#readOnlyAt.values().next().value!)
  }

  /** Seals what is open; nothing more is queued after. */
  close(): void {
    this.#sealAll()
    this.#closed = true
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
    if (this.#sealer !== undefined) return this.#flushSealed(outbox, this.#sealer)
    for (let i = 0; i < outbox.length; i += BATCH_MAX) {
      const chunk = outbox.slice(i, i + BATCH_MAX)
      for (const [out, signed] of this.#sign(chunk)) this.#transmit(out, signed.envelope.id, signed.bytes)
    }
  }

  /**
   * Sealed stream: seals the thread has signed go first (they ride in this write), then each envelope as the
   * next member of its destination's open batch. A batch is sealed when full or when its window closes.
   */
  #flushSealed(outbox: Outgoing[], sealer: Sealer): void {
    sealer.collectSeals()
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
        const pending = this.#asks.get(prepared.id)
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
      this.#sealer!.seal(payloads, (signature) => {
        this.#sealedThrough.set(toDid, batch)
        // a failed send is reported to the members' senders by their own sends
        this.#transport.send(toDid, encodeSeal(batch, payloads.length, signature)).then(resolve, () => resolve())
      }, urgent)
    })
    // seals are handed back in order, so the last one's hand-off means every earlier one was handed off
    this.#lastSeal.set(toDid, sent)
    void sent.then(() => {
      if (this.#lastSeal.get(toDid) === sent) this.#lastSeal.delete(toDid)
    })
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
      this.#asks.forget(o.init.id!)
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
    const transport = this.#transport
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
      this.#asks.forget(out.id!)
      this.#failOrigin(out, error)
    },
  }

  #failOrigin(out: Outgoing, error: Error): void {
    const origin = out.origin!
    if (origin.reply) origin.reply.fail(error)
    else this.#emit({ type: 'rejected', to: origin.to, behavior: origin.behavior, error })
  }
}

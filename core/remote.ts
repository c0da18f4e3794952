// The signed remote path (spec/actors.md, "Remote messages"). Outbound: messages queued in one turn are
// signed together (one Ed25519 signature over a Merkle batch when there are several) and handed to the
// Transport in order. Inbound: decode (bounded) -> signature -> expiry -> replay (identity's
// EnvelopeVerifier) -> sender DID bound to the delivering peer -> answer matching, or the actor's
// behavior lookup -> capability check -> mailbox (in the ActorSystem). Every refusal is answered to the
// peer with a typed error; an answer is never answered.
//
// Over a transport that authenticates peers (libp2p's Noise session is bound to the peer's did:key), the
// signature is checked on identity's SignatureWorker, on another core, while the pipeline goes on; a failure
// is answered, reported as a `peer-violation` and the peer is disconnected (spec/actors.md, "Signature checks").
import { randomUUID } from 'node:crypto'
import {
  EnvelopeVerifier,
  SignatureWorker,
  decodeEnvelope,
  didOf,
  parseAddress,
  signEnvelope,
  signEnvelopeBatch,
  type Envelope,
  type EnvelopeInit,
  type JsonValue,
  type DecodedWire,
  type IdentityError,
  type NodeKey,
  type SignedEnvelope,
} from '../identity/index.ts'
import type { Replier } from './actor-system.ts'
import type { Clock } from './clock.ts'
import { InvalidMessageError, MisaddressedError, NoirError, SenderMismatchError, UnexpectedReplyError } from './errors.ts'
import type { RemoteEndpoint, RemoteEndpointDeps } from './remote-contract.ts'
import type { InboundEnvelope } from './transport.ts'
import type { TellOptions } from './types.ts'
import { fromWireError, isWireError, toWireError, type WireError } from './wire-error.ts'

/** Behavior of an answer to an earlier envelope (`inReplyTo`): `{ ok: true, value }` or `{ ok: false, error }`. */
export const REPLY_BEHAVIOR = '/noir/reply'
/** Behavior of a refusal that cannot name the refused envelope (it could not be decoded): `{ error }`. */
export const ERROR_BEHAVIOR = '/noir/error'
/** Largest number of envelopes signed under one batch signature. */
const BATCH_MAX = 256

export type ReplyBody = { ok: true; value: JsonValue } | { ok: false; error: WireError }

interface Outgoing {
  toDid: string
  init: EnvelopeInit
  /** Set for messages we originate (to report a send failure); unset for answers. */
  origin: { behavior: string; to: string; reply: Replier | undefined } | undefined
  /** Runs once the transport took the envelope (or failed to). */
  onSent?: () => void
}

/** What the signature worker keeps of an envelope it checks: enough to answer it and name the peer. */
interface Unverified {
  peerDid: string
  env: Envelope
}

interface PendingRemote {
  reply: Replier
  /** The node asked: only it may answer. */
  toDid: string
}

export interface RemoteEndpointOptions {
  /** Largest accepted envelope in bytes; default identity's DEFAULT_MAX_BYTES (1 MiB). */
  maxBytes?: number
  /**
   * When inbound signatures are checked. 'concurrent' (the default) checks them on a worker thread while
   * the envelope is delivered, but only over a transport that authenticates peers; 'inline' checks every
   * signature before delivery. spec/actors.md, "Signature checks".
   */
  signatureCheck?: 'inline' | 'concurrent'
  /** Envelopes that may wait for the signature worker before checks go inline. Default 65,536. */
  maxUnverified?: number
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
  readonly #signatures: SignatureWorker<Unverified> | undefined
  readonly #pending = new Map<string, PendingRemote>()
  #outbox: Outgoing[] = []
  #flushScheduled = false
  #closed = false

  constructor(deps: RemoteEndpointDeps, options: RemoteEndpointOptions) {
    this.#deps = deps
    this.#key = deps.system.key
    this.#clock = deps.system.clock
    this.#verifier = new EnvelopeVerifier({ now: () => this.#clock.now(), ...(options.maxBytes ? { maxBytes: options.maxBytes } : {}) })
    if ((options.signatureCheck ?? 'concurrent') === 'concurrent' && deps.transport.authenticatesPeers === true) {
      this.#signatures = new SignatureWorker<Unverified>({
        onFailure: (u, error) => this.#onBadSignature(u, error),
        ...(options.maxUnverified !== undefined ? { maxBacklog: options.maxUnverified } : {}),
      })
    }
  }

  /** Resolves once every envelope received so far has had its signature checked. */
  signaturesChecked(): Promise<void> {
    return this.#signatures?.drained() ?? Promise.resolve()
  }

  // ---- outbound ------------------------------------------------------------------------------------------------

  send(to: string, behavior: string, body: unknown, from: string, options: TellOptions | undefined, reply: Replier | undefined): string {
    const toDid = parseAddress(to).did
    const id = randomUUID()
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
    for (let i = 0; i < outbox.length; i += BATCH_MAX) {
      const chunk = outbox.slice(i, i + BATCH_MAX)
      for (const [out, signed] of this.#sign(chunk)) this.#transmit(out, signed)
    }
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
        const why = err instanceof Error ? err.message : String(err)
        if (o.origin) {
          this.#pending.delete(o.init.id!)
          this.#failOrigin(o, new InvalidMessageError(o.origin.behavior, `cannot be sent: ${why}`))
        } else if (o.init.behavior === REPLY_BEHAVIOR && (o.init.body as { ok?: unknown } | null)?.ok === true) {
          // An answer value that cannot be encoded: answer with a typed error instead.
          const fixed: EnvelopeInit = { ...o.init, body: { ok: false, error: toWireError(new InvalidMessageError(REPLY_BEHAVIOR, `the answer cannot be encoded: ${why}`)) } as unknown as JsonValue }
          try {
            out.push([{ ...o, init: fixed }, signEnvelope(this.#key, fixed)])
          } catch {
            // nothing sensible left to send
          }
        }
      }
    }
    return out
  }

  #transmit(out: Outgoing, signed: SignedEnvelope): void {
    const sent = this.#deps.transport.send(out.toDid, signed.bytes)
    if (out.onSent) sent.then(out.onSent, out.onSent)
    const onError = (err: unknown): void => {
      if (!out.origin) return
      this.#pending.delete(signed.envelope.id)
      this.#failOrigin(out, err instanceof Error ? err : new Error(String(err)))
    }
    const reply = out.origin?.reply
    if (reply?.handedOff !== undefined) sent.then(() => reply.handedOff!(), onError)
    else sent.catch(onError)
  }

  #failOrigin(out: Outgoing, error: Error): void {
    const origin = out.origin!
    if (origin.reply) origin.reply.fail(error)
    else this.#deps.emit({ type: 'rejected', to: origin.to, behavior: origin.behavior, error })
  }

  /** Queues an answer to `env` (a reply or a refusal). Never answers an answer. */
  answer(env: Pick<Envelope, 'id' | 'from' | 'to' | 'behavior' | 'replyTo'>, peerDid: string, body: ReplyBody, fromAddress: string, onSent?: () => void): void {
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
    let env: Envelope
    let unverified: DecodedWire | undefined
    try {
      if (this.#signatures) {
        unverified = this.#verifier.admit(bytes)
        env = unverified.envelope
      } else env = this.#verifier.verify(bytes)
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err))
      let decoded: Envelope | undefined
      try {
        decoded = decodeEnvelope(bytes).envelope
      } catch {
        decoded = undefined
      }
      if (decoded && isAnswer(decoded)) {
        this.#deps.emit({ type: 'rejected', to: decoded.to, behavior: decoded.behavior, error })
        return
      }
      this.#refuse(peerDid, error, decoded)
      return
    }
    const senderDid = didOf(env.from)
    if (senderDid !== peerDid) return this.#refuse(peerDid, new SenderMismatchError(senderDid, peerDid), env)
    if (unverified) {
      try {
        // checked on the worker while we go on; inline (and thrown here) when the worker cannot take it
        this.#signatures!.submit(senderDid, unverified, bytes, env.id, { peerDid, env })
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err))
        if (isAnswer(env)) return this.#deps.emit({ type: 'rejected', to: env.to, behavior: env.behavior, error })
        return this.#refuse(peerDid, error, env)
      }
    }
    if (isAnswer(env)) return this.#onAnswer(env, senderDid)
    let path: string
    try {
      const to = parseAddress(env.to)
      if (to.did !== this.#key.did) return this.#refuse(peerDid, new MisaddressedError(env.to, this.#key.did), env)
      path = to.path.slice(1)
    } catch (err) {
      return this.#refuse(peerDid, err instanceof Error ? err : new Error(String(err)), env)
    }
    if (path === '') return this.#refuse(peerDid, new MisaddressedError(env.to, `${this.#key.did}/<actor>`), env)
    this.#deps.deliver(path, env.behavior, env.body, env.from, senderDid, env.proofs, new RemoteReplier(this, env, peerDid))
  }

  /**
   * An envelope already delivered failed its concurrent signature check. The session was authenticated, so
   * its sender is known: it is told (a typed refusal), reported, and disconnected once the refusal is sent.
   */
  #onBadSignature(u: Unverified, error: IdentityError): void {
    const { peerDid, env } = u
    this.#deps.emit({ type: 'peer-violation', peerDid, envelopeId: env.id, behavior: env.behavior, error })
    const hangUp = (): void => this.#deps.transport.disconnect?.(peerDid, error)
    this.answer(env, peerDid, { ok: false, error: toWireError(error) }, this.#key.did, hangUp)
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
    if (body && body.ok === true) pending.reply.ok(body.value)
    else if (body && isWireError(body.error)) pending.reply.fail(fromWireError(body.error))
    else pending.reply.fail(new UnexpectedReplyError(`answer to ${id} has neither a value nor an error`))
  }

  close(error: Error): void {
    this.#closed = true
    void this.#signatures?.stop()
    const pending = [...this.#pending.values()]
    this.#pending.clear()
    for (const p of pending) p.reply.fail(error)
  }
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

// The signed remote path (spec/actors.md, "Remote messages"): the default RemoteEndpoint, which wires its parts.
// Outbound (envelope-sender.ts): messages queued in one turn are signed together and handed to the Transport
// in order; over a transport that authenticates peers (libp2p's Noise session is bound to the peer's did:key)
// they travel as a sealed stream. Inbound, here: decode (bounded) -> signature -> expiry -> replay (identity's
// EnvelopeVerifier) -> sender DID bound to the delivering peer -> answer matching (pending-asks.ts), or the
// actor's behavior lookup -> capability check -> mailbox (in the ActorSystem). Sealed-stream frames go to
// sealed-stream-receiver.ts. With concurrent checks, signatures (envelopes and seals) are checked on identity's
// SignatureWorker thread while the pipeline goes on, and what may not run before its check waits in its
// sender's signature gate (signature-gate.ts); a failure is answered, reported as a `peer-violation`, and the
// peer is disconnected (violators.ts). Every refusal is answered to the peer with a typed error; an answer is
// never answered.
import {
  DEFAULT_MAX_BYTES,
  EnvelopeVerifier,
  SignatureWorker,
  decodeEnvelope,
  didOf,
  isStreamFrame,
  parseAddress,
  type DecodedWire,
  type Envelope,
  type IdentityError,
  type NodeKey,
} from '../../identity/index.ts'
import type { Replier } from '../repliers.ts'
import { MisaddressedError, NoirError, SenderMismatchError, UnreachableError } from '../errors.ts'
import { DEFAULT_SEAL_WINDOW_MS, type RemoteEndpoint, type RemoteEndpointDeps } from '../remote-contract.ts'
import type { InboundEnvelope } from '../transport.ts'
import type { SystemEvent, TellOptions } from '../types.ts'
import { toWireError } from '../wire-error.ts'
import { isAnswer, jsonBody } from './answers.ts'
import { EnvelopeSender } from './envelope-sender.ts'
import { PendingAsks, settleAsk } from './pending-asks.ts'
import { SealedStreamReceiver } from './sealed-stream-receiver.ts'
import { SignatureGate, type GateEntry, type Unverified } from './signature-gate.ts'
import { Violators } from './violators.ts'

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

class SignedRemoteEndpoint implements RemoteEndpoint {
  readonly #deps: RemoteEndpointDeps
  readonly #key: NodeKey
  readonly #verifier: EnvelopeVerifier
  /** The thread, when the transport authenticates peers (for sealing, and for concurrent checks). */
  readonly #worker: SignatureWorker<Unverified> | undefined
  /** Inbound signatures are checked concurrently (on #worker). */
  readonly #concurrent: boolean
  readonly #asks: PendingAsks
  readonly #sender: EnvelopeSender
  readonly #gate: SignatureGate
  readonly #violators: Violators
  readonly #streams: SealedStreamReceiver

  constructor(deps: RemoteEndpointDeps, options: RemoteEndpointOptions) {
    this.#deps = deps
    this.#key = deps.key
    const clock = deps.clock
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES
    this.#verifier = new EnvelopeVerifier({ now: () => clock.now(), maxBytes })
    const authenticated = deps.transport.authenticatesPeers === true
    const sealedOut = authenticated && options.sealedStreams !== false
    this.#concurrent = authenticated && (options.signatureCheck ?? 'concurrent') === 'concurrent'
    const maxUnverified = options.maxUnverified ?? 65_536
    const emit = (event: SystemEvent): void => deps.emit(event)
    if (this.#concurrent || sealedOut) {
      this.#worker = new SignatureWorker<Unverified>({
        onFailure: (u, error) => this.#onBadSignature(u, error),
        onPassed: (u) => this.#gate.passed(u),
        onThreadLost: (error) => emit({ type: 'signature-thread-lost', error }),
        maxBacklog: maxUnverified,
        ...(sealedOut ? { signer: this.#key } : {}),
      })
      // started now: it takes a moment to load, and a fresh node's first seals should not wait for that
      this.#worker.start()
    }
    this.#asks = new PendingAsks(emit)
    this.#sender = new EnvelopeSender({
      key: this.#key,
      clock,
      transport: deps.transport,
      emit,
      asks: this.#asks,
      sealer: sealedOut ? this.#worker : undefined,
      sealWindowMs: options.sealWindowMs ?? DEFAULT_SEAL_WINDOW_MS,
    })
    this.#gate = new SignatureGate({
      maxUnverified,
      deliver: (env, path, peerDid) => this.#deliver(env, path, peerDid),
      refuse: (peerDid, error, env) => this.#refuse(peerDid, error, env),
    })
    this.#violators = new Violators(clock)
    this.#streams = new SealedStreamReceiver({
      clock,
      authenticated,
      concurrent: this.#concurrent,
      worker: this.#worker,
      verifier: this.#verifier,
      maxBytes,
      maxUnverified,
      maxUnsealedBytes: options.maxUnsealedBytes ?? 64 * 1024 * 1024,
      sealTimeoutMs: options.sealTimeoutMs ?? 10_000,
      gate: this.#gate,
      violators: this.#violators,
      emit,
      steps: {
        refuse: (peerDid, error, env) => this.#refuse(peerDid, error, env),
        refuseDecoded: (peerDid, err, decoded) => this.#refuseDecoded(peerDid, err, decoded),
        pathOf: (env, peerDid) => this.#pathOf(env, peerDid),
        deliver: (env, path, peerDid) => this.#deliver(env, path, peerDid),
        answered: (env, peerDid) => this.#onAnswer(env, peerDid),
        readOnly: (path, behavior) => deps.readOnly(path, behavior),
        violation: (u, error) => this.#onBadSignature(u, error),
      },
    })
  }

  /**
   * Resolves once every envelope received so far has had its signature checked: its seal arrived and was
   * checked (or its batch ended unsealed), and the thread has checked everything handed to it.
   */
  async signaturesChecked(): Promise<void> {
    await this.#streams.batchesClosed()
    await this.#worker?.drained()
    // and what passed was delivered (passes are collected by the worker's poll)
    while (this.#worker !== undefined && this.#worker.awaited > 0) await new Promise((r) => setTimeout(r, 1))
  }

  // ---- outbound ------------------------------------------------------------------------------------------------

  send(to: string, behavior: string, body: unknown, from: string, options: TellOptions | undefined, reply: Replier | undefined, trace?: string): string {
    return this.#sender.send(to, behavior, body, from, options, reply, trace)
  }

  /** Drops a pending ask (it timed out or was given up): a late answer is reported as unmatched. */
  forget(id: string): void {
    this.#asks.forget(id)
  }

  #refuse(peerDid: string, error: Error, env: Pick<Envelope, 'id' | 'from' | 'to' | 'behavior' | 'replyTo'> | undefined): void {
    this.#deps.emit({ type: 'rejected', to: env?.to ?? this.#key.did, behavior: env?.behavior ?? '(undecodable)', error })
    if (env) return this.#sender.answer(env, peerDid, { ok: false, error: toWireError(error) }, this.#key.did)
    this.#sender.refuseUndecodable(peerDid, error)
  }

  // ---- inbound ---------------------------------------------------------------------------------------------------

  /**
   * Every connection to `peerDid` closed: its open batches end without a seal but are no violation, and the
   * asks waiting on it fail now with UnreachableError instead of at their time-out (a node killed mid-ask
   * answers nothing; the asker moves on at once). The ask may have run there: the caller's retry must be
   * idempotent, as over any network.
   */
  peerGone(peerDid: string): void {
    this.#streams.senderGone(peerDid)
    this.#asks.failTo(peerDid, () => new UnreachableError(peerDid, 'its connection closed while an ask waited for the answer (the ask may have run there)'))
  }

  receive(inbound: InboundEnvelope): void {
    const { bytes, peerDid } = inbound
    // a peer that broke the protocol is being hung up on: nothing more of its is read (its refusal was sent)
    if (this.#violators.has(peerDid)) return
    if (isStreamFrame(bytes)) return this.#streams.receive(bytes, peerDid)
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
      if (path !== undefined) this.#gate.enter(env, path, peerDid, true)
      return
    }
    // checked on the worker while we go on; inline (and thrown here) when the worker cannot take it. An answer
    // (it reaches no behavior) and a message for a read-only behavior with nothing of its sender waiting go on
    // at once; anything else waits in its sender's queue until the check passed.
    const path = isAnswer(env) ? undefined : this.#pathOf(env, peerDid)
    if (!isAnswer(env) && path === undefined) return
    const early = path === undefined || (!this.#gate.holds(peerDid) && this.#deps.readOnly(path, env.behavior))
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
    this.#gate.push(peerDid, entry)
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
    this.#deps.deliver(path, env.behavior, env.body, env.from, peerDid, env.proofs, new RemoteReplier(this.#sender, env, peerDid), env.trace)
  }

  #onAnswer(env: Envelope, senderDid: string): void {
    const ask = this.#asks.take(env, senderDid)
    if (ask === undefined) return
    if (ask.key !== undefined && ask.batch !== undefined) this.#sender.answeredBefore(ask.key, ask.batch, senderDid)
    settleAsk(ask, env)
  }

  /**
   * An envelope already delivered failed its concurrent signature check. The session was authenticated, so
   * its sender is known: it is told (a typed refusal), reported, and disconnected once the refusal is sent.
   */
  #onBadSignature(u: Unverified, error: IdentityError): void {
    const { peerDid, env } = u
    if (this.#violators.has(peerDid)) {
      // checked after the first violation (it was on the thread already): nothing of it is acted on or answered
      if (u.entries !== undefined) this.#gate.kill(peerDid, u.entries, undefined)
      return
    }
    if (u.entries !== undefined) {
      // what waited for this check is refused (the first member is answered below, last)
      this.#gate.kill(peerDid, u.entries.filter((e) => e.env !== env), error)
      for (const e of u.entries) e.dead = true
    }
    this.#markViolator(peerDid)
    this.#deps.emit({ type: 'peer-violation', peerDid, envelopeId: env?.id ?? '', behavior: env?.behavior ?? '(sealed batch)', error })
    // the refusal must reach the peer with its seal (a strict peer holds members until then): hang up only
    // once every seal to it is handed to the transport
    const hangUp = (): void => void this.#sender.sealsSent(peerDid).then(() => this.#deps.transport.disconnect?.(peerDid, error))
    if (env === undefined) return hangUp()
    // self-signed: the last thing the peer hears must verify on its own, whatever happens to the stream
    this.#sender.answer(env, peerDid, { ok: false, error: toWireError(error) }, this.#key.did, hangUp, true)
  }

  /** Stops reading a peer that broke the protocol: what of its still waits is dropped (it is hung up on). */
  #markViolator(peerDid: string): void {
    this.#violators.add(peerDid)
    if (this.#gate.drop(peerDid)) this.#streams.dropPeer(peerDid)
  }

  close(error: Error): void {
    this.#sender.close()
    this.#streams.close()
    void this.#worker?.stop()
    this.#asks.failAll(error)
  }
}

/** Answers one inbound envelope (from the actor that got it): an ask gets its value or error, a tell only its refusal. */
class RemoteReplier implements Replier {
  readonly expectsReply: boolean
  readonly #sender: EnvelopeSender
  readonly #env: Envelope
  readonly #peerDid: string
  #done = false

  constructor(sender: EnvelopeSender, env: Envelope, peerDid: string) {
    this.#sender = sender
    this.#env = env
    this.#peerDid = peerDid
    this.expectsReply = env.replyTo !== undefined
  }

  ok(value: unknown): void {
    if (this.#done || !this.expectsReply) return
    this.#done = true
    this.#sender.answer(this.#env, this.#peerDid, { ok: true, value: jsonBody(value) }, this.#env.to)
  }

  fail(error: Error): void {
    if (this.#done) return
    this.#done = true
    const wire = toWireError(error instanceof NoirError || error.name !== 'Error' ? error : new NoirError(error.message))
    this.#sender.answer(this.#env, this.#peerDid, { ok: false, error: wire }, this.#env.to)
  }
}

/** The default RemoteEndpointFactory. */
export function signedRemote(options: RemoteEndpointOptions = {}): (deps: RemoteEndpointDeps) => RemoteEndpoint {
  return (deps) => new SignedRemoteEndpoint(deps, options)
}

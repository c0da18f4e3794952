// Broadcast: signed messages on named gossipsub topics (spec/pubsub.md). Gossipsub runs with StrictNoSign;
// each message's `data` is our own small signed envelope (domain tag `noir:pubsub:v1`) naming the sender's
// DID. Every node validates a message (size, structure, canonical form, signature, topic, time window,
// rate per sender) in a topic validator BEFORE gossipsub delivers or relays it.
import type { PeerId } from '@libp2p/interface'
import { TopicValidatorResult, type GossipsubMessage, type Message } from '@libp2p/gossipsub'
import { randomBytes } from 'node:crypto'
import { canonicalJson, canonicalJsonBytes, type JsonValue } from '../identity/canonical-json.ts'
import { verifyEd25519ForDid } from '../identity/keys.ts'
import { isDidKey } from '../identity/did-key.ts'
import type { NoirHost } from './host.ts'
import type { MessageTracer } from '../core/types.ts'
import { InvalidTopicError, MessageTooLargeError, PubsubMessageRejectedError } from './errors.ts'
import { errorFields, silentLog, type Log } from './log.ts'
import { BucketTable, RejectionTally } from './admission.ts'
import { OVER_BUDGET_PER_PENALTY, penalise, peerScoreSummary, scoreTopic, type PeerScoreSummary } from './pubsub-score.ts'

export const PUBSUB_DOMAIN_TAG = 'noir:pubsub:v1'
export const PUBSUB_VERSION = 1
const SIG_BYTES = 64
const HEADER_BYTES = 1 + SIG_BYTES
const TOPIC_RE = /^[a-z0-9][a-z0-9/_.:-]{0,127}$/
/** W3C Trace Context, version 00 (lower-case hex; an all-zero trace or span id is invalid). */
const TRACEPARENT = /^00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}$/

/** What a node signs with: a NodeKey fits. */
export interface BroadcastSigner {
  readonly did: string
  sign(message: Uint8Array): Uint8Array
}

/** A verified broadcast as subscribers see it. */
export interface BroadcastMessage {
  topic: string
  /** The DID that signed it (the original publisher, not the relaying peer). */
  from: string
  body: JsonValue
  /** Issued-at and expiry, ms since the epoch. */
  iat: number
  exp: number
  nonce: string
  /** The publisher's W3C traceparent when it published inside a sampled trace (spec/pubsub.md "Trace"). */
  trace?: string
  /** The peer id of the neighbour that relayed it to us. */
  receivedFrom: string
}

export type BroadcastHandler = (msg: BroadcastMessage) => void

export interface BroadcastOptions {
  host: NoirHost
  signer: BroadcastSigner
  log?: Log
  /** Largest message (`data`) accepted or published. Default 64 KiB. */
  maxBytes?: number
  /** Longest lifetime a message may claim. Default 10 min. */
  maxTtlMs?: number
  /** Tolerated clock skew for `iat`. Default 30 s. */
  clockSkewMs?: number
  /** Per-sender token bucket, for senders the node knows: sustained messages/s and burst. Default 20/s, burst 100. */
  rate?: { perSecond: number; burst: number }
  /** One bucket shared by every sender the node does not know (a DID costs a key generation). Default 20/s, burst 50. */
  strangerRate?: { perSecond: number; burst: number }
  /** Per neighbour (the authenticated peer that handed the message on), before any signature check. Default DEFAULT_PEER_RATE. */
  peerRate?: { perSecond: number; burst: number }
  /** Whether a sender DID is known here (a peer with an open connection). Default: nobody is. */
  isKnown?: (did: string) => boolean
  /**
   * A neighbour sent FLOOD_HANGUP messages over its budget (a flood, not a chatty relay): the mesh
   * quarantines it and hangs up, so nothing more it sends is even decoded.
   */
  onFlood?: (peer: PeerId) => void
  /** Carries the active trace in what is published and handles what arrives in its sender's trace (spec/observability.md). */
  tracer?: MessageTracer
  now?: () => number
}

/**
 * A neighbour's budget: 400 messages/s, bursts of 1,000. Our own traffic is a few messages per node per
 * second (beats, heartbeats, bid requests); a relay for a hundred nodes stays well inside it.
 */
export const DEFAULT_PEER_RATE = { perSecond: 400, burst: 1_000 }

/** Validation time one turn of the event loop may spend before the rest waits for the next turn, ms. */
export const TURN_BUDGET_MS = 5

/**
 * Messages over its budget after which a neighbour is taken for a flooder and hung up on (see onFlood).
 * Every message read before costs the node gossipsub's own work (decryption, decoding, a message id, a
 * delivery record) before any check of ours: ~100-250 µs each on these machines under a flood, so the
 * sooner the better (at 2,000 a flooded node's beats went silent for over a second on a busy machine).
 */
export const FLOOD_HANGUP = 500

type Reason = PubsubMessageRejectedError['reason']

export const PUBSUB_SIGNING_PREFIX = new TextEncoder().encode(PUBSUB_DOMAIN_TAG + '\0')

/** The bytes a pubsub signature covers: tag, NUL, canonical payload. */
export function pubsubSigningInput(payload: Uint8Array): Uint8Array {
  const m = new Uint8Array(PUBSUB_SIGNING_PREFIX.byteLength + payload.byteLength)
  m.set(PUBSUB_SIGNING_PREFIX, 0)
  m.set(payload, PUBSUB_SIGNING_PREFIX.byteLength)
  return m
}

/** Encodes and signs one broadcast message (wire: version | signature | canonical JSON payload). */
export function encodeBroadcast(signer: BroadcastSigner, topic: string, body: JsonValue, opts: { ttlMs?: number; now?: number; trace?: string } = {}): Uint8Array {
  const iat = opts.now ?? Date.now()
  const payload = canonicalJsonBytes({
    body,
    exp: iat + (opts.ttlMs ?? 60_000),
    from: signer.did,
    iat,
    nonce: randomBytes(12).toString('base64url'),
    topic,
    ...(opts.trace !== undefined ? { trace: opts.trace } : {}),
  })
  const sig = signer.sign(pubsubSigningInput(payload))
  const out = new Uint8Array(HEADER_BYTES + payload.byteLength)
  out[0] = PUBSUB_VERSION
  out.set(sig, 1)
  out.set(payload, HEADER_BYTES)
  return out
}

const decoder = new TextDecoder('utf-8', { fatal: true })

/**
 * Decodes one broadcast message for `topic` and runs every check but the signature's (size, version,
 * canonical JSON, fields, topic, time window): what admission runs before it spends a signature check.
 * Throws PubsubMessageRejectedError with the reason.
 */
export function parseBroadcast(data: Uint8Array, topic: string, o: { now: number; maxBytes: number; maxTtlMs: number; clockSkewMs: number }): Omit<BroadcastMessage, 'receivedFrom'> {
  const reject = (reason: Reason, msg: string): never => {
    throw new PubsubMessageRejectedError(reason, msg)
  }
  if (data.byteLength > o.maxBytes) reject('too-large', `message of ${data.byteLength} bytes exceeds ${o.maxBytes}`)
  if (data.byteLength <= HEADER_BYTES || data[0] !== PUBSUB_VERSION) reject('malformed', 'not a version 1 broadcast')
  const payload = data.subarray(HEADER_BYTES)
  let parsed: unknown
  try {
    const text = decoder.decode(payload)
    parsed = JSON.parse(text)
    if (canonicalJson(parsed) !== text) reject('malformed', 'payload is not canonical JSON')
  } catch (err) {
    if (err instanceof PubsubMessageRejectedError) throw err
    reject('malformed', `payload is not JSON: ${(err as Error).message}`)
  }
  const p = parsed as Record<string, unknown>
  if (typeof p !== 'object' || p === null || Array.isArray(p)) return reject('malformed', 'payload is not an object')
  const keys = Object.keys(p).sort().join(',')
  if (keys !== 'body,exp,from,iat,nonce,topic' && keys !== 'body,exp,from,iat,nonce,topic,trace') reject('malformed', `payload fields are ${keys}`)
  if (p.trace !== undefined && (typeof p.trace !== 'string' || !TRACEPARENT.test(p.trace))) reject('malformed', 'trace is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>)')
  const { from, iat, exp, nonce } = p
  if (typeof from !== 'string' || !isDidKey(from)) return reject('malformed', 'from is not a did:key')
  if (typeof iat !== 'number' || typeof exp !== 'number' || !Number.isSafeInteger(iat) || !Number.isSafeInteger(exp)) return reject('malformed', 'iat/exp are not integers')
  if (typeof nonce !== 'string') return reject('malformed', 'nonce is not a string')
  if (p.topic !== topic) reject('topic-mismatch', `signed for topic '${String(p.topic)}', arrived on '${topic}'`)
  if (exp <= o.now) reject('expired', `expired ${o.now - exp} ms ago`)
  if (iat > o.now + o.clockSkewMs) reject('not-yet-valid', 'issued in the future')
  if (exp - iat > o.maxTtlMs) reject('malformed', `lifetime ${exp - iat} ms exceeds ${o.maxTtlMs} ms`)
  return { topic, from, body: p.body as JsonValue, iat, exp, nonce, ...(typeof p.trace === 'string' ? { trace: p.trace } : {}) }
}

/** The one expensive check: the Ed25519 signature of a message `parseBroadcast` accepted. */
export function checkBroadcastSignature(data: Uint8Array, from: string): void {
  if (!verifyEd25519ForDid(from, pubsubSigningInput(data.subarray(HEADER_BYTES)), data.subarray(1, HEADER_BYTES))) {
    throw new PubsubMessageRejectedError('bad-signature', `signature does not verify for ${from}`)
  }
}

/**
 * Decodes and verifies one broadcast message for `topic`, without rate limiting: the cheap checks
 * (`parseBroadcast`), then the signature.
 */
export function verifyBroadcast(data: Uint8Array, topic: string, o: { now: number; maxBytes: number; maxTtlMs: number; clockSkewMs: number }): Omit<BroadcastMessage, 'receivedFrom'> {
  const v = parseBroadcast(data, topic, o)
  checkBroadcastSignature(data, v.from)
  return v
}

export function checkTopic(topic: string): string {
  if (typeof topic !== 'string' || !TOPIC_RE.test(topic)) {
    throw new InvalidTopicError(`topic '${String(topic)}' must match ${TOPIC_RE.source}`)
  }
  return topic
}

export class Broadcast {
  readonly #host: NoirHost
  readonly #signer: BroadcastSigner
  readonly #log: Log
  readonly #maxBytes: number
  readonly #maxTtlMs: number
  readonly #clockSkewMs: number
  readonly #rate: { perSecond: number; burst: number }
  readonly #now: () => number
  readonly #handlers = new Map<string, Set<BroadcastHandler>>()
  readonly #senders: BucketTable
  readonly #neighbours: BucketTable
  readonly #strangers: BucketTable
  readonly #isKnown: (did: string) => boolean
  readonly #refused: RejectionTally
  /** Messages that passed validation, keyed by their data buffer (gossipsub hands the same object on). */
  readonly #verified = new WeakMap<Uint8Array, Omit<BroadcastMessage, 'receivedFrom'>>()
  #started = false
  /** Counters for status and tests. */
  readonly stats = { published: 0, accepted: 0, rejected: {} as Record<string, number> }
  readonly #tracer: MessageTracer | undefined

  constructor(opts: BroadcastOptions) {
    this.#host = opts.host
    this.#signer = opts.signer
    this.#log = opts.log ?? silentLog
    this.#maxBytes = opts.maxBytes ?? 64 * 1024
    this.#maxTtlMs = opts.maxTtlMs ?? 10 * 60_000
    this.#clockSkewMs = opts.clockSkewMs ?? 30_000
    this.#rate = opts.rate ?? { perSecond: 20, burst: 100 }
    this.#now = opts.now ?? Date.now
    this.#senders = new BucketTable(this.#rate, 10_000)
    this.#neighbours = new BucketTable(opts.peerRate ?? DEFAULT_PEER_RATE, 4_096)
    this.#strangers = new BucketTable(opts.strangerRate ?? { perSecond: 20, burst: 50 }, 1)
    this.#isKnown = opts.isKnown ?? (() => false)
    this.#onFlood = opts.onFlood
    this.#tracer = opts.tracer
    this.#refused = new RejectionTally(this.#log, 'broadcasts refused (counts by reason)', 10_000, this.#now())
  }

  /** Refusals since start by reason, the sender table's size and the neighbours' gossipsub scores (status, tests). */
  admission(): { refused: Record<string, number>; senders: number; evicted: number; scores: PeerScoreSummary } {
    return { refused: { ...this.#refused.total }, senders: this.#senders.size, evicted: this.#senders.evicted, scores: peerScoreSummary(this.#host.services.pubsub) }
  }

  readonly #onMessage = (evt: CustomEvent<GossipsubMessage>): void => {
    const msg = evt.detail.msg
    const set = this.#handlers.get(msg.topic)
    if (!set || set.size === 0) return
    let v = this.#verified.get(msg.data)
    if (!v) {
      try {
        v = verifyBroadcast(msg.data, msg.topic, this.#limits())
      } catch {
        return
      }
    }
    const receivedFrom = evt.detail.propagationSource.toString()
    const out: BroadcastMessage = { ...v, receivedFrom }
    const deliver = (): void => {
      for (const h of set) {
        try {
          h(out)
        } catch (err) {
          this.#log.error('broadcast handler threw', { topic: msg.topic, ...errorFields(err) })
        }
      }
    }
    // handled inside a span of the publisher's trace: what the handlers send (a bid, a tell to an actor)
    // carries it on, so a deploy's trace follows its bid-request broadcast to every node that answered
    const parent = out.trace !== undefined && this.#tracer !== undefined ? this.#tracer.fromTraceparent(out.trace) : undefined
    if (parent !== undefined) this.#tracer!.handle(parent, `pubsub ${msg.topic}`, `${out.from}/pubsub/${msg.topic}`, deliver)
    else deliver()
  }

  async start(): Promise<void> {
    if (this.#started) return
    this.#host.services.pubsub.addEventListener('gossipsub:message', this.#onMessage)
    this.#started = true
  }

  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    this.#host.services.pubsub.removeEventListener('gossipsub:message', this.#onMessage)
    for (const topic of this.#handlers.keys()) {
      this.#host.services.pubsub.topicValidators.delete(topic)
      try {
        this.#host.services.pubsub.unsubscribe(topic)
      } catch {
        // host already stopped
      }
    }
    this.#handlers.clear()
  }

  /** Signs and publishes `body` on `topic`. Resolves with how many neighbours it was sent to. */
  async publish(topic: string, body: JsonValue, opts: { ttlMs?: number } = {}): Promise<{ recipients: number }> {
    checkTopic(topic)
    const ttlMs = Math.min(opts.ttlMs ?? 60_000, this.#maxTtlMs)
    const captured = this.#tracer?.capture()
    const trace = captured !== undefined ? this.#tracer!.traceparent(captured) : undefined
    const data = encodeBroadcast(this.#signer, topic, body, { ttlMs, now: this.#now(), ...(trace !== undefined ? { trace } : {}) })
    if (data.byteLength > this.#maxBytes) throw new MessageTooLargeError(`broadcast of ${data.byteLength} bytes exceeds ${this.#maxBytes}`)
    this.#ensureValidator(topic)
    const r = await this.#host.services.pubsub.publish(topic, data)
    this.stats.published++
    return { recipients: r.recipients.length }
  }

  /** Receives verified messages on `topic` (also joins the topic's mesh). Returns an unsubscribe function. */
  subscribe(topic: string, handler: BroadcastHandler): () => void {
    checkTopic(topic)
    let set = this.#handlers.get(topic)
    if (!set) {
      set = new Set()
      this.#handlers.set(topic, set)
      this.#ensureValidator(topic)
      this.#host.services.pubsub.subscribe(topic)
    }
    set.add(handler)
    return () => {
      const s = this.#handlers.get(topic)
      if (!s) return
      s.delete(handler)
      if (s.size === 0) {
        this.#handlers.delete(topic)
        this.#host.services.pubsub.unsubscribe(topic)
      }
    }
  }

  /** Topics this node subscribes to, with the peers gossipsub knows on each. */
  topics(): Array<{ topic: string; peers: number }> {
    return [...this.#handlers.keys()].map((topic) => ({ topic, peers: this.#host.services.pubsub.getSubscribers(topic).length }))
  }

  #limits(): { now: number; maxBytes: number; maxTtlMs: number; clockSkewMs: number } {
    return { now: this.#now(), maxBytes: this.#maxBytes, maxTtlMs: this.#maxTtlMs, clockSkewMs: this.#clockSkewMs }
  }

  #ensureValidator(topic: string): void {
    const validators = this.#host.services.pubsub.topicValidators
    if (validators.has(topic)) return
    // what this validator rejects penalises the relay on every topic it runs on, not only on ours
    scoreTopic(this.#host.services.pubsub, topic)
    validators.set(topic, (peer: PeerId, msg: Message) => this.#validateInTurn(peer, msg))
  }

  /** When the current turn of the event loop began validating (ms, performance.now), or undefined between turns. */
  #turnStartedAt: number | undefined = undefined

  /**
   * Validates now, or, once this turn of the event loop has spent TURN_BUDGET_MS validating, in the next turn
   * (gossipsub awaits the validator, and with awaitRpcHandler / awaitRpcMessageHandler nothing more of that
   * peer is read meanwhile). A flood's backlog is otherwise drained in one chain of microtasks: timers (our
   * liveness beats) and other peers' reads waited behind it for ~1 s (p2p/test/alone/flood-daemons.test.ts).
   */
  #validateInTurn(peer: PeerId, msg: Message): TopicValidatorResult | Promise<TopicValidatorResult> {
    const now = performance.now()
    if (this.#turnStartedAt === undefined) {
      this.#turnStartedAt = now
      setImmediate(() => {
        this.#turnStartedAt = undefined
      })
    } else if (now - this.#turnStartedAt > TURN_BUDGET_MS) {
      return new Promise((resolve) => setImmediate(() => resolve(this.#validateInTurn(peer, msg))))
    }
    return this.#validate(peer, msg)
  }

  /** Messages each neighbour sent over its budget (most recent neighbours; bounded like the buckets). */
  readonly #overBudgetCounts = new Map<string, number>()
  readonly #onFlood: ((peer: PeerId) => void) | undefined

  /** Counts a message over a neighbour's budget; every OVER_BUDGET_PER_PENALTY of them lower its score (P7). */
  #overBudget(peerId: PeerId): void {
    const peer = peerId.toString()
    const n = (this.#overBudgetCounts.get(peer) ?? 0) + 1
    this.#overBudgetCounts.delete(peer)
    this.#overBudgetCounts.set(peer, n)
    if (this.#overBudgetCounts.size > 4_096) this.#overBudgetCounts.delete(this.#overBudgetCounts.keys().next().value!)
    if (n % OVER_BUDGET_PER_PENALTY === 0) penalise(this.#host.services.pubsub, peer)
    if (n >= FLOOD_HANGUP && this.#onFlood !== undefined) {
      this.#overBudgetCounts.delete(peer)
      this.#refused.add('flooder-hung-up', this.#now())
      this.#onFlood(peerId)
    }
  }

  /**
   * Gossipsub topic validator: runs before delivery and before relaying. Cheap checks first (the neighbour's
   * budget, the message's structure and time window, the strangers' shared budget), the signature last.
   * Reject lowers the relaying peer's score (P4, p2p/pubsub-score.ts: three take it to the graylist), so it
   * is kept for what no honest relay hands on (every such check is deterministic: the relay ran it too);
   * budgets and time windows Ignore, since an honest relay may be chatty or late.
   */
  #validate(peer: PeerId, msg: Message): TopicValidatorResult {
    const now = this.#now()
    const refuse = (reason: string, result: TopicValidatorResult): TopicValidatorResult => {
      this.stats.rejected[reason] = (this.stats.rejected[reason] ?? 0) + 1
      this.#refused.add(reason, now)
      return result
    }
    if (!this.#neighbours.take(peer.toString(), now)) {
      this.#overBudget(peer)
      return refuse('peer-budget', TopicValidatorResult.Ignore)
    }
    let v: Omit<BroadcastMessage, 'receivedFrom'>
    try {
      v = parseBroadcast(msg.data, msg.topic, this.#limits())
    } catch (err) {
      const reason: Reason = err instanceof PubsubMessageRejectedError ? err.reason : 'malformed'
      // Expired / out-of-window messages may be honest but late: ignore them without penalising the relay.
      return refuse(reason, reason === 'expired' || reason === 'not-yet-valid' ? TopicValidatorResult.Ignore : TopicValidatorResult.Reject)
    }
    const own = v.from === this.#signer.did
    const known = own || this.#isKnown(v.from)
    // Strangers share one budget, spent before their signature is checked: fresh keys buy nothing.
    if (!known && !this.#strangers.take('*', now)) return refuse('stranger-budget', TopicValidatorResult.Ignore)
    try {
      checkBroadcastSignature(msg.data, v.from)
    } catch {
      return refuse('bad-signature', TopicValidatorResult.Reject)
    }
    if (known && !own && !this.#senders.take(v.from, now)) return refuse('rate-limited', TopicValidatorResult.Ignore)
    this.stats.accepted++
    this.#verified.set(msg.data, v)
    return TopicValidatorResult.Accept
  }
}

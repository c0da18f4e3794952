// The one signed message type (spec/envelope.md). Wire = a small binary header (version, signature kind,
// the 64-byte Ed25519 signature, for a batch the leaf count, index and Merkle path) followed by the RFC 8785
// canonical JSON payload. The signature covers a domain tag and the payload bytes as received, so the hot
// path never re-encodes to verify; the decoder refuses payloads that are not exactly canonical.
import { randomFillSync, randomUUID } from 'node:crypto'
import { canonicalJson, type JsonValue } from './canonical-json.ts'
import { parseAddress, isAddress } from './address.ts'
import {
  BadSignatureError,
  EnvelopeTooLargeError,
  ExpiredEnvelopeError,
  IdentityError,
  InvalidAddressError,
  InvalidEnvelopeInitError,
  MalformedEnvelopeError,
  NonCanonicalValueError,
  NotYetValidEnvelopeError,
  ReplayedEnvelopeError,
  UnknownKeyError,
  InvalidDidError,
} from './errors.ts'
import { verifyEd25519ForDid, type NodeKey } from './keys.ts'
import { LruCache } from './lru.ts'
import { buildTree, leafHash, MAX_BATCH_LEAVES, pathFromProof, proofLength, type VerifiedPath } from './merkle.ts'

export type { JsonValue } from './canonical-json.ts'

export interface Envelope {
  v: 1
  id: string
  /** Sender address: its DID plus an optional actor path. */
  from: string
  /** Recipient address. */
  to: string
  /** Behavior path, e.g. /noir/alloc/status. */
  behavior: string
  body: JsonValue
  /** Issued at, ms since the epoch. */
  iat: number
  /** Expires at, ms since the epoch. */
  exp: number
  nonce: string
  replyTo?: string
  /** Id of the envelope this one answers. */
  inReplyTo?: string
  /** Capability JWTs. */
  proofs?: string[]
}

export interface EnvelopeInit {
  from: string
  to: string
  behavior: string
  body: JsonValue
  /** Lifetime; default DEFAULT_TTL_MS. */
  ttlMs?: number
  replyTo?: string
  inReplyTo?: string
  proofs?: string[]
  /** Default: a random UUID. */
  id?: string
  /** Issue time in ms; default Date.now(). */
  now?: number
  /** Default: 16 random bytes, base64url. Tests and vectors set it. */
  nonce?: string
}

export interface SignedEnvelope {
  envelope: Envelope
  /** Wire encoding. */
  bytes: Uint8Array
}

// ---- constants (spec/envelope.md) ---------------------------------------------------------------------------

export const WIRE_VERSION = 0x01
export const KIND_SINGLE = 0x01
export const KIND_BATCH = 0x02
export const TAG_SINGLE = 'noir:msg:v1'
export const TAG_BATCH = 'noir:msg-batch:v1'
export const DEFAULT_TTL_MS = 30_000
export const DEFAULT_MAX_BYTES = 1024 * 1024
export const DEFAULT_CLOCK_SKEW_MS = 30_000
export const DEFAULT_MAX_TTL_MS = 10 * 60_000
export const DEFAULT_REPLAY_CACHE_SIZE = 250_000
const SINGLE_HEADER = 2 + 64
const BATCH_FIXED_HEADER = 2 + 64 + 4 + 4

const te = new TextEncoder()
const td = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })
/** ASCII tag then a 0x00 separator. */
const SINGLE_PREFIX = te.encode(TAG_SINGLE + '\0')
const BATCH_PREFIX = te.encode(TAG_BATCH + '\0')

const ID_RE = /^[\x21-\x7e]{1,128}$/
const NONCE_RE = /^[A-Za-z0-9_-]{8,64}$/
const BEHAVIOR_RE = /^(\/[A-Za-z0-9._~:@+-]+)+$/
const MAX_BEHAVIOR = 256
const MAX_PROOFS = 16
const ALLOWED_KEYS = new Set(['v', 'id', 'from', 'to', 'behavior', 'body', 'iat', 'exp', 'nonce', 'replyTo', 'inReplyTo', 'proofs'])

// ---- nonces --------------------------------------------------------------------------------------------------

const pool = Buffer.alloc(16 * 256)
let poolAt = pool.length
function randomNonce(): string {
  if (poolAt + 16 > pool.length) {
    randomFillSync(pool)
    poolAt = 0
  }
  const s = pool.toString('base64url', poolAt, poolAt + 16)
  poolAt += 16
  return s
}

// ---- building ------------------------------------------------------------------------------------------------

function fail(message: string): never {
  throw new MalformedEnvelopeError(message)
}

/** Checks the structure of a parsed payload; `E` chooses the error (malformed on receive, init on send). */
function checkEnvelope(o: unknown, E: new (m: string) => IdentityError): Envelope {
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new E('envelope payload is not a JSON object')
  const r = o as Record<string, unknown>
  for (const k of Object.keys(r)) if (!ALLOWED_KEYS.has(k)) throw new E(`unknown envelope field ${JSON.stringify(k.slice(0, 40))}`)
  if (r.v !== 1) throw new E('envelope version must be 1')
  if (typeof r.id !== 'string' || !ID_RE.test(r.id)) throw new E('id must be 1-128 printable ASCII characters')
  if (typeof r.from !== 'string') throw new E('from must be an address string')
  try {
    parseAddress(r.from)
  } catch {
    throw new UnknownKeyError('from is not a did:key address (did:key:z6Mk...[/path]) whose key can be resolved')
  }
  if (typeof r.to !== 'string' || !isAddress(r.to)) throw new E('to must be an address (did:key:z6Mk...[/path])')
  if (typeof r.behavior !== 'string' || r.behavior.length > MAX_BEHAVIOR || !BEHAVIOR_RE.test(r.behavior)) {
    throw new E('behavior must be a path such as /noir/alloc/status')
  }
  if (!('body' in r) || r.body === undefined) throw new E('body is required (null is allowed)')
  if (!Number.isSafeInteger(r.iat) || (r.iat as number) < 0) throw new E('iat must be a non-negative integer (ms)')
  if (!Number.isSafeInteger(r.exp) || (r.exp as number) <= (r.iat as number)) throw new E('exp must be an integer (ms) after iat')
  if (typeof r.nonce !== 'string' || !NONCE_RE.test(r.nonce)) throw new E('nonce must be 8-64 base64url characters')
  if (r.replyTo !== undefined && (typeof r.replyTo !== 'string' || !isAddress(r.replyTo))) throw new E('replyTo must be an address')
  if (r.inReplyTo !== undefined && (typeof r.inReplyTo !== 'string' || !ID_RE.test(r.inReplyTo))) throw new E('inReplyTo must be an envelope id')
  if (r.proofs !== undefined) {
    if (!Array.isArray(r.proofs) || r.proofs.length > MAX_PROOFS) throw new E(`proofs must be an array of at most ${MAX_PROOFS} tokens`)
    for (const p of r.proofs) if (typeof p !== 'string' || p.length === 0) throw new E('each proof is a non-empty JWT string')
  }
  return r as unknown as Envelope
}

function envelopeFromInit(key: NodeKey, init: EnvelopeInit): Envelope {
  if (typeof init !== 'object' || init === null) throw new InvalidEnvelopeInitError('envelope init must be an object')
  let fromDid: string
  try {
    fromDid = parseAddress(init.from).did
  } catch (err) {
    if (err instanceof InvalidAddressError) throw new InvalidEnvelopeInitError(`from: ${err.message}`)
    throw err
  }
  if (fromDid !== key.did) throw new InvalidEnvelopeInitError(`from must be an address of the signing key's DID (${key.did})`)
  const iat = init.now ?? Date.now()
  const ttl = init.ttlMs ?? DEFAULT_TTL_MS
  if (!Number.isSafeInteger(ttl) || ttl <= 0) throw new InvalidEnvelopeInitError('ttlMs must be a positive integer')
  const env: Envelope = {
    v: 1,
    id: init.id ?? randomUUID(),
    from: init.from,
    to: init.to,
    behavior: init.behavior,
    body: init.body,
    iat,
    exp: iat + ttl,
    nonce: init.nonce ?? randomNonce(),
  }
  if (init.replyTo !== undefined) env.replyTo = init.replyTo
  if (init.inReplyTo !== undefined) env.inReplyTo = init.inReplyTo
  if (init.proofs !== undefined) env.proofs = init.proofs
  checkEnvelope(env, InvalidEnvelopeInitError)
  return env
}

/**
 * RFC 8785 text of a structurally checked envelope. Same output as canonicalJson(env), faster: the top-level
 * members are written in their sorted order, and checkEnvelope already limited every top-level string to
 * printable ASCII (so JSON.stringify is its canonical form) and iat/exp to safe integers.
 */
function envelopeText(e: Envelope): string {
  let s = '{"behavior":' + JSON.stringify(e.behavior) + ',"body":' + canonicalJson(e.body) + ',"exp":' + String(e.exp) +
    ',"from":' + JSON.stringify(e.from) + ',"iat":' + String(e.iat) + ',"id":' + JSON.stringify(e.id)
  if (e.inReplyTo !== undefined) s += ',"inReplyTo":' + JSON.stringify(e.inReplyTo)
  s += ',"nonce":' + JSON.stringify(e.nonce)
  if (e.proofs !== undefined) s += ',"proofs":' + canonicalJson(e.proofs)
  if (e.replyTo !== undefined) s += ',"replyTo":' + JSON.stringify(e.replyTo)
  return s + ',"to":' + JSON.stringify(e.to) + ',"v":1}'
}

function payloadOf(env: Envelope): Uint8Array {
  try {
    return te.encode(envelopeText(env))
  } catch (err) {
    if (err instanceof NonCanonicalValueError) throw new InvalidEnvelopeInitError(`body: ${err.message}`)
    throw err
  }
}

function withPrefix(prefix: Uint8Array, rest: Uint8Array): Uint8Array {
  const m = new Uint8Array(prefix.length + rest.length)
  m.set(prefix, 0)
  m.set(rest, prefix.length)
  return m
}

/** Signs one envelope. `init.from` must be an address of `key.did`. Throws InvalidEnvelopeInitError. */
export function signEnvelope(key: NodeKey, init: EnvelopeInit): SignedEnvelope {
  const envelope = envelopeFromInit(key, init)
  const payload = payloadOf(envelope)
  const sig = key.sign(withPrefix(SINGLE_PREFIX, payload))
  const bytes = new Uint8Array(SINGLE_HEADER + payload.length)
  bytes[0] = WIRE_VERSION
  bytes[1] = KIND_SINGLE
  bytes.set(sig, 2)
  bytes.set(payload, SINGLE_HEADER)
  return { envelope, bytes }
}

function batchMessage(count: number, root: Uint8Array): Uint8Array {
  const m = new Uint8Array(BATCH_PREFIX.length + 4 + 32)
  m.set(BATCH_PREFIX, 0)
  new DataView(m.buffer).setUint32(BATCH_PREFIX.length, count)
  m.set(root, BATCH_PREFIX.length + 4)
  return m
}

/**
 * Signs many envelopes with ONE Ed25519 signature over a Merkle root. Each result carries the root signature
 * and its own Merkle path, so it verifies on its own. At most MAX_BATCH_LEAVES per call.
 */
export function signEnvelopeBatch(key: NodeKey, inits: EnvelopeInit[]): SignedEnvelope[] {
  if (!Array.isArray(inits) || inits.length === 0) return []
  if (inits.length > MAX_BATCH_LEAVES) throw new InvalidEnvelopeInitError(`a batch holds at most ${MAX_BATCH_LEAVES} envelopes`)
  const envelopes = inits.map((i) => envelopeFromInit(key, i))
  const payloads = envelopes.map(payloadOf)
  const { root, proofs } = buildTree(payloads.map(leafHash))
  const count = envelopes.length
  const sig = key.sign(batchMessage(count, root))
  return envelopes.map((envelope, index) => {
    const payload = payloads[index]!
    const proof = proofs[index]!
    const bytes = new Uint8Array(BATCH_FIXED_HEADER + proof.length * 32 + payload.length)
    const dv = new DataView(bytes.buffer)
    bytes[0] = WIRE_VERSION
    bytes[1] = KIND_BATCH
    bytes.set(sig, 2)
    dv.setUint32(66, count)
    dv.setUint32(70, index)
    let at = BATCH_FIXED_HEADER
    for (const h of proof) {
      bytes.set(h, at)
      at += 32
    }
    bytes.set(payload, at)
    return { envelope, bytes }
  })
}

// ---- decoding ------------------------------------------------------------------------------------------------

/** Everything the wire holds, parsed and checked for structure (not for signature or time). */
export interface DecodedWire {
  kind: typeof KIND_SINGLE | typeof KIND_BATCH
  signature: Uint8Array
  /** Batch only. */
  count: number
  index: number
  proof: Uint8Array[]
  payload: Uint8Array
  envelope: Envelope
}

export function decodeWire(bytes: Uint8Array, maxBytes = DEFAULT_MAX_BYTES): DecodedWire {
  if (!(bytes instanceof Uint8Array)) fail('envelope bytes must be a Uint8Array')
  if (bytes.length > maxBytes) throw new EnvelopeTooLargeError(`envelope is ${bytes.length} bytes; the limit is ${maxBytes}`)
  if (bytes.length < SINGLE_HEADER + 2) fail('envelope is shorter than its header')
  if (bytes[0] !== WIRE_VERSION) fail(`unknown wire version ${bytes[0]}`)
  const kind = bytes[1]
  const signature = bytes.subarray(2, 66)
  let count = 1
  let index = 0
  const proof: Uint8Array[] = []
  let at = SINGLE_HEADER
  if (kind === KIND_BATCH) {
    if (bytes.length < BATCH_FIXED_HEADER + 2) fail('batch envelope is shorter than its header')
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    count = dv.getUint32(66)
    index = dv.getUint32(70)
    if (count < 1 || count > MAX_BATCH_LEAVES) fail(`batch count ${count} outside 1..${MAX_BATCH_LEAVES}`)
    if (index >= count) fail(`batch index ${index} outside the batch of ${count}`)
    const n = proofLength(index, count)
    at = BATCH_FIXED_HEADER
    if (bytes.length < at + n * 32 + 2) fail('batch envelope is shorter than its Merkle path')
    for (let k = 0; k < n; k++) {
      proof.push(bytes.subarray(at, at + 32))
      at += 32
    }
  } else if (kind !== KIND_SINGLE) {
    fail(`unknown signature kind ${kind}`)
  }
  const payload = bytes.subarray(at)
  let text: string
  try {
    text = td.decode(payload)
  } catch {
    fail('payload is not valid UTF-8')
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    fail('payload is not JSON')
  }
  const envelope = checkEnvelope(parsed, MalformedEnvelopeError)
  let canonical: string
  try {
    canonical = envelopeText(envelope)
  } catch (err) {
    fail(`payload has no canonical form: ${err instanceof Error ? err.message : String(err)}`)
  }
  if (canonical !== text) fail('payload is not RFC 8785 canonical JSON')
  return { kind: kind as DecodedWire['kind'], signature, count, index, proof, payload, envelope }
}

/** Decodes and checks structure only (no signature, time or replay check). */
export function decodeEnvelope(bytes: Uint8Array, opts?: { maxBytes?: number }): SignedEnvelope {
  return { envelope: decodeWire(bytes, opts?.maxBytes ?? DEFAULT_MAX_BYTES).envelope, bytes }
}

/** The DID of an address (the part before the first '/'). */
export function didOf(address: string): string {
  const slash = address.indexOf('/')
  return slash < 0 ? address : address.slice(0, slash)
}

// ---- replay cache ---------------------------------------------------------------------------------------------

/**
 * Remembers accepted (sender DID, id, nonce) until the envelope could no longer pass the expiry check.
 * Bounded: when full, the oldest entry is evicted and its deadline becomes a floor; an unseen envelope whose
 * deadline is not after the floor cannot be proven fresh and is refused (deny by default).
 */
export class ReplayCache {
  readonly #max: number
  readonly #entries = new Map<string, number>()
  #floor = -Infinity
  #front = Infinity

  constructor(max = DEFAULT_REPLAY_CACHE_SIZE) {
    this.#max = Math.max(1, max)
  }

  get size(): number {
    return this.#entries.size
  }

  /** Records the key; throws ReplayedEnvelopeError if it was seen or cannot be ruled out. */
  admit(key: string, deadline: number, now: number): void {
    // drop expired entries at the front (entries arrive roughly in deadline order); #front is the front
    // entry's deadline, so the common case (nothing expired) costs one comparison
    if (this.#front < now) {
      for (const [k, d] of this.#entries) {
        if (d >= now) break
        this.#entries.delete(k)
      }
      this.#front = this.#frontDeadline()
    }
    if (this.#entries.has(key)) throw new ReplayedEnvelopeError('envelope already received (same sender, id and nonce)')
    if (deadline <= this.#floor) {
      throw new ReplayedEnvelopeError('replay cache is saturated: an envelope expiring this early cannot be proven fresh; resend with a later exp')
    }
    if (this.#entries.size >= this.#max) {
      const first = this.#entries.entries().next().value as [string, number]
      this.#entries.delete(first[0])
      if (first[1] > this.#floor) this.#floor = first[1]
      this.#front = this.#frontDeadline()
    }
    if (this.#entries.size === 0) this.#front = deadline
    this.#entries.set(key, deadline)
  }

  #frontDeadline(): number {
    const first = this.#entries.values().next()
    return first.done === true ? Infinity : first.value
  }
}

// ---- verifier ---------------------------------------------------------------------------------------------------

export interface EnvelopeVerifierOptions {
  /** Largest accepted wire size; default 1 MiB. */
  maxBytes?: number
  /** Allowance for clocks that disagree; default 30 s. */
  clockSkewMs?: number
  /** Longest accepted lifetime (exp - iat); default 10 min. Bounds how long replay entries live. */
  maxTtlMs?: number
  /** Replay cache entries; default 250,000 (~50 MB at most). Size it to rate x (lifetime + skew). */
  replayCacheSize?: number
  /** Verified batch roots remembered; default 4096. */
  batchCacheSize?: number
  now?: () => number
}

/** A batch whose root signature verified, with the path of the last leaf accepted under it. */
interface BatchEntry {
  did: string
  count: number
  signature: Uint8Array
  path: VerifiedPath
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

export class EnvelopeVerifier {
  readonly #maxBytes: number
  readonly #skew: number
  readonly #maxTtl: number
  readonly #now: () => number
  readonly #replay: ReplayCache
  /** Per verified batch (sender DID, count, signature): the path of the last leaf accepted under its root. */
  readonly #batches: LruCache<string, BatchEntry>
  /** The batch of the last batch envelope accepted (checked before the LRU: batches arrive in runs). */
  #lastBatch: BatchEntry | undefined
  #signatureChecks = 0

  constructor(opts: EnvelopeVerifierOptions = {}) {
    this.#maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES
    this.#skew = opts.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS
    this.#maxTtl = opts.maxTtlMs ?? DEFAULT_MAX_TTL_MS
    this.#now = opts.now ?? Date.now
    this.#replay = new ReplayCache(opts.replayCacheSize ?? DEFAULT_REPLAY_CACHE_SIZE)
    this.#batches = new LruCache(opts.batchCacheSize ?? 4096)
  }

  /** Ed25519 verifications performed so far (a batch costs one, however many of its envelopes arrive). */
  get signatureChecks(): number {
    return this.#signatureChecks
  }

  /**
   * decode (bounded) -> signature (single, or batch with cached verified roots) -> expiry -> replay.
   * Returns the envelope or throws a typed IdentityError.
   */
  verify(bytes: Uint8Array): Envelope {
    const w = decodeWire(bytes, this.#maxBytes)
    const env = w.envelope
    const did = didOf(env.from)
    this.#checkSignature(did, w)
    const now = this.#now()
    if (env.exp - env.iat > this.#maxTtl) throw new MalformedEnvelopeError(`envelope lifetime ${env.exp - env.iat} ms exceeds ${this.#maxTtl} ms`)
    if (now > env.exp + this.#skew) throw new ExpiredEnvelopeError(`envelope ${env.id} expired at ${new Date(env.exp).toISOString()}`)
    if (env.iat > now + this.#skew) throw new NotYetValidEnvelopeError(`envelope ${env.id} is issued in the future (${new Date(env.iat).toISOString()})`)
    this.#replay.admit(`${did}\n${env.id}\n${env.nonce}`, env.exp + this.#skew, now)
    return env
  }

  #checkSignature(did: string, w: DecodedWire): void {
    let ok: boolean
    try {
      if (w.kind === KIND_SINGLE) {
        this.#signatureChecks++
        ok = verifyEd25519ForDid(did, withPrefix(SINGLE_PREFIX, w.payload), w.signature)
      } else {
        // A leaf whose path meets the remembered path of an earlier leaf under the same verified root needs
        // only the hashes up to that meeting point (about two per envelope for a batch arriving in order).
        const sig = w.signature
        const last = this.#lastBatch
        let entry: BatchEntry | undefined
        if (last !== undefined && last.did === did && last.count === w.count && sameBytes(last.signature, sig)) entry = last
        else {
          entry = this.#batches.get(`${did}|${w.count}|${Buffer.from(sig.buffer, sig.byteOffset, sig.byteLength).toString('latin1')}`)
        }
        const { path, joined } = pathFromProof(leafHash(w.payload), w.index, w.count, w.proof, entry?.path)
        ok = joined
        if (!ok) {
          this.#signatureChecks++
          ok = verifyEd25519ForDid(did, batchMessage(w.count, path.nodes[path.nodes.length - 1]!), sig)
          if (ok) {
            entry = { did, count: w.count, signature: Uint8Array.prototype.slice.call(sig), path }
            this.#batches.set(`${did}|${w.count}|${Buffer.from(sig.buffer, sig.byteOffset, sig.byteLength).toString('latin1')}`, entry)
          }
        }
        if (ok && entry !== undefined) {
          entry.path = path
          this.#lastBatch = entry
        }
      }
    } catch (err) {
      if (err instanceof InvalidDidError) throw new UnknownKeyError(`cannot resolve the sender's key: ${err.message}`)
      throw err
    }
    if (!ok) throw new BadSignatureError(`signature of envelope ${w.envelope.id} does not verify with ${did}`)
  }
}

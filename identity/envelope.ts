// The one signed message type (spec/envelope.md). Wire = a small binary header (version, signature kind,
// the 64-byte Ed25519 signature, for a batch the leaf count, index and Merkle path) followed by the RFC 8785
// canonical JSON payload. The signature covers a domain tag and the payload bytes as received, so the hot
// path never re-encodes to verify; the decoder refuses payloads that are not exactly canonical.
import { randomFillSync } from 'node:crypto'
import { canonicalJson, quoteJson, type JsonValue } from './canonical-json.ts'
import { parseCanonicalEnvelope } from './canonical-envelope-parser.ts'
import { makeEnvelope } from './envelope-object.ts'
import { parseAddress, isAddress } from './address.ts'
import {
  EnvelopeTooLargeError,
  ExpiredEnvelopeError,
  IdentityError,
  InvalidAddressError,
  InvalidEnvelopeInitError,
  MalformedEnvelopeError,
  NonCanonicalValueError,
  NotYetValidEnvelopeError,
  UnknownKeyError,
} from './errors.ts'
import type { NodeKey } from './keys.ts'
import { buildTree, leafHash, MAX_BATCH_LEAVES } from './merkle.ts'
import {
  DEFAULT_MAX_BYTES,
  KIND_SINGLE,
  SINGLE_HEADER,
  SINGLE_PREFIX,
  WIRE_VERSION,
  batchMessage,
  batchWire,
  decodeWireHeader,
  withPrefix,
  type WireHeader,
} from './envelope-wire.ts'
import { SignatureChecker } from './signature-checker.ts'
import { ReplayCache } from './replay-cache.ts'

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
  /** W3C trace context `traceparent` of the sender's span (spec/observability.md); signed like every field. */
  trace?: string
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
  /** A W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`), when the message belongs to a trace. */
  trace?: string
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

export { WIRE_VERSION, KIND_SINGLE, KIND_BATCH, TAG_SINGLE, TAG_BATCH, DEFAULT_MAX_BYTES } from './envelope-wire.ts'
export const DEFAULT_TTL_MS = 30_000
export const DEFAULT_CLOCK_SKEW_MS = 30_000
export const DEFAULT_MAX_TTL_MS = 10 * 60_000
export const DEFAULT_REPLAY_CACHE_SIZE = 250_000

const te = new TextEncoder()
const td = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

// unbounded repetition plus a length check: `{1,128}` made the regex twice as slow
const ID_RE = /^[\x21-\x7e]+$/
const MAX_ID = 128

function isId(s: unknown): boolean {
  return typeof s === 'string' && s.length <= MAX_ID && ID_RE.test(s)
}
const NONCE_RE = /^[A-Za-z0-9_-]{8,64}$/
const BEHAVIOR_RE = /^(\/[A-Za-z0-9._~:@+-]+)+$/
const MAX_BEHAVIOR = 256
const MAX_PROOFS = 16
const ALLOWED_KEYS = new Set(['v', 'id', 'from', 'to', 'behavior', 'body', 'iat', 'exp', 'nonce', 'replyTo', 'inReplyTo', 'proofs', 'trace'])
// W3C Trace Context version 00: trace id and span id not all zeros (checked apart)
const TRACEPARENT_RE = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/

function isTraceparent(v: unknown): boolean {
  return typeof v === 'string' && TRACEPARENT_RE.test(v) && !v.startsWith('00-00000000000000000000000000000000-') && v.slice(36, 52) !== '0000000000000000'
}

// ---- nonces and ids ------------------------------------------------------------------------------------------

// Both drawn from one pool of random bytes, refilled 4 KiB at a time.
const pool = Buffer.alloc(16 * 256)
let poolAt = pool.length

/** The offset in `pool` of 16 random bytes not handed out before. */
function fresh16(): number {
  if (poolAt + 16 > pool.length) {
    randomFillSync(pool)
    poolAt = 0
  }
  const at = poolAt
  poolAt += 16
  return at
}

function randomNonce(): string {
  const at = fresh16()
  return pool.toString('base64url', at, at + 16)
}

const HEX = Buffer.from('0123456789abcdef', 'latin1')
const uuidText = Buffer.alloc(36, 0x2d) // the dashes stay where they are

/**
 * A random (version 4) UUID: an envelope's default id. Written into a buffer and read back as one flat string:
 * node:crypto's randomUUID builds it by concatenation, and the rope had to be flattened (~80 ns) before the id
 * could be checked.
 */
export function randomEnvelopeId(): string {
  const at = fresh16()
  pool[at + 6] = (pool[at + 6]! & 0x0f) | 0x40
  pool[at + 8] = (pool[at + 8]! & 0x3f) | 0x80
  let o = 0
  for (let k = 0; k < 16; k++) {
    if (k === 4 || k === 6 || k === 8 || k === 10) o++
    const b = pool[at + k]!
    uuidText[o++] = HEX[b >>> 4]!
    uuidText[o++] = HEX[b & 15]!
  }
  return uuidText.toString('latin1', 0, 36)
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
  return checkFields(r, E)
}

/** checkEnvelope's rules for each field, for an object holding no field but the envelope's. */
function checkFields(r: Record<string, unknown>, E: new (m: string) => IdentityError): Envelope {
  if (r.v !== 1) throw new E('envelope version must be 1')
  if (!isId(r.id)) throw new E('id must be 1-128 printable ASCII characters')
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
  if (r.inReplyTo !== undefined && !isId(r.inReplyTo)) throw new E('inReplyTo must be an envelope id')
  if (r.proofs !== undefined) {
    if (!Array.isArray(r.proofs) || r.proofs.length > MAX_PROOFS) throw new E(`proofs must be an array of at most ${MAX_PROOFS} tokens`)
    for (const p of r.proofs) if (typeof p !== 'string' || p.length === 0) throw new E('each proof is a non-empty JWT string')
  }
  if (r.trace !== undefined && !isTraceparent(r.trace)) throw new E('trace must be a W3C traceparent: 00-<32 hex>-<16 hex>-<2 hex>, ids not all zeros')
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
  const env = makeEnvelope(init.behavior, init.body, iat + ttl, init.from, iat, init.id ?? randomEnvelopeId(), init.inReplyTo, init.nonce ?? randomNonce(), init.proofs, init.replyTo, init.to, init.trace)
  // built here from the allowed fields only: the field rules alone
  return checkFields(env, InvalidEnvelopeInitError)
}

/**
 * RFC 8785 text of a structurally checked envelope. Same output as canonicalJson(env), faster: the top-level
 * members are written in their sorted order; checkFields already limited behavior, nonce and the addresses to
 * characters that need no escape (so quotes around them are their canonical form) and iat/exp to safe
 * integers; ids (any printable ASCII, quotes and backslashes included) go through quoteJson.
 */
function envelopeText(e: Envelope): string {
  let s = '{"behavior":"' + e.behavior + '","body":' + canonicalJson(e.body) + ',"exp":' + expText.of(e.exp) +
    ',"from":"' + e.from + '","iat":' + iatText.of(e.iat) + ',"id":' + quoteJson(e.id)
  if (e.inReplyTo !== undefined) s += ',"inReplyTo":' + quoteJson(e.inReplyTo)
  s += ',"nonce":"' + e.nonce + '"'
  if (e.proofs !== undefined) s += ',"proofs":' + canonicalJson(e.proofs)
  if (e.replyTo !== undefined) s += ',"replyTo":"' + e.replyTo + '"'
  s += ',"to":"' + e.to + '"'
  if (e.trace !== undefined) s += ',"trace":"' + e.trace + '"'
  return s + ',"v":1}'
}

/**
 * String(n) of the number last asked for, remembered: the envelopes a node sends in one burst share their
 * iat (and exp) millisecond, and a 13-digit number costs ~150 ns to format.
 */
class LastNumberText {
  #n = Number.NaN
  #text = ''

  of(n: number): string {
    if (n !== this.#n) {
      this.#n = n
      this.#text = String(n)
    }
    return this.#text
  }
}

const iatText = new LastNumberText()
const expText = new LastNumberText()

/** envelopeText of an envelope being built: a body with no canonical form is the init's fault. */
function initText(env: Envelope): string {
  try {
    return envelopeText(env)
  } catch (err) {
    if (err instanceof NonCanonicalValueError) throw new InvalidEnvelopeInitError(`body: ${err.message}`)
    throw err
  }
}

function payloadOf(env: Envelope): Uint8Array {
  return te.encode(initText(env))
}

/**
 * The envelope `init` describes and its canonical payload bytes, unsigned: for a sealed stream
 * (identity/sealed-stream.ts), whose batch signature follows the payloads. Throws InvalidEnvelopeInitError.
 */
export function prepareEnvelope(key: NodeKey, init: EnvelopeInit): { envelope: Envelope; payload: Uint8Array } {
  const envelope = envelopeFromInit(key, init)
  return { envelope, payload: payloadOf(envelope) }
}

/**
 * `prepareEnvelope` with the payload written after `headerBytes` left free in one buffer (a pooled Buffer for
 * small envelopes): the frame a sealed stream sends, without a second allocation and copy. `payload` is the
 * view of `frame` after the header; the header bytes are left for the caller to fill.
 */
export function prepareEnvelopeFrame(key: NodeKey, init: EnvelopeInit, headerBytes: number): { envelope: Envelope; frame: Uint8Array; payload: Uint8Array } {
  const envelope = envelopeFromInit(key, init)
  const text = initText(envelope)
  const n = Buffer.byteLength(text, 'utf8')
  const frame = Buffer.allocUnsafe(headerBytes + n)
  frame.write(text, headerBytes, n, 'utf8')
  return { envelope, frame, payload: frame.subarray(headerBytes) }
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
  return envelopes.map((envelope, index) => ({ envelope, bytes: batchWire(sig, count, index, proofs[index]!, payloads[index]!) }))
}

// ---- decoding ------------------------------------------------------------------------------------------------

/** Everything the wire holds, parsed and checked for structure (not for signature or time). */
export interface DecodedWire extends WireHeader {
  envelope: Envelope
}

export function decodeWire(bytes: Uint8Array, maxBytes = DEFAULT_MAX_BYTES): DecodedWire {
  const header = decodeWireHeader(bytes, maxBytes)
  return { ...header, envelope: decodePayload(header.payload) }
}

/**
 * An envelope from its canonical JSON payload bytes: UTF-8, JSON, the field rules, and the bytes must be its
 * exact canonical encoding. Throws MalformedEnvelopeError (UnknownKeyError for a `from` that is not a did:key).
 */
export function decodePayload(payload: Uint8Array): Envelope {
  let text: string
  try {
    text = td.decode(payload)
  } catch {
    fail('payload is not valid UTF-8')
  }
  // the common case: already canonical, parsed and proven so in one pass (identity/canonical-envelope-parser.ts)
  const fast = parseCanonicalEnvelope(text)
  if (fast !== undefined) return checkFields(fast, MalformedEnvelopeError)
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch {
    fail('payload is not JSON')
  }
  const checked = checkEnvelope(parsed, MalformedEnvelopeError)
  // rebuilt in canonical member order: the one object shape every envelope has (identity/envelope-object.ts)
  const e = checked as unknown as Record<string, unknown>
  const envelope = makeEnvelope(e.behavior, e.body, e.exp, e.from, e.iat, e.id, e.inReplyTo, e.nonce, e.proofs, e.replyTo, e.to, e.trace) as unknown as Envelope
  let canonical: string
  try {
    canonical = envelopeText(envelope)
  } catch (err) {
    fail(`payload has no canonical form: ${err instanceof Error ? err.message : String(err)}`)
  }
  if (canonical !== text) fail('payload is not RFC 8785 canonical JSON')
  return envelope
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

// ---- replay cache: identity/replay-cache.ts ------------------------------------------------------------------

export { ReplayCache } from './replay-cache.ts'

// ---- verifier ---------------------------------------------------------------------------------------------------

export interface EnvelopeVerifierOptions {
  /** Largest accepted wire size; default 1 MiB. */
  maxBytes?: number
  /** Allowance for clocks that disagree; default 30 s. */
  clockSkewMs?: number
  /** Longest accepted lifetime (exp - iat); default 10 min. Bounds how long replay entries live. */
  maxTtlMs?: number
  /** Replay cache entries; default 250,000 (~14 MB at most, typed arrays). Size it to rate x (lifetime + skew). */
  replayCacheSize?: number
  /** Verified batch roots remembered; default 4096. */
  batchCacheSize?: number
  now?: () => number
}

export class EnvelopeVerifier {
  readonly #maxBytes: number
  readonly #skew: number
  readonly #maxTtl: number
  readonly #now: () => number
  readonly #replay: ReplayCache
  readonly #signatures: SignatureChecker

  constructor(opts: EnvelopeVerifierOptions = {}) {
    this.#maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES
    this.#skew = opts.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS
    this.#maxTtl = opts.maxTtlMs ?? DEFAULT_MAX_TTL_MS
    this.#now = opts.now ?? Date.now
    this.#replay = new ReplayCache(opts.replayCacheSize ?? DEFAULT_REPLAY_CACHE_SIZE)
    this.#signatures = new SignatureChecker(opts.batchCacheSize ?? 4096)
  }

  /** Ed25519 verifications performed so far (a batch costs one, however many of its envelopes arrive). */
  get signatureChecks(): number {
    return this.#signatures.signatureChecks
  }

  /**
   * decode (bounded) -> signature (single, or batch with cached verified roots) -> expiry -> replay.
   * Returns the envelope or throws a typed IdentityError.
   */
  verify(bytes: Uint8Array): Envelope {
    const w = decodeWire(bytes, this.#maxBytes)
    this.#signatures.check(didOf(w.envelope.from), w, w.envelope.id)
    this.#admit(w.envelope)
    return w.envelope
  }

  /**
   * Everything but the signature: decode (bounded) -> expiry -> replay. For a receiver that learns the
   * sender from an authenticated session and checks the signature elsewhere (a SignatureWorker): the
   * signature must still be checked, with `checkSignature` or the worker, before the envelope is relied on
   * as evidence. Throws a typed IdentityError.
   */
  admit(bytes: Uint8Array): DecodedWire {
    const w = decodeWire(bytes, this.#maxBytes)
    this.#admit(w.envelope)
    return w
  }

  /**
   * `admit` for the payload of a sealed-stream member (identity/sealed-stream.ts): decode -> expiry -> replay.
   * Its seal is checked elsewhere, once it arrives. Throws a typed IdentityError.
   */
  admitPayload(payload: Uint8Array): Envelope {
    if (payload.byteLength > this.#maxBytes) throw new EnvelopeTooLargeError(`envelope payload is ${payload.byteLength} bytes; the limit is ${this.#maxBytes}`)
    const env = decodePayload(payload)
    this.#admit(env)
    return env
  }

  /** The signature check of `verify`, for an envelope decoded by `admit`. Throws BadSignatureError / UnknownKeyError. */
  checkSignature(w: DecodedWire): void {
    this.#signatures.check(didOf(w.envelope.from), w, w.envelope.id)
  }

  #admit(env: Envelope): void {
    const now = this.#now()
    if (env.exp - env.iat > this.#maxTtl) throw new MalformedEnvelopeError(`envelope lifetime ${env.exp - env.iat} ms exceeds ${this.#maxTtl} ms`)
    if (now > env.exp + this.#skew) throw new ExpiredEnvelopeError(`envelope ${env.id} expired at ${new Date(env.exp).toISOString()}`)
    if (env.iat > now + this.#skew) throw new NotYetValidEnvelopeError(`envelope ${env.id} is issued in the future (${new Date(env.iat).toISOString()})`)
    this.#replay.admit(`${didOf(env.from)}\n${env.id}\n${env.nonce}`, env.exp + this.#skew, now)
  }
}

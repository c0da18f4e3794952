// Sealed streams (spec/envelope.md, "Sealed streams"): over a session that already authenticates the sending
// node, envelope payloads go out at once, unsigned, as numbered members of a batch; the batch's seal, ONE
// Ed25519 signature over the Merkle root of their payloads (the same message a `signEnvelopeBatch` signature
// covers), follows when it is ready. Signing thus leaves the latency path, and a batch costs one signature
// and no per-envelope proof bytes on the wire. Any member can later be rebuilt as a standalone batch-signed
// envelope (`standaloneEnvelopes`) that a third party verifies with EnvelopeVerifier alone.
import { WIRE_VERSION, batchMessage, batchWire } from './envelope-wire.ts'
import { BadSignatureError, EnvelopeTooLargeError, MalformedEnvelopeError, UnsealedEnvelopeError } from './errors.ts'
import { verifyEd25519ForDid, type NodeKey } from './keys.ts'
import { buildTree, leafHash, MAX_BATCH_LEAVES, rootOfPayloads } from './merkle.ts'
import { decodePayload, type Envelope, type SignedEnvelope } from './envelope.ts'

/** Frame kind of one batch member: u8 version | u8 kind | u32 batch | u32 index | payload. */
export const KIND_MEMBER = 0x03
/** Frame kind of a seal: u8 version | u8 kind | u32 batch | u32 count | 64-byte signature. */
export const KIND_SEAL = 0x04
export const MEMBER_HEADER = 2 + 4 + 4
export const SEAL_BYTES = 2 + 4 + 4 + 64

export type StreamFrame =
  | { kind: typeof KIND_MEMBER; batch: number; index: number; payload: Uint8Array }
  | { kind: typeof KIND_SEAL; batch: number; count: number; signature: Uint8Array }

function fail(message: string): never {
  throw new MalformedEnvelopeError(message)
}

/** The frame of member `index` of batch `batch` (the payload is copied in after a 10-byte header). */
export function encodeMember(batch: number, index: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(MEMBER_HEADER + payload.byteLength)
  out.set(payload, MEMBER_HEADER)
  return setMemberHeader(out, batch, index)
}

/**
 * Writes the member header into the first MEMBER_HEADER bytes of `frame`, whose payload follows them (as
 * `prepareEnvelopeFrame` leaves it): encodeMember without the copy.
 */
export function setMemberHeader(frame: Uint8Array, batch: number, index: number): Uint8Array {
  return setHeader(frame, KIND_MEMBER, batch, index)
}

export function encodeSeal(batch: number, count: number, signature: Uint8Array): Uint8Array {
  const out = new Uint8Array(SEAL_BYTES)
  out.set(signature, 10)
  return setHeader(out, KIND_SEAL, batch, count)
}

/** The 10-byte header both frame kinds share: version, kind, u32 batch, u32 index or count. */
function setHeader(frame: Uint8Array, kind: number, batch: number, n: number): Uint8Array {
  frame[0] = WIRE_VERSION
  frame[1] = kind
  putU32be(frame, 2, batch)
  putU32be(frame, 6, n)
  return frame
}

// Big-endian u32s without a DataView (one per frame was garbage on every member).
function u32be(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0
}

function putU32be(b: Uint8Array, at: number, v: number): void {
  b[at] = v >>> 24
  b[at + 1] = v >>> 16
  b[at + 2] = v >>> 8
  b[at + 3] = v
}

/** True when `bytes` is a member or seal frame (kind byte 0x03 / 0x04), not a self-signed envelope. */
export function isStreamFrame(bytes: Uint8Array): boolean {
  return bytes.byteLength >= 2 && bytes[0] === WIRE_VERSION && (bytes[1] === KIND_MEMBER || bytes[1] === KIND_SEAL)
}

/** Parses a member or seal frame (bounded). Throws MalformedEnvelopeError / EnvelopeTooLargeError. */
export function decodeStreamFrame(bytes: Uint8Array, maxBytes: number): StreamFrame {
  if (bytes.byteLength > maxBytes) throw new EnvelopeTooLargeError(`envelope is ${bytes.byteLength} bytes; the limit is ${maxBytes}`)
  if (bytes.byteLength < 2 || bytes[0] !== WIRE_VERSION) fail('not a sealed-stream frame')
  if (bytes[1] === KIND_MEMBER) {
    if (bytes.byteLength < MEMBER_HEADER + 2) fail('batch member is shorter than its header')
    const index = u32be(bytes, 6)
    if (index >= MAX_BATCH_LEAVES) fail(`batch index ${index} outside 0..${MAX_BATCH_LEAVES - 1}`)
    return { kind: KIND_MEMBER, batch: u32be(bytes, 2), index, payload: bytes.subarray(MEMBER_HEADER) }
  }
  if (bytes[1] === KIND_SEAL) {
    if (bytes.byteLength !== SEAL_BYTES) fail(`a seal is ${SEAL_BYTES} bytes, not ${bytes.byteLength}`)
    const count = u32be(bytes, 6)
    if (count < 1 || count > MAX_BATCH_LEAVES) fail(`batch count ${count} outside 1..${MAX_BATCH_LEAVES}`)
    return { kind: KIND_SEAL, batch: u32be(bytes, 2), count, signature: bytes.subarray(10, SEAL_BYTES) }
  }
  return fail(`unknown sealed-stream kind ${bytes[1]}`)
}

/** Merkle root of the payloads (leaf = sha256(0x00 ‖ payload), as in a batch-signed envelope). */
export function sealRoot(payloads: readonly Uint8Array[]): Uint8Array {
  return rootOfPayloads(payloads)
}

/** The seal signature of a batch: the key's signature of the batch message (tag, count, root). */
export function signSeal(key: NodeKey, payloads: readonly Uint8Array[]): Uint8Array {
  if (payloads.length < 1 || payloads.length > MAX_BATCH_LEAVES) throw new MalformedEnvelopeError(`a batch holds 1..${MAX_BATCH_LEAVES} payloads`)
  return key.sign(batchMessage(payloads.length, sealRoot(payloads)))
}

/** True when `signature` seals exactly these payloads, in this order, for `did`. Throws InvalidDidError. */
export function verifySeal(did: string, payloads: readonly Uint8Array[], signature: Uint8Array): boolean {
  if (payloads.length < 1 || payloads.length > MAX_BATCH_LEAVES) return false
  return verifyEd25519ForDid(did, batchMessage(payloads.length, sealRoot(payloads)), signature)
}

/**
 * Every member of a sealed batch as a standalone batch-signed envelope (kind 0x02: the seal signature and the
 * member's Merkle path): what a receiver keeps as evidence, verifiable by anyone with EnvelopeVerifier.
 */
export function standaloneEnvelopes(envelopes: readonly Envelope[], payloads: readonly Uint8Array[], signature: Uint8Array): SignedEnvelope[] {
  const count = payloads.length
  const { proofs } = buildTree(payloads.map(leafHash))
  return payloads.map((payload, index) => ({ envelope: envelopes[index]!, bytes: batchWire(signature, count, index, proofs[index]!, payload) }))
}

/**
 * Reads sealed streams as a third party would: collects members per (sender, batch) and, when the seal
 * comes, verifies it and returns every member as a standalone envelope. Self-signed envelopes pass through
 * `EnvelopeVerifier`-style checks elsewhere; this handles frames for which `isStreamFrame` is true.
 * Throws MalformedEnvelopeError for a bad frame and BadSignatureError / UnsealedEnvelopeError for a seal
 * that does not verify or does not match what arrived (that batch is dropped).
 */
export class SealedStreamReader {
  readonly #maxBytes: number
  readonly #open = new Map<string, Uint8Array[]>()

  constructor(maxBytes = 1024 * 1024) {
    this.#maxBytes = maxBytes
  }

  /** Batches waiting for their seal. */
  get openBatches(): number {
    return this.#open.size
  }

  /** One frame from `senderDid`: [] for a member, the sealed batch's standalone envelopes for its seal. */
  push(bytes: Uint8Array, senderDid: string): SignedEnvelope[] {
    const f = decodeStreamFrame(bytes, this.#maxBytes)
    const key = `${senderDid}\n${f.batch}`
    if (f.kind === KIND_MEMBER) {
      const list = this.#open.get(key) ?? []
      if (f.index !== list.length) {
        this.#open.delete(key)
        throw new UnsealedEnvelopeError(`batch ${f.batch} of ${senderDid}: member ${f.index} arrived when ${list.length} was expected`)
      }
      list.push(Uint8Array.prototype.slice.call(f.payload))
      this.#open.set(key, list)
      return []
    }
    const payloads = this.#open.get(key) ?? []
    this.#open.delete(key)
    if (payloads.length !== f.count) throw new UnsealedEnvelopeError(`batch ${f.batch} of ${senderDid}: the seal covers ${f.count} envelopes, ${payloads.length} arrived`)
    let ok: boolean
    try {
      ok = verifySeal(senderDid, payloads, f.signature)
    } catch {
      ok = false
    }
    if (!ok) throw new BadSignatureError(`seal of batch ${f.batch} (${f.count} envelopes) does not verify with ${senderDid}`)
    return standaloneEnvelopes(payloads.map((p) => decodePayload(p)), payloads, f.signature)
  }
}

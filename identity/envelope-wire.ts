// The binary part of an envelope's wire encoding (spec/envelope.md): version, signature kind, the 64-byte
// Ed25519 signature and, for a batch, leaf count, index and Merkle path, then the payload bytes. Decoding it
// needs no JSON, so the signature worker (identity/signature-worker.ts) reads envelopes with this alone.
import { MalformedEnvelopeError, EnvelopeTooLargeError } from './errors.ts'
import { MAX_BATCH_LEAVES, proofLength } from './merkle.ts'

export const WIRE_VERSION = 0x01
export const KIND_SINGLE = 0x01
export const KIND_BATCH = 0x02
export const TAG_SINGLE = 'noir:msg:v1'
export const TAG_BATCH = 'noir:msg-batch:v1'
export const DEFAULT_MAX_BYTES = 1024 * 1024
export const SINGLE_HEADER = 2 + 64
export const BATCH_FIXED_HEADER = 2 + 64 + 4 + 4

const te = new TextEncoder()
/** ASCII tag then a 0x00 separator. */
export const SINGLE_PREFIX = te.encode(TAG_SINGLE + '\0')
export const BATCH_PREFIX = te.encode(TAG_BATCH + '\0')

/** Everything before the payload, parsed and checked for shape (not for signature). */
export interface WireHeader {
  kind: typeof KIND_SINGLE | typeof KIND_BATCH
  signature: Uint8Array
  /** Batch only (1 and 0 for a single envelope). */
  count: number
  index: number
  proof: Uint8Array[]
  /** The canonical JSON payload bytes, as received. */
  payload: Uint8Array
}

function fail(message: string): never {
  throw new MalformedEnvelopeError(message)
}

export function withPrefix(prefix: Uint8Array, rest: Uint8Array): Uint8Array {
  const m = new Uint8Array(prefix.length + rest.length)
  m.set(prefix, 0)
  m.set(rest, prefix.length)
  return m
}

/** The message a batch signature covers: tag, leaf count (u32 BE), Merkle root. */
export function batchMessage(count: number, root: Uint8Array): Uint8Array {
  const m = new Uint8Array(BATCH_PREFIX.length + 4 + 32)
  m.set(BATCH_PREFIX, 0)
  new DataView(m.buffer).setUint32(BATCH_PREFIX.length, count)
  m.set(root, BATCH_PREFIX.length + 4)
  return m
}

/** The wire of one batch-signed envelope: header, signature, count, index, Merkle path, payload. */
export function batchWire(signature: Uint8Array, count: number, index: number, proof: readonly Uint8Array[], payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(BATCH_FIXED_HEADER + proof.length * 32 + payload.length)
  const dv = new DataView(bytes.buffer)
  bytes[0] = WIRE_VERSION
  bytes[1] = KIND_BATCH
  bytes.set(signature, 2)
  dv.setUint32(66, count)
  dv.setUint32(70, index)
  let at = BATCH_FIXED_HEADER
  for (const h of proof) {
    bytes.set(h, at)
    at += 32
  }
  bytes.set(payload, at)
  return bytes
}

/** Parses the binary header (bounded size). Throws MalformedEnvelopeError / EnvelopeTooLargeError. */
export function decodeWireHeader(bytes: Uint8Array, maxBytes = DEFAULT_MAX_BYTES): WireHeader {
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
  return { kind: kind as WireHeader['kind'], signature, count, index, proof, payload: bytes.subarray(at) }
}

// Signed checkpoints of the log (spec/ledger.md "Checkpoints"): the node signs (its DID, size, root, time)
// with its did:key, over UTF-8("noir:ledger-checkpoint:v1") || 0x00 || RFC 8785 JSON of the body. A
// counterparty cosigns the same body under another tag, "noir:ledger-cosignature:v1", so a cosignature is
// never mistaken for the log's own signature. A verifier needs only the DIDs.
import { canonicalJsonBytes } from '../identity/canonical-json.ts'
import { isDidKey } from '../identity/did-key.ts'
import { verifyEd25519ForDid, type NodeKey } from '../identity/keys.ts'
import { InvalidCheckpointError } from './errors.ts'

export const CHECKPOINT_TAG = 'noir:ledger-checkpoint:v1'
export const COSIGNATURE_TAG = 'noir:ledger-cosignature:v1'

export interface CheckpointBody {
  v: 1
  /** The did:key of the node whose log this is (its signer). */
  log: string
  size: number
  /** RFC 6962 root of the first `size` entries, hex. */
  root: string
  /** ms since the epoch. */
  ts: number
}

export interface Cosignature {
  did: string
  signature: string
}

export interface SignedCheckpoint {
  body: CheckpointBody
  /** base64url Ed25519 signature of the log's DID. */
  signature: string
  cosignatures: Cosignature[]
}

const enc = new TextEncoder()

export function checkpointSigningBytes(tag: string, body: CheckpointBody): Uint8Array {
  const t = enc.encode(tag)
  const b = canonicalJsonBytes(body)
  const out = new Uint8Array(t.length + 1 + b.length)
  out.set(t, 0)
  out.set(b, t.length + 1)
  return out
}

const b64u = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url')

export function signCheckpoint(key: NodeKey, size: number, root: Uint8Array, ts: number): SignedCheckpoint {
  const body: CheckpointBody = { v: 1, log: key.did, size, root: Buffer.from(root).toString('hex'), ts }
  return { body, signature: b64u(key.sign(checkpointSigningBytes(CHECKPOINT_TAG, body))), cosignatures: [] }
}

/** A counterparty's cosignature of a checkpoint it has checked (e.g. by a consistency proof from its last one). */
export function cosignCheckpoint(key: NodeKey, body: CheckpointBody): Cosignature {
  return { did: key.did, signature: b64u(key.sign(checkpointSigningBytes(COSIGNATURE_TAG, body))) }
}

function verifySig(did: string, tag: string, body: CheckpointBody, sig: unknown): boolean {
  if (typeof sig !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(sig)) return false
  try {
    return verifyEd25519ForDid(did, checkpointSigningBytes(tag, body), new Uint8Array(Buffer.from(sig, 'base64url')))
  } catch {
    return false
  }
}

/** The body of an untrusted checkpoint, shape-checked; InvalidCheckpointError otherwise. */
export function checkpointBody(v: unknown): CheckpointBody {
  const b = v as Partial<CheckpointBody> | null
  if (typeof b !== 'object' || b === null || b.v !== 1 || typeof b.log !== 'string' || !isDidKey(b.log) ||
    typeof b.size !== 'number' || !Number.isSafeInteger(b.size) || b.size < 1 ||
    typeof b.root !== 'string' || !/^[0-9a-f]{64}$/.test(b.root) || typeof b.ts !== 'number' || !Number.isSafeInteger(b.ts) ||
    Object.keys(b).length !== 5) {
    throw new InvalidCheckpointError('malformed checkpoint body')
  }
  return { v: 1, log: b.log, size: b.size, root: b.root, ts: b.ts }
}

/** Throws InvalidCheckpointError unless `cp` is signed by `did` (the log's own key) and names it as its log. */
export function verifyCheckpoint(cp: SignedCheckpoint, did: string): CheckpointBody {
  const body = checkpointBody(cp?.body)
  if (body.log !== did) throw new InvalidCheckpointError(`the checkpoint is of ${body.log}'s log, not ${did}'s`, { log: body.log })
  if (!verifySig(did, CHECKPOINT_TAG, body, cp.signature)) throw new InvalidCheckpointError(`the checkpoint at size ${body.size} is not signed by ${did}`, { size: body.size })
  return body
}

/** Throws InvalidCheckpointError unless `c` is `c.did`'s cosignature of `body`. */
export function verifyCosignature(body: CheckpointBody, c: Cosignature): void {
  if (typeof c?.did !== 'string' || !isDidKey(c.did)) throw new InvalidCheckpointError('a cosignature names no did:key')
  if (!verifySig(c.did, COSIGNATURE_TAG, body, c.signature)) throw new InvalidCheckpointError(`the cosignature of ${c.did} on size ${body.size} does not verify`, { did: c.did, size: body.size })
}

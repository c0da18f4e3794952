// Provenance records (spec/artifacts.md "Provenance"): what ran where. The provider signs the body when the
// run ends; the consumer verifies that and countersigns. Each signature is Ed25519 over
//   UTF-8(tag) || 0x00 || RFC 8785 canonical JSON
// with tag `noir:provenance:v1` over the body (provider) and `noir:provenance-consumer:v1` over
// `{ body, nodeSig }` (consumer). The signers are did:keys named in the body, so a third party needs nothing
// but the record: no network, no node.
import { canonicalJsonBytes } from '../identity/canonical-json.ts'
import { verifyEd25519ForDid, type NodeKey } from '../identity/keys.ts'
import { digestOf, isDigest } from './digest.ts'
import { InvalidProvenanceError } from './errors.ts'

export const PROVENANCE_TAG = 'noir:provenance:v1'
export const PROVENANCE_CONSUMER_TAG = 'noir:provenance-consumer:v1'

export interface ProvenanceBody {
  v: 1
  contractId: string
  /** The provider node's DID (signs `nodeSig`). */
  node: string
  /** The consumer's DID (the contract's orchestrator; signs `consumerSig`). */
  consumer: string
  /** sha256 of the RFC 8785 canonical JSON of the normalized workload. */
  workload: string
  /** Every artifact the run used, by digest. */
  artifacts: string[]
  startedAt: number
  endedAt: number
  exit: { state: 'exited' | 'failed' | 'stopped'; code: number | null; reason?: string }
  /** The job's output folder as an artifact; null for none. */
  output: string | null
}

export interface ProvenanceRecord {
  body: ProvenanceBody
  nodeSig: string
  consumerSig?: string
}

const enc = new TextEncoder()

/** The exact bytes a provenance signature covers. */
export function provenanceSigningBytes(tag: string, value: unknown): Uint8Array {
  const t = enc.encode(tag)
  const b = canonicalJsonBytes(value)
  const out = new Uint8Array(t.length + 1 + b.length)
  out.set(t, 0)
  out.set(b, t.length + 1)
  return out
}

const b64u = (b: Uint8Array): string => Buffer.from(b).toString('base64url')

export const workloadDigest = (workload: unknown): string => digestOf(canonicalJsonBytes(workload))

export function signProvenance(key: NodeKey, body: ProvenanceBody): ProvenanceRecord {
  checkBody(body)
  if (body.node !== key.did) throw new InvalidProvenanceError('a node signs only records that name it as the node')
  return { body, nodeSig: b64u(key.sign(provenanceSigningBytes(PROVENANCE_TAG, body))) }
}

/** The consumer's countersignature, after it checked the node's. */
export function countersignProvenance(key: NodeKey, r: ProvenanceRecord): ProvenanceRecord {
  verifyProvenance(r, { countersigned: false })
  if (r.body.consumer !== key.did) throw new InvalidProvenanceError(`this record's consumer is ${r.body.consumer}, not this node`)
  return { body: r.body, nodeSig: r.nodeSig, consumerSig: b64u(key.sign(provenanceSigningBytes(PROVENANCE_CONSUMER_TAG, { body: r.body, nodeSig: r.nodeSig }))) }
}

function checkSig(did: string, tag: string, value: unknown, sig: unknown, who: string): void {
  if (typeof sig !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(sig)) throw new InvalidProvenanceError(`the ${who}'s signature is missing or not 64 bytes of base64url`)
  let ok = false
  try {
    ok = verifyEd25519ForDid(did, provenanceSigningBytes(tag, value), Buffer.from(sig, 'base64url'))
  } catch (err) {
    throw new InvalidProvenanceError(`the ${who}'s signature cannot be checked: ${(err as Error).message}`)
  }
  if (!ok) throw new InvalidProvenanceError(`the ${who}'s signature does not verify for ${did}`)
}

/** Checks the record's shape and signatures (the consumer's too unless `countersigned: false`). */
export function verifyProvenance(r: unknown, o: { countersigned?: boolean } = {}): ProvenanceRecord {
  const rec = r as ProvenanceRecord
  if (!rec || typeof rec !== 'object') throw new InvalidProvenanceError('a provenance record is an object')
  checkBody(rec.body)
  checkSig(rec.body.node, PROVENANCE_TAG, rec.body, rec.nodeSig, 'node')
  if (o.countersigned !== false || rec.consumerSig !== undefined) checkSig(rec.body.consumer, PROVENANCE_CONSUMER_TAG, { body: rec.body, nodeSig: rec.nodeSig }, rec.consumerSig, 'consumer')
  return rec
}

function checkBody(b: unknown): asserts b is ProvenanceBody {
  const x = b as ProvenanceBody
  const bad = (why: string): never => {
    throw new InvalidProvenanceError(`provenance body: ${why}`)
  }
  if (!x || typeof x !== 'object') bad('not an object')
  if (x.v !== 1) bad('v must be 1')
  if (typeof x.contractId !== 'string' || x.contractId.length === 0 || x.contractId.length > 128) bad('contractId')
  if (typeof x.node !== 'string' || !x.node.startsWith('did:key:')) bad('node must be a did:key')
  if (typeof x.consumer !== 'string' || !x.consumer.startsWith('did:key:')) bad('consumer must be a did:key')
  if (!isDigest(x.workload)) bad('workload must be a digest')
  if (!Array.isArray(x.artifacts) || x.artifacts.length > 64 || !x.artifacts.every(isDigest)) bad('artifacts must be digests')
  if (!Number.isSafeInteger(x.startedAt) || !Number.isSafeInteger(x.endedAt) || x.endedAt < x.startedAt) bad('startedAt/endedAt')
  if (!x.exit || !['exited', 'failed', 'stopped'].includes(x.exit.state) || !(x.exit.code === null || Number.isSafeInteger(x.exit.code))) bad('exit')
  if (!(x.output === null || isDigest(x.output))) bad('output must be a digest or null')
}

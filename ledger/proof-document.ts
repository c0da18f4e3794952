// A self-contained inclusion proof (spec/ledger.md "Proofs"): an entry, its index, a checkpoint signed by
// the log's DID and the RFC 6962 audit path from the entry to the checkpoint's root. A third party checks it
// holding only the DID it expects: the checkpoint must name that DID as its log and carry its signature,
// the entry must be canonical and at that index, and the path must lead to the signed root.
import { decodeEntry } from './entry-codec.ts'
import { InvalidCheckpointError, InvalidProofError, MalformedEntryError } from './errors.ts'
import { leafHash, verifyInclusion, type Hash } from './merkle.ts'
import { verifyCheckpoint, verifyCosignature, type CheckpointBody, type SignedCheckpoint } from './checkpoint.ts'
import type { Entry } from './types.ts'

export const PROOF_KIND = 'noir-ledger-inclusion-proof'

export interface InclusionProofDocument {
  kind: typeof PROOF_KIND
  v: 1
  /** Leaf index = the entry's seq. */
  index: number
  /** The entry's bytes as text (canonical JSON). */
  entry: string
  checkpoint: SignedCheckpoint
  /** Sibling hashes from the leaf up, hex. */
  proof: string[]
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

export function inclusionProofDocument(index: number, entryBytes: Uint8Array, checkpoint: SignedCheckpoint, proof: Hash[]): InclusionProofDocument {
  return { kind: PROOF_KIND, v: 1, index, entry: Buffer.from(entryBytes).toString('utf8'), checkpoint, proof: proof.map(hex) }
}

export interface CheckedProof {
  index: number
  entry: Entry
  checkpoint: CheckpointBody
  /** DIDs whose cosignatures of the checkpoint verified. */
  cosigners: string[]
}

/**
 * Checks a proof document against the DID whose log it claims to come from. Throws InvalidProofError (or
 * InvalidCheckpointError for a checkpoint not signed by `did`) naming what failed.
 */
export function checkInclusionProofDocument(doc: unknown, did: string): CheckedProof {
  const d = doc as Partial<InclusionProofDocument> | null
  if (typeof d !== 'object' || d === null || d.kind !== PROOF_KIND || d.v !== 1) throw new InvalidProofError('not a noir ledger inclusion proof')
  if (typeof d.index !== 'number' || !Number.isSafeInteger(d.index) || d.index < 0) throw new InvalidProofError("'index' is not an entry index")
  if (typeof d.entry !== 'string' || !Array.isArray(d.proof) || d.proof.length > 64 || !d.proof.every((p) => typeof p === 'string' && /^[0-9a-f]{64}$/.test(p))) {
    throw new InvalidProofError("'entry' or 'proof' is malformed")
  }
  const body = verifyCheckpoint(d.checkpoint as SignedCheckpoint, did)
  const bytes = new TextEncoder().encode(d.entry)
  let entry: Entry
  try {
    entry = decodeEntry(bytes)
  } catch (err) {
    if (err instanceof MalformedEntryError) throw new InvalidProofError(`the entry is not a canonical ledger entry: ${err.message}`)
    throw err
  }
  if (entry.seq !== d.index) throw new InvalidProofError(`the entry says it is entry ${entry.seq}, the proof is for ${d.index}`)
  const proof = d.proof.map((p) => new Uint8Array(Buffer.from(p, 'hex')))
  if (!verifyInclusion(leafHash(bytes), d.index, body.size, proof, new Uint8Array(Buffer.from(body.root, 'hex')))) {
    throw new InvalidProofError(`entry ${d.index} is not in the log of ${did} at size ${body.size} (the path does not lead to the signed root)`)
  }
  const cosigners: string[] = []
  for (const c of (d.checkpoint as SignedCheckpoint).cosignatures ?? []) {
    try {
      verifyCosignature(body, c)
      cosigners.push(c.did)
    } catch (err) {
      if (!(err instanceof InvalidCheckpointError)) throw err
      throw new InvalidProofError(`a cosignature does not verify: ${err.message}`)
    }
  }
  return { index: d.index, entry, checkpoint: body, cosigners }
}

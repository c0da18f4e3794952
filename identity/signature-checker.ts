// Checks the Ed25519 signature of one envelope's wire header (spec/envelope.md): a single envelope costs one
// verification; a batch envelope costs one per batch root, remembered, and about two hashes per envelope after
// that. Used inline by EnvelopeVerifier and, off the main thread, by the signature worker.
import { KIND_SINGLE, SINGLE_PREFIX, batchMessage, withPrefix, type WireHeader } from './envelope-wire.ts'
import { BadSignatureError, InvalidDidError, UnknownKeyError } from './errors.ts'
import { verifyEd25519ForDid } from './keys.ts'
import { LruCache } from './lru.ts'
import { leafHash, pathFromProof, type VerifiedPath } from './merkle.ts'


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

function batchKey(did: string, count: number, sig: Uint8Array): string {
  return `${did}|${count}|${Buffer.from(sig.buffer, sig.byteOffset, sig.byteLength).toString('latin1')}`
}

export class SignatureChecker {
  /** Per verified batch (sender DID, count, signature): the path of the last leaf accepted under its root. */
  readonly #batches: LruCache<string, BatchEntry>
  /** The batch of the last batch envelope accepted (checked before the LRU: batches arrive in runs). */
  #lastBatch: BatchEntry | undefined
  #checks = 0

  constructor(batchCacheSize = 4096) {
    this.#batches = new LruCache(batchCacheSize)
  }

  /** Ed25519 verifications performed so far (a batch costs one, however many of its envelopes arrive). */
  get signatureChecks(): number {
    return this.#checks
  }

  /**
   * Throws BadSignatureError when `w` was not signed by `did` (`id` names the envelope in the message), or
   * UnknownKeyError when the DID's key cannot be resolved.
   */
  check(did: string, w: WireHeader, id: string): void {
    let ok: boolean
    try {
      ok = w.kind === KIND_SINGLE ? this.#single(did, w) : this.#batch(did, w)
    } catch (err) {
      if (err instanceof InvalidDidError) throw new UnknownKeyError(`cannot resolve the sender's key: ${err.message}`)
      throw err
    }
    if (!ok) throw new BadSignatureError(`signature of envelope ${id} does not verify with ${did}`)
  }

  #single(did: string, w: WireHeader): boolean {
    this.#checks++
    return verifyEd25519ForDid(did, withPrefix(SINGLE_PREFIX, w.payload), w.signature)
  }

  /**
   * A leaf whose path meets the remembered path of an earlier leaf under the same verified root needs only
   * the hashes up to that meeting point (about two per envelope for a batch arriving in order).
   */
  #batch(did: string, w: WireHeader): boolean {
    const sig = w.signature
    const last = this.#lastBatch
    let entry: BatchEntry | undefined
    if (last !== undefined && last.did === did && last.count === w.count && sameBytes(last.signature, sig)) entry = last
    else entry = this.#batches.get(batchKey(did, w.count, sig))
    const { path, joined } = pathFromProof(leafHash(w.payload), w.index, w.count, w.proof, entry?.path)
    let ok = joined
    if (!ok) {
      this.#checks++
      ok = verifyEd25519ForDid(did, batchMessage(w.count, path.nodes[path.nodes.length - 1]!), sig)
      if (ok) {
        entry = { did, count: w.count, signature: Uint8Array.prototype.slice.call(sig), path }
        this.#batches.set(batchKey(did, w.count, sig), entry)
      }
    }
    if (ok && entry !== undefined) {
      entry.path = path
      this.#lastBatch = entry
    }
    return ok
  }
}

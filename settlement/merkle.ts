// RFC 6962 (Certificate Transparency) Merkle tree hash over SHA-256: a leaf is sha256(0x00 || data), an
// inner node sha256(0x01 || left || right), the tree of n leaves splits at the largest power of two below n,
// and the empty tree is sha256(""). The prefixes keep a leaf from being passed off as an inner node.
// The Settlement contract computes the same root bottom-up (an unpaired last node moves up unchanged),
// which gives the same tree.
import { createHash } from 'node:crypto'

const sha256 = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('sha256')
  for (const p of parts) h.update(p)
  return new Uint8Array(h.digest())
}

const LEAF = Uint8Array.of(0x00)
const NODE = Uint8Array.of(0x01)

export const leafHash = (data: Uint8Array): Uint8Array => sha256(LEAF, data)
export const nodeHash = (left: Uint8Array, right: Uint8Array): Uint8Array => sha256(NODE, left, right)

/** Largest power of two strictly below n (n >= 2). */
function split(n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

function rootOfHashes(hashes: readonly Uint8Array[]): Uint8Array {
  if (hashes.length === 0) return sha256()
  if (hashes.length === 1) return hashes[0] as Uint8Array
  const k = split(hashes.length)
  return nodeHash(rootOfHashes(hashes.slice(0, k)), rootOfHashes(hashes.slice(k)))
}

/** The Merkle tree hash (root) of the leaves' data, in order. */
export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  return rootOfHashes(leaves.map(leafHash))
}

/** The audit path of leaf `index` (RFC 6962 section 2.1.1), bottom-up. */
export function inclusionProof(leaves: readonly Uint8Array[], index: number): Uint8Array[] {
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) throw new RangeError(`leaf ${index} is not in a tree of ${leaves.length}`)
  const path = (hashes: readonly Uint8Array[], m: number): Uint8Array[] => {
    if (hashes.length <= 1) return []
    const k = split(hashes.length)
    return m < k
      ? [...path(hashes.slice(0, k), m), rootOfHashes(hashes.slice(k))]
      : [...path(hashes.slice(k), m - k), rootOfHashes(hashes.slice(0, k))]
  }
  return path(leaves.map(leafHash), index)
}

/** Checks an audit path for `leaf` at `index` in a tree of `size` leaves against `root` (RFC 9162 2.1.3.2). */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!Number.isInteger(index) || index < 0 || index >= size) return false
  let fn = index
  let sn = size - 1
  let r = leafHash(leaf)
  for (const p of proof) {
    if (sn === 0) return false
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r)
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2)
          sn = Math.floor(sn / 2)
        }
      }
    } else {
      r = nodeHash(r, p)
    }
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  return sn === 0 && equalBytes(r, root)
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

// The Merkle tree behind batch-signed envelopes (spec/envelope.md): sha256 with distinct prefixes for
// leaves (0x00) and inner nodes (0x01); a level with an odd count promotes its last node unchanged. The
// shape of a leaf's path follows from (index, count) alone, so a proof carries only the sibling hashes.
import { createHash } from 'node:crypto'

const LEAF = Uint8Array.of(0x00)
const NODE = Uint8Array.of(0x01)

export const MAX_BATCH_LEAVES = 65536

export function leafHash(payload: Uint8Array): Uint8Array {
  return createHash('sha256').update(LEAF).update(payload).digest()
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return createHash('sha256').update(NODE).update(left).update(right).digest()
}

/** How many sibling hashes the proof of leaf `index` among `count` leaves holds. */
export function proofLength(index: number, count: number): number {
  let i = index
  let w = count
  let n = 0
  while (w > 1) {
    if ((i & 1) === 1 || i + 1 < w) n++
    i >>>= 1
    w = (w + 1) >>> 1
  }
  return n
}

/** Root of the tree and every leaf's proof (sibling hashes, bottom up). */
export function buildTree(leaves: Uint8Array[]): { root: Uint8Array; proofs: Uint8Array[][] } {
  const count = leaves.length
  const proofs: Uint8Array[][] = leaves.map(() => [])
  // position[k] = where leaf k's ancestor sits in the current level
  let level = leaves
  const position = leaves.map((_, k) => k)
  while (level.length > 1) {
    const next: Uint8Array[] = []
    for (let j = 0; j < level.length; j += 2) {
      const left = level[j]!
      const right = level[j + 1]
      next.push(right ? nodeHash(left, right) : left)
    }
    for (let k = 0; k < count; k++) {
      const p = position[k]!
      const sib = (p & 1) === 1 ? p - 1 : p + 1
      if (sib < level.length) proofs[k]!.push(level[sib]!)
      position[k] = p >>> 1
    }
    level = next
  }
  return { root: level[0]!, proofs }
}

/** The root a leaf and its proof lead to. The caller checks proof.length === proofLength(index, count). */
export function rootFromProof(leaf: Uint8Array, index: number, count: number, proof: Uint8Array[]): Uint8Array {
  let h = leaf
  let i = index
  let w = count
  let k = 0
  while (w > 1) {
    if ((i & 1) === 1) h = nodeHash(proof[k++]!, h)
    else if (i + 1 < w) h = nodeHash(h, proof[k++]!)
    i >>>= 1
    w = (w + 1) >>> 1
  }
  return h
}

// The Merkle tree behind batch-signed envelopes (spec/envelope.md): sha256 with distinct prefixes for
// leaves (0x00) and inner nodes (0x01); a level with an odd count promotes its last node unchanged. The
// shape of a leaf's path follows from (index, count) alone, so a proof carries only the sibling hashes.
//
// Hashing is one-shot (`crypto.hash`) over a reused scratch buffer, with the digest taken as a latin1 string and
// written into a pooled 32-byte buffer: a createHash object per node cost about twice as much and most of the
// verifier's garbage, and a digest returned as a Buffer (an ArrayBuffer made in C++) still cost ~3x the string.
import { hash } from 'node:crypto'

export const MAX_BATCH_LEAVES = 65536

let scratch = Buffer.allocUnsafe(4096)
const nodeScratch = Buffer.allocUnsafe(65)
nodeScratch[0] = 0x01

/** sha256(data) written at `out[offset..offset+32]`. */
function digestInto(data: Uint8Array, out: Buffer, offset: number): void {
  out.write(hash('sha256', data, 'binary'), offset, 32, 'latin1')
}

function digest(data: Uint8Array): Uint8Array {
  const out = Buffer.allocUnsafe(32)
  digestInto(data, out, 0)
  return out
}

function leafInput(payload: Uint8Array): Buffer {
  const n = payload.byteLength + 1
  if (n > scratch.length) scratch = Buffer.allocUnsafe(Math.max(n, scratch.length * 2))
  scratch[0] = 0x00
  scratch.set(payload, 1)
  return scratch.subarray(0, n)
}

export function leafHash(payload: Uint8Array): Uint8Array {
  return digest(leafInput(payload))
}

export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  nodeScratch.set(left, 1)
  nodeScratch.set(right, 33)
  return digest(nodeScratch)
}

/**
 * The root over these payloads' leaves, computed in one buffer (leaf hashes, then each level folded in place):
 * the sealing and seal-checking hot path, 2 hashes per payload and no garbage per node.
 */
export function rootOfPayloads(payloads: readonly Uint8Array[]): Uint8Array {
  const n = payloads.length
  const level = Buffer.allocUnsafe(n * 32)
  for (let k = 0; k < n; k++) digestInto(leafInput(payloads[k]!), level, k * 32)
  for (let w = n; w > 1; w = (w + 1) >>> 1) {
    for (let j = 0; j < w; j += 2) {
      if (j + 1 < w) {
        level.copy(nodeScratch, 1, j * 32, j * 32 + 64)
        digestInto(nodeScratch, level, j * 16)
      } else if (j > 0) {
        level.copy(level, j * 16, j * 32, j * 32 + 32)
      }
    }
  }
  return level.subarray(0, 32)
}

function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * One leaf's path under a root whose signature was verified: nodes[l] is its ancestor at level l (position
 * index >>> l; nodes[0] the leaf hash, the last one the root) and siblings[l] that ancestor's sibling (position
 * (index >>> l) ^ 1; undefined where a level promoted the node unchanged). All of them are authenticated.
 */
export interface VerifiedPath {
  index: number
  nodes: Uint8Array[]
  siblings: (Uint8Array | undefined)[]
}

/**
 * Walks from `leaf` towards the root like rootFromProof, but stops as soon as it meets a node of `known` (a path
 * under an already verified root: one of its ancestors or their siblings) at the same level and position: the
 * leaf is then in that verified tree. For a batch arriving in order that is after ~0.5 node hashes per leaf.
 * Returns the path walked, completed from `known` when it joined (`joined: true`); otherwise its last node is
 * the root, whose signature the caller must check. Sibling hashes are copied (the path may outlive `proof`).
 */
export function pathFromProof(leaf: Uint8Array, index: number, count: number, proof: Uint8Array[], known: VerifiedPath | undefined): { path: VerifiedPath; joined: boolean } {
  const nodes = [leaf]
  const siblings: (Uint8Array | undefined)[] = []
  let h = leaf
  let i = index
  let w = count
  let k = 0
  let level = 0
  for (;;) {
    if (known !== undefined && level < known.nodes.length) {
      const ki = known.index >>> level
      let from = -1
      if (ki === i) {
        if (sameHash(known.nodes[level]!, h)) {
          siblings[level] = known.siblings[level]
          from = level + 1
        }
      } else if ((ki ^ 1) === i) {
        const ks = known.siblings[level]
        if (ks !== undefined && sameHash(ks, h)) {
          siblings[level] = known.nodes[level]
          from = level + 1
        }
      }
      if (from >= 0) {
        for (let l = from; l < known.nodes.length; l++) {
          nodes.push(known.nodes[l]!)
          siblings[l] = known.siblings[l]
        }
        siblings.length = nodes.length - 1
        return { path: { index, nodes, siblings }, joined: true }
      }
    }
    if (w <= 1) break
    if ((i & 1) === 1) {
      const sib = proof[k++]!
      siblings[level] = Uint8Array.prototype.slice.call(sib)
      h = nodeHash(sib, h)
    } else if (i + 1 < w) {
      const sib = proof[k++]!
      siblings[level] = Uint8Array.prototype.slice.call(sib)
      h = nodeHash(h, sib)
    } else {
      siblings[level] = undefined
    }
    i >>>= 1
    w = (w + 1) >>> 1
    level++
    nodes.push(h)
  }
  return { path: { index, nodes, siblings }, joined: false }
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

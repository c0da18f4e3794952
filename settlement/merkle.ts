// Payout roots are the ledger's RFC 6962 tree (ledger/merkle.ts: leaf sha256(0x00 || data), node
// sha256(0x01 || left || right), split at the largest power of two below n, empty tree sha256("")), taken
// here over the receipts' bytes. The Settlement contract computes the same root bottom-up (an unpaired last
// node moves up unchanged), which gives the same tree.
import { EMPTY_ROOT, MemoryTree, inclusionProof as proofIn, leafHash, nodeHash, verifyInclusion as verifyHashed } from '../ledger/merkle.ts'

export { leafHash, nodeHash }

function treeOf(leaves: readonly Uint8Array[]): MemoryTree {
  const tree = new MemoryTree()
  for (const l of leaves) tree.append(leafHash(l))
  return tree
}

/** The Merkle tree hash (root) of the leaves' data, in order. */
export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  return leaves.length === 0 ? new Uint8Array(EMPTY_ROOT) : treeOf(leaves).root()
}

/** The audit path of leaf `index` (RFC 6962 section 2.1.1), bottom-up. */
export function inclusionProof(leaves: readonly Uint8Array[], index: number): Uint8Array[] {
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) throw new RangeError(`leaf ${index} is not in a tree of ${leaves.length}`)
  return proofIn(index, leaves.length, treeOf(leaves).hashes)
}

/** Checks an audit path for the data `leaf` at `index` in a tree of `size` leaves against `root` (RFC 9162 2.1.3.2). */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  return verifyHashed(leafHash(leaf), index, size, proof, root)
}

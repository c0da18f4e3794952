// The Merkle tree of the ledger's log, exactly as RFC 6962 section 2.1 (and RFC 9162 section 2.1) define it:
// SHA-256, leaf hash H(0x00 || entry), node hash H(0x01 || left || right), and for n leaves the split at the
// largest power of two below n. Proofs are the RFC's PATH and PROOF; verification is RFC 9162's algorithm
// (2.1.3.2 inclusion, 2.1.4.2 consistency), checked against transparency-dev's published vectors.
//
// Proof generation reads subtree hashes through a `SubtreeHashes` function (a stored tree answers it from the
// perfect subtrees it kept; an in-memory tree from its levels), so the RFC recursion is written once.
import { hash } from 'node:crypto'

export type Hash = Uint8Array

const LEAF = Buffer.from([0x00])
let scratch = Buffer.allocUnsafe(1024)
const nodeBuf = Buffer.allocUnsafe(65)
nodeBuf[0] = 0x01

function sha256(data: Uint8Array): Hash {
  return Buffer.from(hash('sha256', data, 'binary'), 'latin1')
}

export const EMPTY_ROOT: Hash = sha256(new Uint8Array(0))

export function leafHash(entry: Uint8Array): Hash {
  const n = entry.byteLength + 1
  if (n > scratch.length) scratch = Buffer.allocUnsafe(Math.max(n, scratch.length * 2))
  scratch[0] = LEAF[0]!
  scratch.set(entry, 1)
  return sha256(scratch.subarray(0, n))
}

export function nodeHash(left: Hash, right: Hash): Hash {
  nodeBuf.set(left, 1)
  nodeBuf.set(right, 33)
  return sha256(nodeBuf)
}

export function sameHash(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false
  return true
}

/** The largest power of two strictly below n (n >= 2). */
export function splitPoint(n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}

/** MTH(D[start:end]) for 0 <= start < end <= size of the tree it reads. */
export type SubtreeHashes = (start: number, end: number) => Hash

/** RFC 6962 PATH(m, D[start:end]): sibling hashes from the leaf up. */
function path(m: number, start: number, end: number, h: SubtreeHashes, out: Hash[]): void {
  const n = end - start
  if (n <= 1) return
  const k = splitPoint(n)
  if (m < k) {
    path(m, start, start + k, h, out)
    out.push(h(start + k, end))
  } else {
    path(m - k, start + k, end, h, out)
    out.push(h(start, start + k))
  }
}

/** The inclusion proof of leaf `index` in the tree of the first `size` leaves. */
export function inclusionProof(index: number, size: number, h: SubtreeHashes): Hash[] {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) throw new RangeError(`leaf ${index} is not in a tree of ${size}`)
  const out: Hash[] = []
  path(index, 0, size, h, out)
  return out
}

/** RFC 6962 SUBPROOF(m, D[start:end], b). */
function subproof(m: number, start: number, end: number, complete: boolean, h: SubtreeHashes, out: Hash[]): void {
  const n = end - start
  if (m === n) {
    if (!complete) out.push(h(start, end))
    return
  }
  const k = splitPoint(n)
  if (m <= k) {
    subproof(m, start, start + k, complete, h, out)
    out.push(h(start + k, end))
  } else {
    subproof(m - k, start + k, end, false, h, out)
    out.push(h(start, start + k))
  }
}

/** The consistency proof between the trees of the first `first` and `second` leaves (0 < first <= second). */
export function consistencyProof(first: number, second: number, h: SubtreeHashes): Hash[] {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(second) || first < 1 || first > second) throw new RangeError(`no consistency proof from ${first} to ${second}`)
  const out: Hash[] = []
  if (first < second) subproof(first, 0, second, true, h, out)
  return out
}

/** RFC 9162 2.1.3.2: true when `proof` proves `leaf` is leaf `index` of the tree of `size` with `root`. */
export function verifyInclusion(leaf: Hash, index: number, size: number, proof: readonly Hash[], root: Hash): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false
  let fn = index
  let sn = size - 1
  let r = leaf
  for (const p of proof) {
    if (p.byteLength !== 32 || sn === 0) return false
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r)
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2)
          sn = Math.floor(sn / 2)
        }
      }
    } else r = nodeHash(r, p)
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  return sn === 0 && sameHash(r, root)
}

/** RFC 9162 2.1.4.2: true when `proof` proves the tree (second, secondRoot) extends (first, firstRoot). */
export function verifyConsistency(first: number, second: number, firstRoot: Hash, secondRoot: Hash, proof: readonly Hash[]): boolean {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(second) || first < 1 || first > second) return false
  if (first === second) return proof.length === 0 && sameHash(firstRoot, secondRoot)
  if (proof.length === 0 || proof.some((p) => p.byteLength !== 32)) return false
  const path = Number.isInteger(Math.log2(first)) ? [firstRoot, ...proof] : [...proof]
  let fn = first - 1
  let sn = second - 1
  while (fn % 2 === 1) {
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  let fr = path[0]!
  let sr = path[0]!
  for (let i = 1; i < path.length; i++) {
    const c = path[i]!
    if (sn === 0) return false
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr)
      sr = nodeHash(c, sr)
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2)
          sn = Math.floor(sn / 2)
        }
      }
    } else sr = nodeHash(sr, c)
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  return sameHash(fr, firstRoot) && sameHash(sr, secondRoot) && sn === 0
}

/** True when [start, end) is a perfect subtree: a power-of-two width starting at a multiple of it. */
export function isPerfect(start: number, end: number): boolean {
  const w = end - start
  return w > 0 && (w & (w - 1)) === 0 && start % w === 0
}

/**
 * Builds MTH(D[start:end]) of any range the RFC recursion asks for from its perfect pieces (largest first),
 * given a lookup of perfect subtrees. Every range RFC 6962 reaches is a node of its tree, so its pieces are
 * the binary decomposition of its width from its start.
 */
export function fromPerfect(perfect: (level: number, index: number) => Hash): SubtreeHashes {
  const mth = (start: number, end: number): Hash => {
    if (isPerfect(start, end)) {
      const level = Math.log2(end - start)
      return perfect(level, start / 2 ** level)
    }
    const k = splitPoint(end - start)
    return nodeHash(mth(start, start + k), mth(start + k, end))
  }
  return mth
}

/** The perfect subtrees (level, index) a SubtreeHashes call for [start, end) reads. */
export function perfectPieces(start: number, end: number, out: Array<[number, number]> = []): Array<[number, number]> {
  if (isPerfect(start, end)) {
    const level = Math.log2(end - start)
    out.push([level, start / 2 ** level])
    return out
  }
  const k = splitPoint(end - start)
  perfectPieces(start, start + k, out)
  perfectPieces(start + k, end, out)
  return out
}

/**
 * The right edge of a growing tree (RFC 9162's "compact range"): the roots of the perfect subtrees that
 * cover the leaves so far, largest first. Appending a leaf merges equal-sized neighbours; each merge is a new
 * perfect subtree, handed to `onNode` so a store can keep it for proofs.
 */
export class Frontier {
  readonly #levels: number[] = []
  readonly #hashes: Hash[] = []
  #size = 0

  get size(): number {
    return this.#size
  }

  /** From the perfect subtrees of a tree of `size` leaves (as perfectPieces(0, size) lists them). */
  static restore(size: number, pieces: Hash[]): Frontier {
    const f = new Frontier()
    const ps = size === 0 ? [] : perfectPieces(0, size)
    if (ps.length !== pieces.length) throw new RangeError(`a tree of ${size} has ${ps.length} edge subtrees, not ${pieces.length}`)
    ps.forEach(([level], i) => {
      f.#levels.push(level)
      f.#hashes.push(pieces[i]!)
    })
    f.#size = size
    return f
  }

  /** Adds leaf `leaf` (a leaf hash); `onNode(level, index, hash)` for every perfect subtree of level >= 1 it completes. */
  append(leaf: Hash, onNode?: (level: number, index: number, hash: Hash) => void): void {
    const i = this.#size
    this.#levels.push(0)
    this.#hashes.push(leaf)
    let n = this.#levels.length
    while (n >= 2 && this.#levels[n - 1] === this.#levels[n - 2]) {
      const level = this.#levels[n - 1]! + 1
      const h = nodeHash(this.#hashes[n - 2]!, this.#hashes[n - 1]!)
      this.#levels.length = n - 2
      this.#hashes.length = n - 2
      this.#levels.push(level)
      this.#hashes.push(h)
      onNode?.(level, Math.floor(i / 2 ** level), h)
      n = this.#levels.length
    }
    this.#size = i + 1
  }

  root(): Hash {
    if (this.#hashes.length === 0) return EMPTY_ROOT
    let r = this.#hashes[this.#hashes.length - 1]!
    for (let j = this.#hashes.length - 2; j >= 0; j--) r = nodeHash(this.#hashes[j]!, r)
    return r
  }
}

/** A whole tree in memory (every level): for verification and tests. */
export class MemoryTree {
  readonly #levels: Hash[][] = [[]]

  get size(): number {
    return this.#levels[0]!.length
  }

  append(leaf: Hash): void {
    this.#levels[0]!.push(leaf)
    let i = this.#levels[0]!.length - 1
    let level = 0
    while (i % 2 === 1) {
      const row = this.#levels[level]!
      const h = nodeHash(row[i - 1]!, row[i]!)
      level++
      if (this.#levels.length <= level) this.#levels.push([])
      this.#levels[level]!.push(h)
      i = Math.floor(i / 2)
    }
  }

  /** The perfect subtree `index` at `level` (level 0: the leaf hashes). */
  node(level: number, index: number): Hash | undefined {
    return this.#levels[level]?.[index]
  }

  readonly hashes: SubtreeHashes = fromPerfect((level, index) => {
    const h = this.#levels[level]?.[index]
    if (!h) throw new RangeError(`no subtree ${level}/${index}`)
    return h
  })

  /** The root of the tree of the first `size` leaves. */
  root(size = this.size): Hash {
    if (size === 0) return EMPTY_ROOT
    return this.hashes(0, size)
  }
}

// RFC 6962 / RFC 9162 hashing and proofs: the published vectors of transparency-dev/merkle (testonly/
// constants.go, reference_test.go), then every inclusion and consistency proof of trees up to 70 leaves
// against a direct transcription of the RFC's definitions, and forged proofs refused.
import t from 'tap'
import { consistencyProof, EMPTY_ROOT, Frontier, inclusionProof, leafHash, MemoryTree, nodeHash, perfectPieces, verifyConsistency, verifyInclusion, type Hash } from '../merkle.ts'

const hd = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

const LEAVES = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(hd)
const ROOTS = [
  'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
]
const INCLUSION: Array<[number, number, string[]]> = [
  [0, 1, []],
  [0, 2, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7']],
  [1, 2, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d']],
  [2, 3, ['fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125']],
  [1, 5, ['6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
  [0, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [5, 8, ['bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
]
const CONSISTENCY: Array<[number, number, string[]]> = [
  [1, 1, []],
  [1, 8, ['96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7', '5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', '6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4']],
  [2, 5, ['5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e', 'bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b']],
  [6, 8, ['0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a', 'ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0', 'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7']],
]

function treeOf(leaves: Uint8Array[]): MemoryTree {
  const tree = new MemoryTree()
  for (const l of leaves) tree.append(leafHash(l))
  return tree
}

t.test('roots of the published vectors, for every size 0..8, from the whole tree and from the frontier', async (t) => {
  const tree = new MemoryTree()
  const f = new Frontier()
  t.equal(hex(tree.root()), ROOTS[0])
  t.equal(hex(EMPTY_ROOT), ROOTS[0])
  LEAVES.forEach((l, i) => {
    tree.append(leafHash(l))
    f.append(leafHash(l))
    t.equal(hex(tree.root()), ROOTS[i + 1], `root of ${i + 1}`)
    t.equal(hex(f.root()), ROOTS[i + 1], `frontier root of ${i + 1}`)
  })
})

t.test('inclusion proofs of the published vectors are generated and verified', async (t) => {
  const tree = treeOf(LEAVES)
  for (const [index, size, want] of INCLUSION) {
    const proof = inclusionProof(index, size, tree.hashes)
    t.same(proof.map(hex), want, `proof ${index}:${size}`)
    t.ok(verifyInclusion(leafHash(LEAVES[index]!), index, size, proof, hd(ROOTS[size]!)), `verify ${index}:${size}`)
  }
})

t.test('consistency proofs of the published vectors are generated and verified', async (t) => {
  const tree = treeOf(LEAVES)
  for (const [m, n, want] of CONSISTENCY) {
    const proof = consistencyProof(m, n, tree.hashes)
    t.same(proof.map(hex), want, `proof ${m}:${n}`)
    t.ok(verifyConsistency(m, n, hd(ROOTS[m]!), hd(ROOTS[n]!), proof), `verify ${m}:${n}`)
  }
})

// RFC 6962 section 2.1 transcribed literally, over the leaf inputs.
function mth(d: Uint8Array[]): Hash {
  if (d.length === 0) return EMPTY_ROOT
  if (d.length === 1) return leafHash(d[0]!)
  let k = 1
  while (k * 2 < d.length) k *= 2
  return nodeHash(mth(d.slice(0, k)), mth(d.slice(k)))
}

t.test('every proof of every tree up to 70 leaves matches the RFC definition, verifies, and a changed one does not', async (t) => {
  const leaves = Array.from({ length: 70 }, (_, i) => new Uint8Array(Buffer.from(`leaf ${i}`)))
  const tree = treeOf(leaves)
  let checked = 0
  for (let n = 1; n <= 70; n++) {
    const root = mth(leaves.slice(0, n))
    if (hex(tree.root(n)) !== hex(root)) t.fail(`root ${n}`)
    for (let m = 0; m < n; m++) {
      const p = inclusionProof(m, n, tree.hashes)
      if (!verifyInclusion(leafHash(leaves[m]!), m, n, p, root)) t.fail(`inclusion ${m}:${n}`)
      if (verifyInclusion(leafHash(leaves[(m + 1) % n]!), m, n, p, root) && n > 1) t.fail(`inclusion of another leaf ${m}:${n}`)
      if (p.length > 0) {
        const bad = p.map((h) => Uint8Array.from(h))
        bad[bad.length - 1]![0]! ^= 1
        if (verifyInclusion(leafHash(leaves[m]!), m, n, bad, root)) t.fail(`forged inclusion ${m}:${n}`)
        if (verifyInclusion(leafHash(leaves[m]!), m, n, p.slice(0, -1), root)) t.fail(`truncated inclusion ${m}:${n}`)
      }
      const first = m + 1
      const c = consistencyProof(first, n, tree.hashes)
      const firstRoot = mth(leaves.slice(0, first))
      if (!verifyConsistency(first, n, firstRoot, root, c)) t.fail(`consistency ${first}:${n}`)
      if (first < n) {
        const bad = c.map((h) => Uint8Array.from(h))
        bad[0]![5]! ^= 0x80
        if (verifyConsistency(first, n, firstRoot, root, bad)) t.fail(`forged consistency ${first}:${n}`)
        if (verifyConsistency(first, n, mth(leaves.slice(1, first + 1)), root, c)) t.fail(`consistency with a wrong old root ${first}:${n}`)
      }
      checked++
    }
    t.equal(perfectPieces(0, n).reduce((s, [l]) => s + 2 ** l, 0), n)
  }
  t.equal(checked, (70 * 71) / 2)
})

t.test('a frontier restored from its perfect pieces goes on as if never stopped', async (t) => {
  const leaves = Array.from({ length: 37 }, (_, i) => leafHash(Buffer.from(`x${i}`)))
  const tree = new MemoryTree()
  for (const l of leaves.slice(0, 21)) tree.append(l)
  const f = Frontier.restore(21, perfectPieces(0, 21).map(([l, i]) => tree.node(l, i)!))
  for (const l of leaves.slice(21)) {
    tree.append(l)
    f.append(l)
  }
  t.equal(hex(f.root()), hex(tree.root()))
})

// RFC 6962 Merkle tree hash: the reference vectors of certificate-transparency (the eight test leaves and
// the root after each), audit paths that verify and ones that do not.
import t from 'tap'
import * as fc from 'fast-check'
import { inclusionProof, leafHash, merkleRoot, verifyInclusion } from '../merkle.ts'

const leaves = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((h) => new Uint8Array(Buffer.from(h, 'hex')))
const roots = [
  '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
  'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
  'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
  'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
  '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
  '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
  'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
  '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328',
]
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

t.test('the roots of the certificate-transparency reference tree of 1..8 leaves', async (t) => {
  t.equal(hex(merkleRoot([])), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'the empty tree is sha256("")')
  roots.forEach((root, i) => t.equal(hex(merkleRoot(leaves.slice(0, i + 1))), root, `${i + 1} leaves`))
})

t.test('a leaf is hashed with 0x00 and cannot pass as an inner node', async (t) => {
  const two = merkleRoot(leaves.slice(0, 2))
  const l0 = leafHash(leaves[0]!)
  const l1 = leafHash(leaves[1]!)
  t.not(hex(merkleRoot([new Uint8Array([...l0, ...l1])])), hex(two), 'the concatenated children as one leaf give another root')
})

t.test('every audit path verifies, and fails for another leaf, index or root', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 40 }), fc.nat(), (data, pick) => {
      const i = pick % data.length
      const root = merkleRoot(data)
      const proof = inclusionProof(data, i)
      if (!verifyInclusion(data[i]!, i, data.length, proof, root)) return false
      const other = new Uint8Array([...data[i]!, 1])
      if (verifyInclusion(other, i, data.length, proof, root)) return false
      if (data.length > 1 && verifyInclusion(data[i]!, (i + 1) % data.length, data.length, proof, root) && hex(data[i]!) !== hex(data[(i + 1) % data.length]!)) return false
      return !verifyInclusion(data[i]!, i, data.length, proof, new Uint8Array(32))
    }),
    { numRuns: 300 },
  )
  t.pass('300 random trees')
})

// The Noise cipher with cached session KeyObjects (p2p/noise-crypto.ts) is the default's cipher: what one
// seals the other opens, at every size on both sides of the switch to node:crypto, and for messages that come
// as lists of pieces (a yamux frame's header and data; a message across two TCP reads, its tag split too),
// which are ciphered piece by piece without a copy; a key changed in place is not served from the cache;
// tampering is refused. Real connections use it in every mesh test (and the stock
// js-libp2p node of the interop test uses the default, so the two meet on the wire).
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import { noiseCrypto } from '../noise-crypto.ts'

const SIZES = [0, 1, 100, 1199, 1200, 1201, 4096, 65_519]

function nonce(n: number): Uint8Array {
  const b = new Uint8Array(12)
  new DataView(b.buffer).setUint32(4, n, true)
  return b
}

const flat = (b: Uint8Array | { subarray(): Uint8Array }): Uint8Array => (b instanceof Uint8Array ? b : b.subarray())

t.test('sealed by one, opened by the other, at every size', async (t) => {
  const k = randomBytes(32)
  const ad = randomBytes(32)
  let n = 0
  for (const size of SIZES) {
    const text = randomBytes(size)
    const ours = flat(noiseCrypto.chaCha20Poly1305Encrypt(text, nonce(n), ad, k))
    const theirs = flat(defaultCrypto.chaCha20Poly1305Encrypt(text, nonce(n), ad, k))
    t.same(Buffer.from(ours), Buffer.from(theirs), `${size} bytes: the same ciphertext and tag`)
    t.same(Buffer.from(flat(defaultCrypto.chaCha20Poly1305Decrypt(ours, nonce(n), ad, k))), text, `${size} bytes: opened by the default`)
    t.same(Buffer.from(flat(noiseCrypto.chaCha20Poly1305Decrypt(theirs, nonce(n), ad, k))), text, `${size} bytes: opened by ours`)
    n++
  }
})

t.test('a key array whose bytes change is not served from the cache', async (t) => {
  const k = new Uint8Array(randomBytes(32))
  const text = randomBytes(2000)
  const first = Buffer.from(flat(noiseCrypto.chaCha20Poly1305Encrypt(text, nonce(1), new Uint8Array(0), k)))
  k.set(randomBytes(32))
  const second = Buffer.from(flat(noiseCrypto.chaCha20Poly1305Encrypt(text, nonce(1), new Uint8Array(0), k)))
  t.notSame(second, first, 'the new key encrypts differently')
  t.same(second, Buffer.from(flat(defaultCrypto.chaCha20Poly1305Encrypt(text, nonce(1), new Uint8Array(0), k))), 'and as the default does with the new key')
})

t.test('a tampered message, or the wrong key, is refused', async (t) => {
  const k = randomBytes(32)
  const sealed = Buffer.from(flat(noiseCrypto.chaCha20Poly1305Encrypt(randomBytes(3000), nonce(7), new Uint8Array(0), k)))
  const tampered = Buffer.from(sealed)
  tampered[10] = tampered[10]! ^ 1
  t.throws(() => noiseCrypto.chaCha20Poly1305Decrypt(tampered, nonce(7), new Uint8Array(0), k), 'a flipped bit')
  t.throws(() => noiseCrypto.chaCha20Poly1305Decrypt(sealed, nonce(8), new Uint8Array(0), k), 'another nonce')
  t.throws(() => noiseCrypto.chaCha20Poly1305Decrypt(sealed, nonce(7), new Uint8Array(0), randomBytes(32)), 'another key')
})

/** `b` cut at `cuts` into a list of views of it (no copies), as yamux and TCP reads hand noise its messages. */
function pieces(b: Uint8Array, cuts: number[]): Uint8ArrayList {
  const out = new Uint8ArrayList()
  let at = 0
  for (const c of [...cuts, b.byteLength]) {
    out.append(b.subarray(at, c))
    at = c
  }
  return out
}

t.test('a message in pieces: sealed and opened piece by piece, the same bytes as the default', async (t) => {
  const k = randomBytes(32)
  const ad = new Uint8Array(0)
  // a yamux frame header then its data; three TCP reads; the tag across the last cut (16 bytes at the end)
  const cases: Array<{ size: number; cuts: number[] }> = [
    { size: 65_519, cuts: [12] },
    { size: 65_519, cuts: [12, 30_000, 60_000] },
    { size: 2_000, cuts: [1_000] },
    { size: 1_200, cuts: [1, 2, 3] },
  ]
  let n = 100
  for (const { size, cuts } of cases) {
    const text = randomBytes(size)
    const sealed = noiseCrypto.chaCha20Poly1305Encrypt(pieces(text, cuts), nonce(n), ad, k)
    t.ok(sealed instanceof Uint8ArrayList, `${size} bytes in ${cuts.length + 1} pieces: sealed into a list (not concatenated)`)
    const theirs = flat(defaultCrypto.chaCha20Poly1305Encrypt(text, nonce(n), ad, k))
    t.same(Buffer.from(flat(sealed)), Buffer.from(theirs), `${size} bytes: the default's ciphertext and tag`)
    // opened from pieces cut elsewhere, the tag split across two of them
    const sealedFlat = flat(sealed)
    const openCuts = [7, Math.floor(sealedFlat.byteLength / 2), sealedFlat.byteLength - 9]
    const opened = noiseCrypto.chaCha20Poly1305Decrypt(pieces(sealedFlat, openCuts), nonce(n), ad, k)
    t.ok(opened instanceof Uint8ArrayList, `${size} bytes: opened into a list`)
    t.same(Buffer.from(flat(opened)), text, `${size} bytes: opened from pieces, the tag across two`)
    n++
  }
})

t.test('a message in pieces with one flipped bit, in the text or in the split tag, is refused', async (t) => {
  const k = randomBytes(32)
  const ad = new Uint8Array(0)
  const sealed = Buffer.from(flat(noiseCrypto.chaCha20Poly1305Encrypt(randomBytes(65_519), nonce(3), ad, k)))
  for (const at of [5, 40_000, sealed.byteLength - 10, sealed.byteLength - 1]) {
    const tampered = Buffer.from(sealed)
    tampered[at] = tampered[at]! ^ 1
    t.throws(() => noiseCrypto.chaCha20Poly1305Decrypt(pieces(tampered, [12, 30_000, sealed.byteLength - 8]), nonce(3), ad, k), `bit ${at} flipped`)
  }
  t.same(Buffer.from(flat(noiseCrypto.chaCha20Poly1305Decrypt(pieces(sealed, [12, 30_000, sealed.byteLength - 8]), nonce(3), ad, k))).byteLength, 65_519, 'the untouched message opens')
})

// The Noise cipher with cached session KeyObjects (p2p/noise-crypto.ts) is the default's cipher: what one
// seals the other opens, at every size on both sides of the switch to node:crypto; a key changed in place is
// not served from the cache; tampering is refused. Real connections use it in every mesh test (and the stock
// js-libp2p node of the interop test uses the default, so the two meet on the wire).
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
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

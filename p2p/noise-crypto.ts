// The Noise session's ChaCha20-Poly1305, as @chainsafe/libp2p-noise's default (node:crypto for messages of
// 1200 bytes and more, its WebAssembly build below that) but with each session key turned into a KeyObject
// once. node:crypto makes a KeyObject from a raw key on every createCipheriv/createDecipheriv (~15 µs here,
// most of it a type check that throws and catches), and noise makes a cipher per message: on a stream of
// signed tells that was ~2% of each side's main thread. Everything else (hashing, key agreement, small
// messages) is the default's.
//
// Bytes are never copied to be ciphered: a message that comes as a list of pieces (what yamux hands noise: a
// frame header and its data; what TCP reads give: a message across two reads) is ciphered piece by piece, and
// a list's output stays a list (the ciphertext pieces and the tag), as the default does. Each copy is a fresh
// buffer outside the JS heap, and those drive V8's external-memory collections: full mark-compacts whose cost
// grows with the heap, so a daemon paid several times what a bare process did per byte moved
// (spec/artifacts.md "Figures").
import { createCipheriv, createDecipheriv, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'

const ALGORITHM = 'chacha20-poly1305'
const TAG_BYTES = 16
/** Below this the default's WebAssembly build is the faster (as the default decides). */
const NODE_CRYPTO_FROM_BYTES = 1200

/** Session key objects by the key array noise keeps for the session; the bytes are compared on each use. */
const sessionKeys = new WeakMap<Uint8Array, { bytes: Uint8Array; key: KeyObject }>()

function keyObject(k: Uint8Array): KeyObject {
  const known = sessionKeys.get(k)
  if (known !== undefined && known.bytes.byteLength === k.byteLength && timingSafeEqual(known.bytes, k)) return known.key
  const entry = { bytes: Uint8Array.prototype.slice.call(k), key: createSecretKey(k) }
  sessionKeys.set(k, entry)
  return entry.key
}

export const noiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt(plaintext, nonce, ad, k) {
    if (plaintext.byteLength < NODE_CRYPTO_FROM_BYTES) return defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
    const cipher = createCipheriv(ALGORITHM, keyObject(k), nonce, { authTagLength: TAG_BYTES })
    cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
    if (plaintext instanceof Uint8Array) {
      // one piece in, one buffer out (the handshake's messages come this way and are used as one array)
      const updated = cipher.update(plaintext)
      const final = cipher.final()
      const tag = cipher.getAuthTag()
      return Buffer.concat([updated, final, tag], updated.byteLength + final.byteLength + tag.byteLength)
    }
    const out = plaintext.sublist(0, 0) // an empty list of noise's own Uint8ArrayList
    for (const piece of plaintext) out.append(cipher.update(piece))
    const final = cipher.final()
    if (final.byteLength > 0) out.append(final)
    out.append(cipher.getAuthTag())
    return out
  },
  chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst) {
    if (ciphertext.byteLength < NODE_CRYPTO_FROM_BYTES) return defaultCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
    const textBytes = ciphertext.byteLength - TAG_BYTES
    const decipher = createDecipheriv(ALGORITHM, keyObject(k), nonce, { authTagLength: TAG_BYTES })
    decipher.setAAD(ad, { plaintextLength: textBytes })
    // the tag's 16 bytes are the only ones that may be copied (when they straddle two pieces)
    decipher.setAuthTag(ciphertext.subarray(textBytes))
    if (ciphertext instanceof Uint8Array) {
      const output = decipher.update(ciphertext.subarray(0, textBytes))
      const final = decipher.final()
      return final.byteLength > 0 ? Buffer.concat([output, final], output.byteLength + final.byteLength) : output
    }
    const out = ciphertext.sublist(0, 0)
    for (const piece of ciphertext.sublist(0, textBytes)) out.append(decipher.update(piece))
    // final() checks the tag: nothing of a forged message is returned (its pieces are dropped with `out`)
    const final = decipher.final()
    if (final.byteLength > 0) out.append(final)
    return out
  },
}

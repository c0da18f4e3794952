// The Noise session's ChaCha20-Poly1305, as @chainsafe/libp2p-noise's default (node:crypto for messages of
// 1200 bytes and more, its WebAssembly build below that) but with each session key turned into a KeyObject
// once. node:crypto makes a KeyObject from a raw key on every createCipheriv/createDecipheriv (~15 µs here,
// most of it a type check that throws and catches), and noise makes a cipher per message: on a stream of
// signed tells that was ~2% of each side's main thread. Everything else (hashing, key agreement, small
// messages) is the default's.
import { createCipheriv, createDecipheriv, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'

const ALGORITHM = 'chacha20-poly1305'
const TAG_BYTES = 16
/** Below this the default's WebAssembly build is the faster (as the default decides). */
const NODE_CRYPTO_FROM_BYTES = 1200

type Bytes = Parameters<ICryptoInterface['chaCha20Poly1305Encrypt']>[0]

/** Session key objects by the key array noise keeps for the session; the bytes are compared on each use. */
const sessionKeys = new WeakMap<Uint8Array, { bytes: Uint8Array; key: KeyObject }>()

function keyObject(k: Uint8Array): KeyObject {
  const known = sessionKeys.get(k)
  if (known !== undefined && known.bytes.byteLength === k.byteLength && timingSafeEqual(known.bytes, k)) return known.key
  const entry = { bytes: Uint8Array.prototype.slice.call(k), key: createSecretKey(k) }
  sessionKeys.set(k, entry)
  return entry.key
}

function flat(b: Bytes): Uint8Array {
  return b instanceof Uint8Array ? b : b.subarray()
}

export const noiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt(plaintext, nonce, ad, k) {
    if (plaintext.byteLength < NODE_CRYPTO_FROM_BYTES) return defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
    const text = flat(plaintext)
    const cipher = createCipheriv(ALGORITHM, keyObject(k), nonce, { authTagLength: TAG_BYTES })
    cipher.setAAD(ad, { plaintextLength: text.byteLength })
    const updated = cipher.update(text)
    const final = cipher.final()
    const tag = cipher.getAuthTag()
    return Buffer.concat([updated, final, tag], updated.byteLength + final.byteLength + tag.byteLength)
  },
  chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst) {
    if (ciphertext.byteLength < NODE_CRYPTO_FROM_BYTES) return defaultCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
    const all = flat(ciphertext)
    const text = all.subarray(0, all.byteLength - TAG_BYTES)
    const decipher = createDecipheriv(ALGORITHM, keyObject(k), nonce, { authTagLength: TAG_BYTES })
    decipher.setAAD(ad, { plaintextLength: text.byteLength })
    decipher.setAuthTag(all.subarray(all.byteLength - TAG_BYTES))
    const output = decipher.update(text)
    const final = decipher.final()
    return final.byteLength > 0 ? Buffer.concat([output, final], output.byteLength + final.byteLength) : output
  },
}

// Ed25519 signing and verification, one implementation per process. libsodium (sodium-native's prebuilt
// binding) when it loads: on this machine it verifies in ~51 µs and signs in ~19 µs against node:crypto's
// ~107 and ~38 (OpenSSL 3.5's per-call EVP set-up; bench/identity.bench.ts prints both), and it is the
// stricter of the two: it refuses small-order public keys and R points and a non-canonical S, which OpenSSL
// accepts (spec/identity.md, "Signatures"). node:crypto otherwise (a platform sodium-native has no build for,
// or NOIR_ED25519=node-crypto to choose it). A signature made by one verifies under the other: Ed25519 is
// deterministic, both make the same 64 bytes (identity/test/ed25519.test.ts checks RFC 8032's vectors and
// each against the other).
import { createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify, type KeyObject } from 'node:crypto'
import { createRequire } from 'node:module'

/** A public key made ready for verifying (libsodium: the 32 bytes; node:crypto: a KeyObject). */
export type VerifyKey = { readonly __verifyKey: unique symbol }
/** Signs with one private key, held inside the closure; the signature is a Buffer under both. */
export type Sign = (message: Uint8Array) => Uint8Array

export interface Ed25519 {
  readonly name: 'libsodium' | 'node:crypto'
  /** A signer for the 32-byte seed (RFC 8032's private key); `publicKey` is the seed's 32-byte public key. */
  signer(seed: Uint8Array, publicKey: Uint8Array): Sign
  /** Prepares a 32-byte public key for verify (throws for a key of another length or, node:crypto, a bad one). */
  prepare(publicKey: Uint8Array): VerifyKey
  /** Whether `signature` (64 bytes) is `key`'s over `message`; false, never a throw, for a bad signature. */
  verify(key: VerifyKey, message: Uint8Array, signature: Uint8Array): boolean
}

// DER prefixes of an Ed25519 PKCS#8 private key and SPKI public key (RFC 8410): prefix || 32 raw bytes.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')

export const nodeCryptoEd25519: Ed25519 = {
  name: 'node:crypto',
  signer(seed) {
    const key = createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
    return (message) => cryptoSign(null, message, key)
  },
  prepare(publicKey) {
    if (publicKey.length !== 32) throw new RangeError('an Ed25519 public key is 32 bytes')
    return createPublicKey({ key: Buffer.concat([SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' }) as unknown as VerifyKey
  },
  verify(key, message, signature) {
    if (signature.length !== 64) return false
    try {
      return cryptoVerify(null, message, key as unknown as KeyObject, signature)
    } catch {
      return false
    }
  },
}

/** The part of sodium-native's API used here. */
interface SodiumBinding {
  crypto_sign_seed_keypair(publicKey: Uint8Array, secretKey: Uint8Array, seed: Uint8Array): void
  crypto_sign_detached(signature: Uint8Array, message: Uint8Array, secretKey: Uint8Array): void
  crypto_sign_verify_detached(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean
}

function sodiumEd25519(sodium: SodiumBinding): Ed25519 {
  return {
    name: 'libsodium',
    signer(seed, publicKey) {
      const pk = new Uint8Array(32)
      const sk = new Uint8Array(64) // seed || public key
      sodium.crypto_sign_seed_keypair(pk, sk, seed)
      if (!pk.every((b, i) => b === publicKey[i])) throw new Error('libsodium derived another public key from this seed')
      return (message) => {
        const signature = Buffer.alloc(64) // a Buffer, as node:crypto's sign returns
        sodium.crypto_sign_detached(signature, message, sk)
        return signature
      }
    },
    prepare(publicKey) {
      if (publicKey.length !== 32) throw new RangeError('an Ed25519 public key is 32 bytes')
      return Uint8Array.from(publicKey) as unknown as VerifyKey
    },
    verify(key, message, signature) {
      if (signature.length !== 64) return false
      try {
        return sodium.crypto_sign_verify_detached(signature, message, key as unknown as Uint8Array)
      } catch {
        return false
      }
    },
  }
}

/** libsodium's Ed25519, or undefined where sodium-native does not load (no build for this platform). */
export function loadLibsodiumEd25519(): Ed25519 | undefined {
  try {
    return sodiumEd25519(createRequire(import.meta.url)('sodium-native') as SodiumBinding)
  } catch {
    return undefined
  }
}

/** NOIR_ED25519: unset (libsodium where it loads), `libsodium` (nothing else) or `node-crypto`. */
export function chooseEd25519(wanted: string | undefined): Ed25519 {
  if (wanted === 'node-crypto') return nodeCryptoEd25519
  if (wanted !== undefined && wanted !== '' && wanted !== 'libsodium') throw new Error(`NOIR_ED25519=${JSON.stringify(wanted).slice(0, 40)}: use libsodium or node-crypto`)
  const sodium = loadLibsodiumEd25519()
  if (sodium) return sodium
  if (wanted === 'libsodium') throw new Error('NOIR_ED25519=libsodium but sodium-native does not load on this platform')
  return nodeCryptoEd25519
}

/** This process's Ed25519 (every thread chooses the same way). */
export const ed25519: Ed25519 = chooseEd25519(process.env.NOIR_ED25519)

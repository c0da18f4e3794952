// One Ed25519 key = the node's libp2p identity = its did:key. Signing and verifying go through
// identity/ed25519.ts (libsodium where it loads, else node:crypto) with public keys cached ready for use. The
// seed never leaves this object except through exportSeed() (for the keystore); inspect/JSON/string forms
// redact it.
import { createHash, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { inspect } from 'node:util'
import { privateKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { didFromPublicKey, publicKeyFromDid } from './did-key.ts'
import { InvalidKeyError } from './errors.ts'
import { BoundedMap } from './lru.ts'
import { ed25519, type Sign, type VerifyKey } from './ed25519.ts'

// DER prefixes of an Ed25519 PKCS#8 private key and SPKI public key (RFC 8410): prefix || 32 raw bytes.
const PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
// The same for X25519 (OID 1.3.101.110).
export const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')
export const X25519_SPKI_PREFIX = Buffer.from('302a300506032b656e032100', 'hex')

function privateKeyObject(seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
}

function rawPublicKey(priv: KeyObject): Uint8Array {
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' })
  return new Uint8Array(spki.subarray(spki.length - 32))
}

function rawSeed(priv: KeyObject): Uint8Array {
  const pkcs8 = priv.export({ format: 'der', type: 'pkcs8' })
  return new Uint8Array(pkcs8.subarray(pkcs8.length - 32))
}

export class NodeKey {
  readonly did: string
  readonly publicKey: Uint8Array
  // Private names: out of reach of enumeration, inspection and JSON.
  readonly #seed: Uint8Array
  readonly #sign: Sign
  #peerId: PeerId | undefined
  #libp2pKey: PrivateKey | undefined
  #x25519: KeyObject | undefined

  private constructor(seed: Uint8Array, keyObject: KeyObject) {
    this.publicKey = rawPublicKey(keyObject)
    this.did = didFromPublicKey(this.publicKey)
    this.#seed = Uint8Array.from(seed)
    this.#sign = ed25519.signer(this.#seed, this.publicKey)
  }

  static generate(): NodeKey {
    const { privateKey } = generateKeyPairSync('ed25519')
    return new NodeKey(rawSeed(privateKey), privateKey)
  }

  /** From a 32-byte seed (the RFC 8032 private key). */
  static fromSeed(seed: Uint8Array): NodeKey {
    if (!(seed instanceof Uint8Array) || seed.length !== 32) throw new InvalidKeyError('an Ed25519 seed is 32 bytes')
    return new NodeKey(seed, privateKeyObject(seed))
  }

  /** From a libp2p Ed25519 private key (its `raw` is seed || public key). */
  static fromLibp2pPrivateKey(key: PrivateKey): NodeKey {
    if (key.type !== 'Ed25519') throw new InvalidKeyError(`libp2p key is ${key.type}, not Ed25519`)
    const nk = NodeKey.fromSeed(key.raw.subarray(0, 32))
    if (!key.publicKey.raw.every((b, i) => b === nk.publicKey[i])) throw new InvalidKeyError('libp2p key: public key does not match its seed')
    return nk
  }

  /** Ed25519 signature (64 bytes) of `message`. */
  sign(message: Uint8Array): Uint8Array {
    return this.#sign(message)
  }

  /**
   * X25519 key agreement with this key's Montgomery form (RFC 7748; the scalar is the first half of
   * SHA-512(seed), as Ed25519 derives it): the shared secret with `peerX25519`. Sealed boxes open with it
   * (identity/sealed-box.ts); the seed stays inside this object.
   */
  agreeX25519(peerX25519: Uint8Array): Uint8Array {
    if (!this.#x25519) {
      const scalar = createHash('sha512').update(this.#seed).digest().subarray(0, 32)
      this.#x25519 = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, scalar]), format: 'der', type: 'pkcs8' })
    }
    if (peerX25519.length !== 32) throw new InvalidKeyError('an X25519 public key is 32 bytes')
    const peer = createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, peerX25519]), format: 'der', type: 'spki' })
    return new Uint8Array(diffieHellman({ privateKey: this.#x25519, publicKey: peer }))
  }

  /** The same key as a libp2p private key (for `createLibp2p({ privateKey })`). */
  toLibp2pPrivateKey(): PrivateKey {
    if (!this.#libp2pKey) {
      const raw = new Uint8Array(64)
      raw.set(this.#seed, 0)
      raw.set(this.publicKey, 32)
      this.#libp2pKey = privateKeyFromRaw(raw)
    }
    return this.#libp2pKey
  }

  get peerId(): PeerId {
    if (!this.#peerId) this.#peerId = peerIdFromPrivateKey(this.toLibp2pPrivateKey())
    return this.#peerId
  }

  /** The 32-byte seed. Only the keystore and the signature worker's thread (same process) should call this. */
  exportSeed(): Uint8Array {
    return Uint8Array.from(this.#seed)
  }

  toJSON(): { did: string } {
    return { did: this.did }
  }

  toString(): string {
    return `NodeKey(${this.did})`
  }

  [inspect.custom](): string {
    return `NodeKey { did: '${this.did}', seed: [redacted] }`
  }
}

// ---- verification with cached public keys --------------------------------------------------------------------

// A miss costs decoding the did:key (base58) and preparing the key (node:crypto: a KeyObject, ~30-50 µs, a
// third of a verification, ~0.8 KB held; libsodium: a 32-byte copy). 4,096 is enough for the peers a node
// talks to; an orchestrator whose bids come from the whole mesh sizes the did cache to the nodes it knows
// (sizePublicKeyCacheFor), else past 4,096 nodes most bids miss.
export const DEFAULT_KEY_CACHE_SIZE = 4096
/** The most keys the did cache grows to: a capacity index holds at most 250,000 nodes. */
export const MAX_KEY_CACHE_SIZE = 262_144
const keysByHex = new BoundedMap<string, VerifyKey>(DEFAULT_KEY_CACHE_SIZE)
const keysByDid = new BoundedMap<string, VerifyKey>(DEFAULT_KEY_CACHE_SIZE)

/**
 * Sizes the cache of public keys by did:key (this thread's) to hold `activeSigners` keys with a quarter to
 * spare, never below the default 4,096 nor above MAX_KEY_CACHE_SIZE; returns the size set. Call it as the set
 * of signers grows or shrinks (the orchestration service does, from its capacity index, at every prune).
 */
export function sizePublicKeyCacheFor(activeSigners: number): number {
  const n = Math.min(MAX_KEY_CACHE_SIZE, Math.max(DEFAULT_KEY_CACHE_SIZE, Math.ceil((Number.isFinite(activeSigners) ? Math.max(0, activeSigners) : 0) * 1.25)))
  keysByDid.resize(n)
  return n
}

/** Entries held and the bound of the did:key public-key cache. */
export function publicKeyCacheStats(): { size: number; max: number } {
  return { size: keysByDid.size, max: keysByDid.max }
}

function cachedVerifyKey(pub: Uint8Array): VerifyKey {
  const hex = Buffer.from(pub.buffer, pub.byteOffset, pub.byteLength).toString('hex')
  let key = keysByHex.get(hex)
  if (!key) {
    key = ed25519.prepare(pub)
    keysByHex.set(hex, key)
  }
  return key
}

/** The did:key's public key, cached ready for verification (throws InvalidDidError). */
export function verifyKeyForDid(did: string): VerifyKey {
  let key = keysByDid.get(did)
  if (!key) {
    key = ed25519.prepare(publicKeyFromDid(did))
    keysByDid.set(did, key)
  }
  return key
}

/** Ed25519 verification; false (never a throw) for a wrong-length key or signature. */
export function verifyEd25519(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false
  try {
    return ed25519.verify(cachedVerifyKey(publicKey), message, signature)
  } catch {
    return false
  }
}

/** Like verifyEd25519, keyed by a did:key (throws InvalidDidError for a bad DID). */
export function verifyEd25519ForDid(did: string, message: Uint8Array, signature: Uint8Array): boolean {
  const key = verifyKeyForDid(did)
  if (signature.length !== 64) return false
  return ed25519.verify(key, message, signature)
}

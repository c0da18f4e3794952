// did:key for Ed25519 (spec/identity.md): `did:key:z` + base58btc(0xed 0x01 || 32-byte public key).
// The same key is the node's libp2p peer id; conversions go both ways. Resolution returns a DID document
// shaped like the did:key method's own test vectors (Ed25519 verification method + derived X25519 key
// agreement key), usable with did-resolver and stock did-jwt.
import { fromString, toString } from 'uint8arrays'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { publicKeyFromRaw } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import type { DIDDocument, DIDResolutionResult, DIDResolver, VerificationMethod } from 'did-resolver'
import { InvalidDidError } from './errors.ts'

const DID_KEY_PREFIX = 'did:key:'
/** multicodec ed25519-pub (0xed) as an unsigned varint. */
const ED25519_PUB_CODEC = Uint8Array.of(0xed, 0x01)
/** multicodec x25519-pub (0xec) as an unsigned varint. */
const X25519_PUB_CODEC = Uint8Array.of(0xec, 0x01)
/** Longest did:key this module accepts; an Ed25519 one is 56 characters. */
const MAX_DID_LENGTH = 128

function multibaseKey(codec: Uint8Array, key: Uint8Array): string {
  const bytes = new Uint8Array(codec.length + key.length)
  bytes.set(codec, 0)
  bytes.set(key, codec.length)
  return 'z' + toString(bytes, 'base58btc')
}

/** The multibase (base58btc, `z...`) encoding of an Ed25519 public key with its multicodec prefix. */
export function publicKeyMultibase(pub: Uint8Array): string {
  if (!(pub instanceof Uint8Array) || pub.length !== 32) throw new InvalidDidError('an Ed25519 public key is 32 bytes')
  return multibaseKey(ED25519_PUB_CODEC, pub)
}

export function didFromPublicKey(pub: Uint8Array): string {
  return DID_KEY_PREFIX + publicKeyMultibase(pub)
}

/** The 32-byte Ed25519 public key inside a did:key. Throws InvalidDidError for anything else. */
export function publicKeyFromDid(did: string): Uint8Array {
  if (typeof did !== 'string') throw new InvalidDidError('a DID is a string')
  if (did.length > MAX_DID_LENGTH) throw new InvalidDidError('DID is too long for an Ed25519 did:key')
  if (!did.startsWith(DID_KEY_PREFIX)) throw new InvalidDidError('not a did:key (expected did:key:z6Mk...)')
  const mb = did.slice(DID_KEY_PREFIX.length)
  if (mb[0] !== 'z') throw new InvalidDidError('did:key must use base58btc multibase (prefix z)')
  let bytes: Uint8Array
  try {
    bytes = fromString(mb.slice(1), 'base58btc')
  } catch {
    throw new InvalidDidError('did:key is not valid base58btc')
  }
  if (bytes.length !== 34 || bytes[0] !== 0xed || bytes[1] !== 0x01) {
    throw new InvalidDidError('did:key is not an Ed25519 public key (multicodec 0xed, 32 bytes)')
  }
  return bytes.slice(2)
}

/** True when `did` is a well-formed Ed25519 did:key. */
export function isDidKey(did: string): boolean {
  try {
    publicKeyFromDid(did)
    return true
  } catch {
    return false
  }
}

export function didFromPeerId(peerId: PeerId): string {
  if (peerId.type !== 'Ed25519' || !peerId.publicKey) throw new InvalidDidError(`peer id ${peerId.toString()} is not an Ed25519 key`)
  return didFromPublicKey(peerId.publicKey.raw)
}

/** The did:key of a peer, or undefined for a peer whose id is not an Ed25519 key (not a node). */
export function didOfPeer(peerId: PeerId): string | undefined {
  return peerId.type === 'Ed25519' && peerId.publicKey ? didFromPublicKey(peerId.publicKey.raw) : undefined
}

export function peerIdFromDid(did: string): PeerId {
  return peerIdFromPublicKey(publicKeyFromRaw(publicKeyFromDid(did)))
}

// ---- Ed25519 -> X25519 (RFC 7748 birational map u = (1 + y) / (1 - y) mod p) --------------------------------

const P = (1n << 255n) - 19n

function modPow(base: bigint, exp: bigint): bigint {
  let result = 1n
  let b = base % P
  let e = exp
  while (e > 0n) {
    if (e & 1n) result = (result * b) % P
    b = (b * b) % P
    e >>= 1n
  }
  return result
}

/** The X25519 public key for an Ed25519 public key (used for the DID document's keyAgreement). */
export function x25519FromEd25519PublicKey(pub: Uint8Array): Uint8Array {
  if (pub.length !== 32) throw new InvalidDidError('an Ed25519 public key is 32 bytes')
  let y = 0n
  for (let i = 31; i >= 0; i--) y = (y << 8n) | BigInt(pub[i]!)
  y &= (1n << 255n) - 1n // drop the sign bit of x
  const den = (1n - y + P) % P
  if (den === 0n) throw new InvalidDidError('Ed25519 public key has no X25519 counterpart')
  let u = ((1n + y) * modPow(den, P - 2n)) % P
  const out = new Uint8Array(32)
  for (let i = 0; i < 32; i++) {
    out[i] = Number(u & 0xffn)
    u >>= 8n
  }
  return out
}

// ---- resolution --------------------------------------------------------------------------------------------

/** The DID document of an Ed25519 did:key (spec/identity.md). Throws InvalidDidError. */
export function resolveDidKey(did: string): DIDDocument {
  const pub = publicKeyFromDid(did)
  const edMb = did.slice(DID_KEY_PREFIX.length)
  const xMb = multibaseKey(X25519_PUB_CODEC, x25519FromEd25519PublicKey(pub))
  const vmId = `${did}#${edMb}`
  const kaId = `${did}#${xMb}`
  const verificationMethod: VerificationMethod[] = [
    { id: vmId, type: 'Ed25519VerificationKey2020', controller: did, publicKeyMultibase: edMb },
    { id: kaId, type: 'X25519KeyAgreementKey2020', controller: did, publicKeyMultibase: xMb },
  ]
  return {
    '@context': [
      'https://www.w3.org/ns/did/v1',
      'https://w3id.org/security/suites/ed25519-2020/v1',
      'https://w3id.org/security/suites/x25519-2020/v1',
    ],
    id: did,
    verificationMethod,
    authentication: [vmId],
    assertionMethod: [vmId],
    capabilityDelegation: [vmId],
    capabilityInvocation: [vmId],
    keyAgreement: [kaId],
  }
}

/** did-resolver method map: `new Resolver(getDidKeyResolver())`. */
export function getDidKeyResolver(): Record<string, DIDResolver> {
  const key: DIDResolver = async (did): Promise<DIDResolutionResult> => {
    try {
      const didDocument = resolveDidKey(did)
      return { didResolutionMetadata: { contentType: 'application/did+ld+json' }, didDocument, didDocumentMetadata: {} }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err)
      return { didResolutionMetadata: { error: 'invalidDid', message }, didDocument: null, didDocumentMetadata: {} }
    }
  }
  return { key }
}

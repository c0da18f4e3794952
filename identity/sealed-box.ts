// Sealed boxes (spec/secrets.md "Sealed box"): a value only the holder of one did:key can open, bound to
// associated data the opener must name again. The sender makes an ephemeral X25519 key, agrees with the
// recipient's X25519 key (the Montgomery form of its Ed25519 key, RFC 7748 / RFC 8032), derives a one-time
// AES-256-GCM key with HKDF-SHA256 over both public keys, and encrypts. Nothing identifies the sender: who
// may receive the box is the sender's decision, who sent it is the channel's to say.
// Format: "nsb1." + base64url(ephemeral public key (32) || nonce (12) || ciphertext || tag (16)).
import { createCipheriv, createDecipheriv, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes } from 'node:crypto'
import { publicKeyFromDid, x25519FromEd25519PublicKey } from './did-key.ts'
import { SealedBoxError } from './errors.ts'
import { X25519_SPKI_PREFIX, type NodeKey } from './keys.ts'

const PREFIX = 'nsb1.'
const INFO = Buffer.from('noir:sealed-box:v1', 'utf8')
/** The largest value a box holds (the gateway's secrets are at most 64 KiB). */
export const MAX_SEALED_BYTES = 256 * 1024

function boxKey(shared: Uint8Array, ephemeral: Uint8Array, recipient: Uint8Array): Buffer {
  if (shared.every((b) => b === 0)) throw new SealedBoxError('the key agreement gave the all-zero secret (a low-order public key)')
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephemeral, recipient]), INFO, 32))
}

/** Seals `plain` to the holder of `recipientDid`'s key, bound to `associatedData`. */
export function sealTo(recipientDid: string, plain: Uint8Array | string, associatedData: string): string {
  const data = typeof plain === 'string' ? Buffer.from(plain, 'utf8') : Buffer.from(plain)
  if (data.length > MAX_SEALED_BYTES) throw new SealedBoxError(`a sealed box holds at most ${MAX_SEALED_BYTES} bytes`)
  const recipient = x25519FromEd25519PublicKey(publicKeyFromDid(recipientDid))
  const eph = generateKeyPairSync('x25519')
  const ephPub = new Uint8Array(eph.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32))
  const shared = diffieHellman({ privateKey: eph.privateKey, publicKey: createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, recipient]), format: 'der', type: 'spki' }) })
  const nonce = randomBytes(12)
  const c = createCipheriv('aes-256-gcm', boxKey(shared, ephPub, recipient), nonce)
  c.setAAD(Buffer.from(associatedData, 'utf8'))
  const body = Buffer.concat([c.update(data), c.final()])
  return PREFIX + Buffer.concat([ephPub, nonce, body, c.getAuthTag()]).toString('base64url')
}

/** Opens a box sealed to `key`'s DID with the same associated data; SealedBoxError otherwise. */
export function openSealed(key: NodeKey, box: string, associatedData: string): Uint8Array {
  if (typeof box !== 'string' || !box.startsWith(PREFIX) || box.length > PREFIX.length + Math.ceil(((MAX_SEALED_BYTES + 60) * 4) / 3) + 4) throw new SealedBoxError('not a sealed box')
  const raw = Buffer.from(box.slice(PREFIX.length), 'base64url')
  if (raw.length < 32 + 12 + 16) throw new SealedBoxError('a sealed box is too short')
  const ephPub = raw.subarray(0, 32)
  const recipient = x25519FromEd25519PublicKey(key.publicKey)
  let shared: Uint8Array
  try {
    shared = key.agreeX25519(ephPub)
  } catch {
    throw new SealedBoxError('the sealed box carries no usable public key')
  }
  const d = createDecipheriv('aes-256-gcm', boxKey(shared, ephPub, recipient), raw.subarray(32, 44))
  d.setAAD(Buffer.from(associatedData, 'utf8'))
  d.setAuthTag(raw.subarray(raw.length - 16))
  try {
    return new Uint8Array(Buffer.concat([d.update(raw.subarray(44, raw.length - 16)), d.final()]))
  } catch {
    throw new SealedBoxError('the sealed box does not open: another recipient, other associated data, or altered')
  }
}

// Sealed boxes: only the recipient's key opens one, only with the same associated data, and any altered byte
// is refused with SealedBoxError.
import t from 'tap'
import { createPublicKey, diffieHellman, generateKeyPairSync } from 'node:crypto'
import { NodeKey, SealedBoxError, openSealed, sealTo, x25519FromEd25519PublicKey } from '../index.ts'
import { X25519_SPKI_PREFIX } from '../keys.ts'

const text = (b: Uint8Array): string => Buffer.from(b).toString('utf8')

t.test('the X25519 key derived from the Ed25519 seed matches the one derived from the public key', async (t) => {
  const k = NodeKey.generate()
  const eph = generateKeyPairSync('x25519')
  const ephPub = new Uint8Array(eph.publicKey.export({ format: 'der', type: 'spki' }).subarray(-32))
  const mine = k.agreeX25519(ephPub)
  const theirs = diffieHellman({ privateKey: eph.privateKey, publicKey: createPublicKey({ key: Buffer.concat([X25519_SPKI_PREFIX, x25519FromEd25519PublicKey(k.publicKey)]), format: 'der', type: 'spki' }) })
  t.same(Buffer.from(mine), theirs)
})

t.test('a box opens for its recipient with the same associated data', async (t) => {
  const k = NodeKey.generate()
  const box = sealTo(k.did, 'hunter2 ünïcode', 'ctx-1')
  t.notMatch(box, /hunter2/)
  t.equal(text(openSealed(k, box, 'ctx-1')), 'hunter2 ünïcode')
  t.not(sealTo(k.did, 'hunter2', 'ctx-1'), sealTo(k.did, 'hunter2', 'ctx-1'), 'every seal is fresh')
})

t.test('another key does not open it', async (t) => {
  const k = NodeKey.generate()
  const other = NodeKey.generate()
  t.throws(() => openSealed(other, sealTo(k.did, 'v', 'a'), 'a'), SealedBoxError)
})

t.test('other associated data does not open it (a box replayed to another allocation)', async (t) => {
  const k = NodeKey.generate()
  const box = sealTo(k.did, 'v', 'noir:secret:v1|c-1|DB')
  t.throws(() => openSealed(k, box, 'noir:secret:v1|c-2|DB'), SealedBoxError)
  t.throws(() => openSealed(k, box, ''), SealedBoxError)
})

t.test('any altered byte is refused', async (t) => {
  const k = NodeKey.generate()
  const box = sealTo(k.did, 'some value', 'a')
  const raw = Buffer.from(box.slice(5), 'base64url')
  for (const i of [0, 31, 32, 43, 44, raw.length - 17, raw.length - 1]) {
    const bad = Buffer.from(raw)
    bad[i] = bad[i]! ^ 0x01
    t.throws(() => openSealed(k, `nsb1.${bad.toString('base64url')}`, 'a'), SealedBoxError, `byte ${i}`)
  }
  t.throws(() => openSealed(k, 'nsb1.AAAA', 'a'), SealedBoxError, 'too short')
  t.throws(() => openSealed(k, 'v1.abc', 'a'), SealedBoxError, 'not a box')
  t.throws(() => openSealed(k, `nsb1.${Buffer.concat([Buffer.alloc(32), raw.subarray(32)]).toString('base64url')}`, 'a'), SealedBoxError, 'a low-order ephemeral key')
})

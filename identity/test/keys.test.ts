// One Ed25519 key = libp2p identity = did:key; the seed never shows; DIDs resolve to proper documents.
import t from 'tap'
import { inspect } from 'node:util'
import { createHash } from 'node:crypto'
import { generateKeyPair, privateKeyFromRaw } from '@libp2p/crypto/keys'
import { peerIdFromString } from '@libp2p/peer-id'
import { Resolver } from 'did-resolver'
import * as ed from '@noble/ed25519'
import {
  didFromPeerId,
  didFromPublicKey,
  getDidKeyResolver,
  InvalidDidError,
  InvalidKeyError,
  NodeKey,
  peerIdFromDid,
  publicKeyFromDid,
  resolveDidKey,
  verifyEd25519,
  formatAddress,
  parseAddress,
  InvalidAddressError,
} from '../index.ts'
import { throwsA } from './helpers.ts'

t.test('a key is the same identity as did:key, libp2p private key and peer id, both ways', async (t) => {
  const key = NodeKey.generate()
  t.match(key.did, /^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/)
  t.equal(key.publicKey.length, 32)
  t.same(publicKeyFromDid(key.did), key.publicKey)
  t.equal(didFromPublicKey(key.publicKey), key.did)
  t.equal(didFromPeerId(key.peerId), key.did)
  t.ok(peerIdFromDid(key.did).equals(key.peerId))
  t.ok(peerIdFromString(key.peerId.toString()).equals(key.peerId))
  const lp = key.toLibp2pPrivateKey()
  t.equal(lp.type, 'Ed25519')
  t.same(NodeKey.fromLibp2pPrivateKey(lp).did, key.did)
  const generated = await generateKeyPair('Ed25519')
  const fromLibp2p = NodeKey.fromLibp2pPrivateKey(generated)
  t.same(fromLibp2p.publicKey, generated.publicKey.raw)
  t.equal(didFromPeerId(fromLibp2p.peerId), fromLibp2p.did)
  // the same bytes sign identically through libp2p, node:crypto and noble (Ed25519 is deterministic)
  const msg = new TextEncoder().encode('same key everywhere')
  const ours = key.sign(msg)
  t.same(await lp.sign(msg), ours)
  ed.hashes.sha512 = (m) => new Uint8Array(createHash('sha512').update(m).digest())
  t.same(ed.sign(msg, key.exportSeed()), ours)
  t.ok(verifyEd25519(key.publicKey, msg, ours))
  t.ok(await lp.publicKey.verify(msg, ours))
})

t.test('a wrong seed, a mismatched libp2p key and a non-Ed25519 key are refused with InvalidKeyError', async (t) => {
  throwsA(t, () => NodeKey.fromSeed(new Uint8Array(31)), InvalidKeyError)
  const a = NodeKey.generate()
  const b = NodeKey.generate()
  const raw = new Uint8Array(64)
  raw.set(a.exportSeed(), 0)
  raw.set(b.publicKey, 32)
  throwsA(t, () => NodeKey.fromLibp2pPrivateKey(privateKeyFromRaw(raw)), InvalidKeyError, 'mismatched')
  throwsA(t, () => NodeKey.fromLibp2pPrivateKey({ type: 'secp256k1' } as never), InvalidKeyError, 'secp256k1')
})

t.test('the seed never appears in inspect, JSON or string forms', async (t) => {
  const key = NodeKey.generate()
  const seed = key.exportSeed()
  const forms = [inspect(key, { showHidden: true, depth: 10 }), JSON.stringify(key), String(key), JSON.stringify({ key }), inspect({ nested: key })]
  for (const f of forms) {
    t.notOk(f.includes(Buffer.from(seed).toString('hex')), f)
    t.notOk(f.includes(Buffer.from(seed).toString('base64')), f)
    t.match(f, /did:key:z6Mk/)
  }
  t.same(Object.keys(key).sort(), ['did', 'publicKey'])
})

t.test('verifyEd25519 says false for a bad signature, key or length, never throws', async (t) => {
  const key = NodeKey.generate()
  const msg = Buffer.from('m')
  const sig = key.sign(msg)
  t.ok(verifyEd25519(key.publicKey, msg, sig))
  t.notOk(verifyEd25519(key.publicKey, Buffer.from('n'), sig))
  t.notOk(verifyEd25519(NodeKey.generate().publicKey, msg, sig))
  t.notOk(verifyEd25519(key.publicKey, msg, sig.subarray(1)))
  t.notOk(verifyEd25519(new Uint8Array(31), msg, sig))
  t.notOk(verifyEd25519(new Uint8Array(32).fill(0xff), msg, sig))
})

t.test('malformed DIDs are refused with InvalidDidError', async (t) => {
  const bad = ['', 'did:web:x', 'did:key:', 'did:key:z', 'did:key:f6Mk', 'did:key:z0OIl', 'did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme', 'did:key:z' + '1'.repeat(200)]
  for (const d of bad) throwsA(t, () => publicKeyFromDid(d), InvalidDidError, JSON.stringify(d))
  throwsA(t, () => resolveDidKey('did:key:nope'), InvalidDidError)
  throwsA(t, () => publicKeyFromDid(42 as unknown as string), InvalidDidError)
})

t.test('did-resolver resolves our did:key to a document with every verification relationship', async (t) => {
  const key = NodeKey.generate()
  const resolver = new Resolver(getDidKeyResolver())
  const { didDocument, didResolutionMetadata } = await resolver.resolve(key.did)
  t.equal(didResolutionMetadata.error, undefined)
  const vm = `${key.did}#${key.did.slice(8)}`
  t.equal(didDocument?.id, key.did)
  t.same(didDocument?.verificationMethod?.[0], { id: vm, type: 'Ed25519VerificationKey2020', controller: key.did, publicKeyMultibase: key.did.slice(8) })
  for (const rel of ['authentication', 'assertionMethod', 'capabilityDelegation', 'capabilityInvocation'] as const) t.same(didDocument?.[rel], [vm], rel)
  const fragment = await resolver.resolve(`${key.did}#${key.did.slice(8)}`)
  t.equal(fragment.didDocument?.id, key.did, 'a DID URL with a fragment resolves the DID')
  const bad = await resolver.resolve('did:key:z6Mkbad')
  t.equal(bad.didResolutionMetadata.error, 'invalidDid')
  t.equal(bad.didDocument, null)
})

t.test('addresses format and parse back; bad ones are refused with InvalidAddressError', async (t) => {
  const key = NodeKey.generate()
  t.equal(formatAddress(key.did, '/alloc/7f3a'), `${key.did}/alloc/7f3a`)
  t.same(parseAddress(formatAddress(key.did, '')), { did: key.did, path: '' })
  throwsA(t, () => formatAddress(key.did, 'alloc'), InvalidAddressError)
  throwsA(t, () => formatAddress('did:web:x', '/a'), InvalidAddressError)
  throwsA(t, () => parseAddress(`${key.did}/${'a'.repeat(600)}`), InvalidAddressError)
})

t.test('the did:key public-key cache is sized to the active signers, within its bounds, and a shrink evicts at once', async (t) => {
  const { DEFAULT_KEY_CACHE_SIZE, MAX_KEY_CACHE_SIZE, publicKeyCacheStats, verifyKeyForDid, sizePublicKeyCacheFor, verifyEd25519ForDid } = await import('../keys.ts')
  t.teardown(() => void sizePublicKeyCacheFor(0))
  t.equal(sizePublicKeyCacheFor(0), DEFAULT_KEY_CACHE_SIZE, 'never below the default')
  t.equal(sizePublicKeyCacheFor(10_000), 12_500, 'the active signers and a quarter to spare')
  t.equal(publicKeyCacheStats().max, 12_500)
  t.equal(sizePublicKeyCacheFor(10_000_000), MAX_KEY_CACHE_SIZE, 'never above the bound')
  t.equal(sizePublicKeyCacheFor(Number.NaN), DEFAULT_KEY_CACHE_SIZE)
  const keys = Array.from({ length: 5 }, () => NodeKey.generate())
  for (const k of keys) verifyKeyForDid(k.did)
  t.ok(publicKeyCacheStats().size >= 5)
  sizePublicKeyCacheFor(0)
  t.ok(publicKeyCacheStats().size <= DEFAULT_KEY_CACHE_SIZE)
  // a key evicted or not, verification gives the same answer
  const msg = new TextEncoder().encode('hello')
  t.ok(verifyEd25519ForDid(keys[0]!.did, msg, keys[0]!.sign(msg)))
  t.notOk(verifyEd25519ForDid(keys[1]!.did, msg, keys[0]!.sign(msg)))
})

// The test vectors written in spec/identity.md, spec/envelope.md and spec/capabilities.md hold for the code.
import t from 'tap'
import { fromString, toString } from 'uint8arrays'
import { Resolver } from 'did-resolver'
import {
  canonicalJson,
  CapabilityVerifier,
  createRevocation,
  EnvelopeVerifier,
  getDidKeyResolver,
  NodeKey,
  parseAddress,
  InvalidAddressError,
  peerIdFromDid,
  publicKeyFromDid,
  resolveDidKey,
  signEnvelope,
  signEnvelopeBatch,
  tokenHash,
  verifyRevocation,
  type EnvelopeInit,
  type Revocation,
} from '../index.ts'
import { specVector } from './spec-vectors.ts'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const seed = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'))

interface DidVector { seed: string; did: string; publicKeyBase58: string; x25519: string; x25519Base58: string; peerId: string }

t.test('every did:key method Ed25519 vector maps seed to the same DID, public key, X25519 key and peer id', async (t) => {
  const vectors = specVector<DidVector[]>('identity.md', 'did-key')
  t.equal(vectors.length, 5)
  const resolver = new Resolver(getDidKeyResolver())
  for (const v of vectors) {
    const key = NodeKey.fromSeed(seed(v.seed))
    t.equal(key.did, v.did)
    t.equal(toString(key.publicKey, 'base58btc'), v.publicKeyBase58)
    t.equal(toString(publicKeyFromDid(v.did), 'base58btc'), v.publicKeyBase58)
    t.equal(key.peerId.toString(), v.peerId)
    t.equal(peerIdFromDid(v.did).toString(), v.peerId)
    const doc = resolveDidKey(v.did)
    const ka = doc.verificationMethod?.find((m) => m.id === `${v.did}#${v.x25519}`)
    t.ok(ka, 'keyAgreement method present')
    t.equal(toString(fromString(v.x25519.slice(1), 'base58btc').subarray(2), 'base58btc'), v.x25519Base58)
    t.same(doc.keyAgreement, [`${v.did}#${v.x25519}`])
    const res = await resolver.resolve(v.did)
    t.same(res.didDocument, doc, 'did-resolver returns the same document')
  }
})

t.test('the address vectors parse or are refused with InvalidAddressError', async (t) => {
  const v = specVector<{ valid: [string, string][]; invalid: string[] }>('identity.md', 'addresses')
  for (const [address, path] of v.valid) t.same(parseAddress(address), { did: address.slice(0, address.length - path.length), path })
  for (const bad of v.invalid) t.throws(() => parseAddress(bad), InvalidAddressError, JSON.stringify(bad))
})

t.test('canonical JSON vectors serialize exactly as written', async (t) => {
  const v = specVector<{ input: string; canonical: string }[]>('envelope.md', 'canonical-json')
  for (const c of v) t.equal(canonicalJson(JSON.parse(c.input)), c.canonical, c.input)
})

interface SingleVector { seed: string; init: EnvelopeInit; payload: string; signature: string; wire: string }

t.test('the single envelope vector signs to the exact wire bytes and verifies', async (t) => {
  const v = specVector<SingleVector>('envelope.md', 'envelope-single')
  const key = NodeKey.fromSeed(seed(v.seed))
  const s = signEnvelope(key, v.init)
  t.equal(Buffer.from(s.bytes.subarray(66)).toString('utf8'), v.payload)
  t.equal(hex(s.bytes.subarray(2, 66)), v.signature)
  t.equal(hex(s.bytes), v.wire)
  const verifier = new EnvelopeVerifier({ now: () => v.init.now! + 1000 })
  const env = verifier.verify(seed(v.wire))
  t.equal(env.id, v.init.id)
  t.same(env.body, v.init.body)
})

t.test('the batch vector signs to the exact wires and each verifies on its own', async (t) => {
  const v = specVector<{ seed: string; inits: EnvelopeInit[]; wires: string[] }>('envelope.md', 'envelope-batch')
  const key = NodeKey.fromSeed(seed(v.seed))
  t.same(signEnvelopeBatch(key, v.inits).map((s) => hex(s.bytes)), v.wires)
  for (const [i, w] of v.wires.entries()) {
    const verifier = new EnvelopeVerifier({ now: () => v.inits[i]!.now! })
    t.equal(verifier.verify(seed(w)).id, v.inits[i]!.id)
  }
})

t.test('the capability vector (made by stock did-jwt) verifies and its revocation vector is exact', async (t) => {
  const c = specVector<{ issuerSeed: string; issuer: string; audience: string; token: string; sha256: string }>('capabilities.md', 'capability')
  t.equal(tokenHash(c.token), c.sha256)
  const verifier = new CapabilityVerifier({ trustedRoots: [c.issuer], now: () => Date.UTC(2026, 0, 2) })
  const r = await verifier.verify(c.token, { audience: c.audience, ability: '/noir/deploy/status' })
  t.equal(r.issuer, c.issuer)
  t.same(r.abilities, [{ can: '/noir/deploy', limits: { cpu: 4 } }])
  const rv = specVector<{ seed: string; revocation: Revocation }>('capabilities.md', 'revocation')
  const key = NodeKey.fromSeed(seed(rv.seed))
  t.same(createRevocation(key, c.token, rv.revocation.at), rv.revocation)
  t.doesNotThrow(() => verifyRevocation(rv.revocation))
})

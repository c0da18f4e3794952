// Capability tokens: issuing, delegating (narrow only, never outliving), chain verification, revocation,
// and interoperability with stock did-jwt both ways.
import t from 'tap'
import { createJWT, decodeJWT, EdDSASigner, verifyJWT } from 'did-jwt'
import { Resolver, type DIDResolutionResult } from 'did-resolver'
import {
  abilityCovers,
  CapabilityDeniedError,
  CapabilityExpiredError,
  CapabilitySignatureError,
  CapabilityVerifier,
  createRevocation,
  decodeCapabilityChain,
  delegateCapability,
  getDidKeyResolver,
  InvalidRevocationError,
  issueCapability,
  MalformedCapabilityError,
  MemoryRevocationStore,
  NodeKey,
  NotAudienceError,
  OutlivesParentError,
  RevokedCapabilityError,
  tokenHash,
  UntrustedRootError,
  verifyRevocation,
  WideningDelegationError,
} from '../index.ts'
import { rejectsA, throwsA } from './helpers.ts'

const root = NodeKey.generate()
const alice = NodeKey.generate()
const bob = NodeKey.generate()
const carol = NodeKey.generate()
const HOUR = 3_600_000

t.test('ability coverage follows path segments', async (t) => {
  t.ok(abilityCovers('/noir/deploy', '/noir/deploy'))
  t.ok(abilityCovers('/noir/deploy', '/noir/deploy/status'))
  t.notOk(abilityCovers('/noir/deploy', '/noir/deployx'))
  t.notOk(abilityCovers('/noir/deploy/status', '/noir/deploy'))
  t.ok(abilityCovers('/', '/anything/at/all'))
})

t.test('an issued token verifies against its trusted root and grants what it says', async (t) => {
  const token = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir/deploy', limits: { cpu: 4 } }], ttlMs: HOUR })
  const v = new CapabilityVerifier({ trustedRoots: [root.did] })
  const r = await v.verify(token, { audience: alice.did, ability: '/noir/deploy/status' })
  t.equal(r.issuer, root.did)
  t.equal(r.root, root.did)
  t.equal(r.audience, alice.did)
  t.same(r.abilities, [{ can: '/noir/deploy', limits: { cpu: 4 } }])
  t.same(r.chain, [token])
  t.ok(Math.abs(r.expiresAt - (Date.now() + HOUR)) < 2000)
  await rejectsA(t, () => v.verify(token, { ability: '/noir/deployx' }), CapabilityDeniedError, 'sibling path')
  await rejectsA(t, () => v.verify(token, { audience: bob.did }), NotAudienceError, 'other audience')
  await rejectsA(t, () => new CapabilityVerifier({ trustedRoots: [bob.did] }).verify(token), UntrustedRootError)
})

t.test('a delegation chain verifies, root first, with the leaf\'s abilities', async (t) => {
  const t1 = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir' }], ttlMs: HOUR })
  const t2 = await delegateCapability(alice, t1, { audience: bob.did, abilities: [{ can: '/noir/deploy' }] })
  const t3 = await delegateCapability(bob, t2, { audience: carol.did, abilities: [{ can: '/noir/deploy/status', limits: { rate: 5 } }], ttlMs: HOUR / 2 })
  const r = await new CapabilityVerifier({ trustedRoots: [root.did] }).verify(t3, { audience: carol.did, ability: '/noir/deploy/status' })
  t.same(r.chain, [t1, t2, t3])
  t.equal(r.issuer, bob.did)
  t.equal(r.root, root.did)
  t.same(decodeCapabilityChain(t2)[0]!.exp, decodeCapabilityChain(t1)[0]!.exp, 'without ttl a delegation expires with its parent')
})

t.test('a delegation that widens its parent is refused with WideningDelegationError', async (t) => {
  const parent = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir/deploy', limits: { cpu: 4 } }], ttlMs: HOUR })
  await rejectsA(t, () => delegateCapability(alice, parent, { audience: bob.did, abilities: [{ can: '/noir' }] }), WideningDelegationError, 'wider path')
  await rejectsA(t, () => delegateCapability(alice, parent, { audience: bob.did, abilities: [{ can: '/noir/deployx' }] }), WideningDelegationError, 'sibling path')
  await rejectsA(t, () => delegateCapability(alice, parent, { audience: bob.did, abilities: [{ can: '/noir/deploy', limits: { cpu: 8 } }] }), WideningDelegationError, 'raised limit')
  await rejectsA(t, () => delegateCapability(alice, parent, { audience: bob.did, abilities: [{ can: '/noir/deploy' }] }), WideningDelegationError, 'dropped limit')
  // a hand-made widening token (signed correctly, bypassing delegateCapability) is refused by the verifier
  const forged = await createJWT(
    { aud: bob.did, exp: Math.floor(Date.now() / 1000) + 60, att: [{ can: '/' }], prf: [parent] },
    { issuer: alice.did, signer: EdDSASigner(alice.exportSeed()), alg: 'EdDSA' },
  )
  await rejectsA(t, () => new CapabilityVerifier({ trustedRoots: [root.did] }).verify(forged), WideningDelegationError, 'verifier')
})

t.test('a delegation that outlives its parent is refused with OutlivesParentError', async (t) => {
  const parent = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir' }], ttlMs: 60_000 })
  await rejectsA(t, () => delegateCapability(alice, parent, { audience: bob.did, abilities: [{ can: '/noir' }], ttlMs: HOUR }), OutlivesParentError)
  const forged = await createJWT(
    { aud: bob.did, exp: Math.floor(Date.now() / 1000) + 7200, att: [{ can: '/noir' }], prf: [parent] },
    { issuer: alice.did, signer: EdDSASigner(alice.exportSeed()), alg: 'EdDSA' },
  )
  await rejectsA(t, () => new CapabilityVerifier({ trustedRoots: [root.did] }).verify(forged), OutlivesParentError, 'verifier')
})

t.test('only the parent\'s audience may delegate it (NotAudienceError)', async (t) => {
  const parent = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir' }], ttlMs: HOUR })
  await rejectsA(t, () => delegateCapability(bob, parent, { audience: carol.did, abilities: [{ can: '/noir' }] }), NotAudienceError)
  const forged = await createJWT(
    { aud: carol.did, exp: Math.floor(Date.now() / 1000) + 60, att: [{ can: '/noir' }], prf: [parent] },
    { issuer: bob.did, signer: EdDSASigner(bob.exportSeed()), alg: 'EdDSA' },
  )
  await rejectsA(t, () => new CapabilityVerifier({ trustedRoots: [root.did] }).verify(forged), NotAudienceError, 'verifier')
})

t.test('an expired parent cannot be delegated (CapabilityExpiredError)', async (t) => {
  const now = Date.now()
  const parent = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir' }], ttlMs: 5000, now })
  await rejectsA(t, () => delegateCapability(alice, parent, { audience: bob.did, abilities: [{ can: '/noir' }], now: now + 10_000 }), CapabilityExpiredError)
})

t.test('a verified result is frozen, so no caller can alter what the cache hands to the next one', async (t) => {
  const token = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir/deploy' }], ttlMs: HOUR })
  const v = new CapabilityVerifier({ trustedRoots: [root.did] })
  const r = await v.verify(token)
  t.throws(() => { (r.abilities as { can: string }[]).push({ can: '/' }) })
  t.throws(() => { r.abilities[0]!.can = '/' })
  t.same((await v.verify(token)).abilities, [{ can: '/noir/deploy' }])
})

t.test('expired and not-yet-valid tokens are refused with CapabilityExpiredError', async (t) => {
  let now = Date.now()
  const token = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir' }], ttlMs: 10_000, now })
  const v = new CapabilityVerifier({ trustedRoots: [root.did], now: () => now })
  await v.verify(token)
  now += 11_000
  await rejectsA(t, () => v.verify(token), CapabilityExpiredError, 'expired after a cached verify')
  const later = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir' }], ttlMs: HOUR, notBeforeMs: Date.now() + 10 * 60_000 })
  await rejectsA(t, () => new CapabilityVerifier({ trustedRoots: [root.did] }).verify(later), CapabilityExpiredError, 'not before')
})

t.test('a token with a tampered payload or signature is refused with CapabilitySignatureError', async (t) => {
  const token = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir/deploy' }], ttlMs: HOUR })
  const [h, p, s] = token.split('.') as [string, string, string]
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>
  claims.att = [{ can: '/' }]
  const widened = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`
  const v = new CapabilityVerifier({ trustedRoots: [root.did] })
  await rejectsA(t, () => v.verify(widened), CapabilitySignatureError, 'payload')
  const badSig = `${h}.${p}.${Buffer.from(alice.sign(Buffer.from(`${h}.${p}`))).toString('base64url')}`
  await rejectsA(t, () => v.verify(badSig), CapabilitySignatureError, 'signed by another key')
})

t.test('a revoked token (or a revoked parent) is refused with RevokedCapabilityError', async (t) => {
  const t1 = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir' }], ttlMs: HOUR })
  const t2 = await delegateCapability(alice, t1, { audience: bob.did, abilities: [{ can: '/noir/deploy' }] })
  const store = new MemoryRevocationStore()
  const v = new CapabilityVerifier({ trustedRoots: [root.did], revocations: store })
  await v.verify(t2) // cached now: revocation must still be consulted
  await store.add(createRevocation(alice, t2))
  await rejectsA(t, () => v.verify(t2), RevokedCapabilityError, 'leaf revoked by its issuer')
  await v.verify(t1)
  const store2 = new MemoryRevocationStore()
  const v2 = new CapabilityVerifier({ trustedRoots: [root.did], revocations: store2 })
  await store2.add(createRevocation(root, t1))
  await rejectsA(t, () => v2.verify(t2), RevokedCapabilityError, 'parent revoked by the root')
})

t.test('only an issuer in the chain may revoke; a stranger\'s revocation is refused or ignored', async (t) => {
  const t1 = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir' }], ttlMs: HOUR })
  const t2 = await delegateCapability(alice, t1, { audience: bob.did, abilities: [{ can: '/noir/deploy' }] })
  throwsA(t, () => createRevocation(carol, t2), InvalidRevocationError, 'stranger')
  throwsA(t, () => createRevocation(bob, t2), InvalidRevocationError, 'the audience is not an issuer')
  // alice (issuer of t2) cannot revoke her parent t1: the record is valid but the verifier ignores it for t1
  const store = new MemoryRevocationStore()
  const hand = { token: tokenHash(t1), issuer: alice.did, at: Date.now() }
  const sig = Buffer.from(alice.sign(Buffer.concat([Buffer.from('noir:revoke:v1\0'), Buffer.from(JSON.stringify({ at: hand.at, issuer: hand.issuer, token: hand.token }))]))).toString('base64url')
  await store.add({ ...hand, sig })
  const v = new CapabilityVerifier({ trustedRoots: [root.did], revocations: store })
  await v.verify(t1)
  await rejectsA(t, () => store.add({ ...hand, sig: sig.replace(/^./, sig[0] === 'A' ? 'B' : 'A') }), InvalidRevocationError, 'bad signature')
  throwsA(t, () => verifyRevocation({ ...hand, sig, at: hand.at + 1 }), InvalidRevocationError, 'altered record')
})

t.test('covers() returns the first token that grants the ability, else CapabilityDeniedError with each reason', async (t) => {
  const v = new CapabilityVerifier({ trustedRoots: [root.did] })
  const deploy = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir/deploy' }], ttlMs: HOUR })
  const ledger = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir/ledger' }], ttlMs: HOUR })
  const r = await v.covers(['garbage', deploy, ledger], { audience: alice.did, ability: '/noir/ledger/topup' })
  t.same(r.chain, [ledger])
  try {
    await v.covers(['garbage', deploy], { audience: alice.did, ability: '/noir/ledger/topup' })
    t.fail('should deny')
  } catch (err) {
    t.ok(err instanceof CapabilityDeniedError)
    t.match((err as Error).message, /MalformedCapabilityError.*CapabilityDeniedError/)
  }
  await rejectsA(t, () => v.covers([], { audience: alice.did, ability: '/noir' }), CapabilityDeniedError, 'nothing presented')
})

t.test('malformed tokens are refused with MalformedCapabilityError', async (t) => {
  const v = new CapabilityVerifier({ trustedRoots: [root.did] })
  const sign = (payload: Record<string, unknown>): Promise<string> =>
    createJWT(payload, { issuer: root.did, signer: EdDSASigner(root.exportSeed()), alg: 'EdDSA' })
  const exp = Math.floor(Date.now() / 1000) + 60
  const cases: [string, string | Promise<string>][] = [
    ['not a JWT', 'nope'],
    ['no att', sign({ aud: alice.did, exp })],
    ['empty att', sign({ aud: alice.did, exp, att: [] })],
    ['bad path', sign({ aud: alice.did, exp, att: [{ can: 'noir' }] })],
    ['extra ability field', sign({ aud: alice.did, exp, att: [{ can: '/noir', x: 1 }] })],
    ['non-number limit', sign({ aud: alice.did, exp, att: [{ can: '/noir', limits: { cpu: '4' } }] })],
    ['no exp', sign({ aud: alice.did, att: [{ can: '/noir' }] })],
    ['aud list', sign({ aud: [alice.did, bob.did], exp, att: [{ can: '/noir' }] })],
    ['two parents', sign({ aud: alice.did, exp, att: [{ can: '/noir' }], prf: ['a', 'b'] })],
    ['bad parent', sign({ aud: alice.did, exp, att: [{ can: '/noir' }], prf: ['x.y.z'] })],
  ]
  for (const [name, tok] of cases) await rejectsA(t, async () => v.verify(await tok), MalformedCapabilityError, name)
  const es256k = `${Buffer.from(JSON.stringify({ alg: 'ES256K', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: root.did, aud: alice.did, exp, att: [{ can: '/x' }] })).toString('base64url')}.sig`
  await rejectsA(t, () => v.verify(es256k), MalformedCapabilityError, 'other algorithm')
})

// ---- interoperability with stock did-jwt ---------------------------------------------------------------------

/** An independent did:key resolver written here from the did:key spec (own base58 decoder, 2018 key type). */
function independentResolver(): Resolver {
  const ALPHABET = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
  const b58decode = (s: string): Uint8Array => {
    let n = 0n
    for (const c of s) n = n * 58n + BigInt(ALPHABET.indexOf(c))
    const bytes: number[] = []
    while (n > 0n) {
      bytes.unshift(Number(n % 256n))
      n /= 256n
    }
    for (const c of s) {
      if (c !== '1') break
      bytes.unshift(0)
    }
    return Uint8Array.from(bytes)
  }
  const b58encode = (b: Uint8Array): string => {
    let n = 0n
    for (const x of b) n = n * 256n + BigInt(x)
    let s = ''
    while (n > 0n) {
      s = ALPHABET[Number(n % 58n)] + s
      n /= 58n
    }
    return s
  }
  return new Resolver({
    key: async (did): Promise<DIDResolutionResult> => {
      const bytes = b58decode(did.slice('did:key:z'.length))
      if (bytes[0] !== 0xed || bytes[1] !== 0x01 || bytes.length !== 34) throw new Error('not ed25519')
      const id = `${did}#key-1`
      return {
        didResolutionMetadata: {},
        didDocumentMetadata: {},
        didDocument: {
          id: did,
          verificationMethod: [{ id, type: 'Ed25519VerificationKey2018', controller: did, publicKeyBase58: b58encode(bytes.subarray(2)) }],
          assertionMethod: [id],
          authentication: [id],
        },
      }
    },
  })
}

t.test('tokens we issue verify with stock did-jwt verifyJWT, through our resolver and an independent one', async (t) => {
  const t1 = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir' }], ttlMs: HOUR })
  const t2 = await delegateCapability(alice, t1, { audience: bob.did, abilities: [{ can: '/noir/deploy' }] })
  for (const [name, resolver] of [['ours', new Resolver(getDidKeyResolver())], ['independent', independentResolver()]] as const) {
    const r1 = await verifyJWT(t1, { resolver, audience: alice.did })
    t.equal(r1.issuer, root.did, name)
    const r2 = await verifyJWT(t2, { resolver, audience: bob.did })
    t.equal(r2.issuer, alice.did, name)
    t.same(r2.payload.prf, [t1], name)
  }
  t.equal(decodeJWT(t1).header.alg, 'EdDSA')
  // and a tampered one fails stock verification too
  const [h, p, s] = t1.split('.')
  await t.rejects(verifyJWT(`${h}.${p}.${s!.slice(0, -4)}AAAA`, { resolver: independentResolver(), audience: alice.did }))
})

t.test('a token made with stock did-jwt createJWT and EdDSASigner by a did:key issuer is accepted', async (t) => {
  const exp = Math.floor(Date.now() / 1000) + 600
  const token = await createJWT(
    { aud: alice.did, exp, att: [{ can: '/noir/deploy' }] },
    { issuer: root.did, signer: EdDSASigner(root.exportSeed()), alg: 'EdDSA' },
  )
  const r = await new CapabilityVerifier({ trustedRoots: [root.did] }).verify(token, { audience: alice.did, ability: '/noir/deploy/x' })
  t.equal(r.expiresAt, exp * 1000)
  // and we can delegate it further
  const d = await delegateCapability(alice, token, { audience: bob.did, abilities: [{ can: '/noir/deploy/x' }] })
  t.equal((await new CapabilityVerifier({ trustedRoots: [root.did] }).verify(d)).root, root.did)
})

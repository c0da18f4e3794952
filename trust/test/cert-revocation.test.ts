// Revoking node certificates (actors/placement/cert-revocation.ts, spec/trust.md "Revoking a certificate"), as an
// attacker would try it: a forged or altered revocation, a stranger revoking certificates that are not theirs, one
// dated ahead or long past, an older one replayed after a newer, a flood; and what placement then believes.
import t from 'tap'
import { NodeKey } from '../../identity/keys.ts'
import {
  CertRevocations, InvalidCertRevocationError, signCertRevocation, verifyCertRevocation, type CertRevocation,
} from '../../actors/placement/cert-revocation.ts'
import { CORE_ABILITY, OWNER_ABILITY, certifiedCore, certifiedOwner, signNodeCertificate } from '../../actors/placement/node-certificate.ts'

const alice = NodeKey.generate()
const mallory = NodeKey.generate()
const root = NodeKey.generate()
const node = NodeKey.generate()

const reason = (f: () => unknown): string => {
  try {
    f()
    return 'accepted'
  } catch (err) {
    return err instanceof InvalidCertRevocationError ? err.reason : `other: ${(err as Error).name}`
  }
}

t.test('a revocation is believed only as its issuer signed it, dated now or in the past year', async (t) => {
  const now = Date.now()
  const r = signCertRevocation(alice, { ability: OWNER_ABILITY, node: node.did, reason: 'sold', now })
  t.same(verifyCertRevocation(r, now).body, r.body, 'a genuine one verifies')
  t.equal(reason(() => verifyCertRevocation({ ...r, body: { ...r.body, node: NodeKey.generate().did } }, now)), 'signature', 'another node put in: the signature fails')
  t.equal(reason(() => verifyCertRevocation({ ...r, body: { ...r.body, revokedAt: now + 1 } }, now)), 'signature', 'its date moved: the signature fails')
  t.equal(reason(() => verifyCertRevocation({ ...r, body: { ...r.body, issuer: mallory.did } }, now)), 'signature', 'claimed for another issuer: the signature fails')
  t.equal(reason(() => verifyCertRevocation({ ...r, sig: r.sig.replace(/^./, (c) => (c === 'A' ? 'B' : 'A')) }, now)), 'signature', 'a forged signature')
  t.equal(reason(() => verifyCertRevocation({ ...r, body: { ...r.body, extra: 1 } }, now)), 'malformed', 'an extra field')
  t.equal(reason(() => verifyCertRevocation({ ...r, body: { ...r.body, ability: '/noir/anything' } }, now)), 'malformed', 'an unknown ability')
  t.equal(reason(() => verifyCertRevocation('nonsense', now)), 'malformed')
  t.equal(reason(() => verifyCertRevocation(signCertRevocation(alice, { ability: OWNER_ABILITY, node: node.did, now: now + 120_000 }), now)), 'future', 'dated two minutes ahead')
  t.equal(reason(() => verifyCertRevocation(signCertRevocation(alice, { ability: OWNER_ABILITY, node: node.did, now: now - 367 * 86_400_000 }), now)), 'stale', 'older than any certificate still valid')
  t.equal(reason(() => signCertRevocation(alice, { ability: OWNER_ABILITY, node: 'not-a-did' })), 'malformed')
  t.equal(reason(() => signCertRevocation(alice, { ability: OWNER_ABILITY, node: node.did, reason: 'x'.repeat(201) })), 'malformed', 'a reason over 200 characters')
})

t.test('what a held revocation revokes: its issuer\'s certificates for that node and ability, issued until then', async (t) => {
  const held = new CertRevocations()
  const before = signNodeCertificate(alice, { ability: OWNER_ABILITY, node: node.did, ttlMs: 86_400_000, now: 1_000 })
  const r = signCertRevocation(alice, { ability: OWNER_ABILITY, node: node.did, now: 2_000 })
  t.equal(held.add(r), true)
  t.equal(held.revokes(before.body), true, 'a certificate issued before it is revoked')
  t.equal(held.revokes({ ...before.body, issuedAt: 2_000 }), true, 'and one issued at the same ms')
  t.equal(held.revokes({ ...before.body, issuedAt: 2_001 }), false, 'one issued after (the node certified again) is not')
  t.equal(held.revokes({ ...before.body, ability: CORE_ABILITY }), false, 'nor a certificate of another ability')
  t.equal(held.revokes({ ...before.body, issuer: root.did }), false, 'nor another issuer\'s')
  t.equal(held.revokes({ ...before.body, node: mallory.did }), false, 'nor another node\'s')
  // a stranger signs a revocation naming the node: it is keyed by its own DID, so it revokes nothing of Alice's
  const other = new CertRevocations()
  other.add(signCertRevocation(mallory, { ability: OWNER_ABILITY, node: node.did, now: 5_000 }))
  t.equal(other.revokes(before.body), false, 'a stranger\'s revocation does not touch Alice\'s certificate')
  // replays: an older revocation after a newer one changes nothing
  const newer = signCertRevocation(alice, { ability: OWNER_ABILITY, node: node.did, now: 9_000 })
  t.equal(held.add(newer), true)
  t.equal(held.add(r), false, 'an older one replayed: not added')
  t.equal(held.revokes({ ...before.body, issuedAt: 8_000 }), true, 'the newer one still holds')
  t.equal(held.add(newer), false, 'the same one again: not added')
  // a flood: the bound holds, the oldest dropped first
  const small = new CertRevocations({ max: 3 })
  const flood: CertRevocation[] = [1, 2, 3, 4].map(() => signCertRevocation(mallory, { ability: OWNER_ABILITY, node: NodeKey.generate().did, now: 1 }))
  for (const x of flood) small.add(x)
  t.equal(small.size, 3, 'at most max held')
  t.equal(small.revokes({ issuer: mallory.did, node: flood[0]!.body.node, ability: OWNER_ABILITY, issuedAt: 0 }), false, 'the oldest went first')
  t.equal(small.revokes({ issuer: mallory.did, node: flood[3]!.body.node, ability: OWNER_ABILITY, issuedAt: 0 }), true, 'the newest is held')
})

t.test('placement: a revoked owner certificate counts as no owner, a revoked core certificate as no membership', async (t) => {
  const held = new CertRevocations()
  const ownerCert = signNodeCertificate(alice, { ability: OWNER_ABILITY, node: node.did, ttlMs: 86_400_000 })
  const coreCert = signNodeCertificate(root, { ability: CORE_ABILITY, node: node.did, ttlMs: 86_400_000 })
  const bid = { node: node.did, owner: alice.did, ownerCert, coreCert }
  const revoked = (c: Parameters<CertRevocations['revokes']>[0]) => held.revokes(c)
  t.equal(certifiedOwner(bid, Date.now(), revoked), alice.did, 'before: the certified owner')
  t.equal(certifiedCore(bid, [root.did], Date.now(), revoked), true, 'and a core member')
  held.add(signCertRevocation(alice, { ability: OWNER_ABILITY, node: node.did }))
  t.equal(certifiedOwner(bid, Date.now(), revoked), node.did, 'revoked: its own owner (also for a certificate verified and cached before)')
  t.equal(certifiedCore(bid, [root.did], Date.now(), revoked), true, 'an owner revocation leaves core membership alone')
  held.add(signCertRevocation(root, { ability: CORE_ABILITY, node: node.did }))
  t.equal(certifiedCore(bid, [root.did], Date.now(), revoked), false, 'the root revoked it: no core member')
  const again = signNodeCertificate(alice, { ability: OWNER_ABILITY, node: node.did, ttlMs: 86_400_000, now: Date.now() + 5 })
  t.equal(certifiedOwner({ ...bid, ownerCert: again }, Date.now() + 10, revoked), alice.did, 'certified again after the revocation: believed again')
})

t.test('the node service: keeps what it is handed or hears (level on disk, across a restart), publishes and republishes it, refuses a forgery', async (t) => {
  const { mkdtempSync, rmSync } = await import('node:fs')
  const { tmpdir } = await import('node:os')
  const { join } = await import('node:path')
  const { LevelKvStore } = await import('../../core/level-kv-store.ts')
  const { CertRevocationService, CERT_REVOCATION_TOPIC } = await import('../../appliance/node-services/cert-revocation-service.ts')
  const dir = mkdtempSync(join(tmpdir(), 'noir-cert-revocations-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  // the mesh stands in as a recorder here (the daemons test runs the real one: owners-daemons.test.ts)
  const published: unknown[] = []
  let deliver: ((m: { topic: string; from: string; body: unknown }) => void) | undefined
  const pubsub = {
    publish: async (topic: string, body: unknown) => { if (topic === CERT_REVOCATION_TOPIC) published.push(body) },
    subscribe: (_topic: string, h: typeof deliver) => { deliver = h; return () => undefined },
  }
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined, child: () => log }
  const start = async (store: InstanceType<typeof LevelKvStore>) => {
    const svc = new CertRevocationService({ republishMs: 50 })
    await svc.start({ store, pubsub, log } as never)
    return svc
  }
  let store = await LevelKvStore.open(join(dir, 'db'))
  let svc = await start(store)
  const ownerCert = signNodeCertificate(alice, { ability: OWNER_ABILITY, node: node.did, ttlMs: 86_400_000, now: Date.now() - 1000 })
  const handed = signCertRevocation(alice, { ability: OWNER_ABILITY, node: node.did })
  t.same((await svc.submit(handed)).added, true, 'handed through the API: kept')
  t.ok(svc.revokes(ownerCert.body))
  t.equal(published.length, 1, 'and published')
  await new Promise((r) => setTimeout(r, 180))
  t.ok(published.length >= 3, `and published again while it runs (${published.length} times)`)
  const coreCert = signNodeCertificate(root, { ability: CORE_ABILITY, node: node.did, ttlMs: 86_400_000, now: Date.now() - 1000 })
  deliver!({ topic: CERT_REVOCATION_TOPIC, from: 'x', body: signCertRevocation(root, { ability: CORE_ABILITY, node: node.did }) })
  deliver!({ topic: CERT_REVOCATION_TOPIC, from: 'x', body: { ...handed, body: { ...handed.body, node: mallory.did } } })
  await new Promise((r) => setTimeout(r, 50))
  t.ok(svc.revokes(coreCert.body), 'one heard on the mesh: kept')
  t.same(svc.status(), { held: 2, published: 1, refused: { signature: 1 } }, 'an altered one heard: counted as refused, not kept')
  await t.rejects(svc.submit({ ...handed, sig: 'AAAA' }), InvalidCertRevocationError, 'a forgery handed to the API: a typed error')
  svc.stop()
  await store.close()
  store = await LevelKvStore.open(join(dir, 'db'))
  svc = await start(store)
  t.teardown(async () => {
    svc.stop()
    await store.close()
  })
  t.ok(svc.revokes(ownerCert.body) && svc.revokes(coreCert.body), 'restarted: both held still')
  const before = published.length
  await new Promise((r) => setTimeout(r, 120))
  t.ok(published.length > before, 'and the one it was handed is published again after the restart')
})

// Attacker-style tests of owner certification and the core pool (spec/trust.md "Owner certification", "The
// core pool"; spec/security.md "Worker trust"): a claimed owner or core membership is believed only with a
// certificate that verifies for that owner (a trusted root), names the presenting node, and is in its window.
// Forged, altered, wrong-signer, another node's, wrong-ability and expired certificates count as none, and
// placement then neither filters nor spreads by the claimed owner.
import t from 'tap'
import { NodeKey } from '../../identity/keys.ts'
import {
  CORE_ABILITY, NodeCertificateError, OWNER_ABILITY, certifiedCore, certifiedOwner, signNodeCertificate, verifyNodeCertificate,
  type NodeCertificate,
} from '../../actors/placement/node-certificate.ts'
import { constraintFailures } from '../../actors/placement/constraints.ts'
import { isEligible, place } from '../../actors/placement/place.ts'
import { offer, workload } from '../../actors/test/helpers.ts'
import { WorkloadParseError, InvalidWorkloadError } from '../../actors/errors.ts'
import { validateWorkload } from '../../actors/workload/workload.ts'

const alice = NodeKey.generate() // an owner
const mallory = NodeKey.generate() // another owner, and an attacker
const root = NodeKey.generate() // the operator's root
const node = NodeKey.generate().did
const other = NodeKey.generate().did
const now = 1_800_000_000_000
const DAY = 86_400_000
const ownerCert = (key = alice, n = node, at = now, ttlMs = 30 * DAY): NodeCertificate => signNodeCertificate(key, { ability: OWNER_ABILITY, node: n, ttlMs, now: at })
const coreCert = (key = root, n = node, at = now): NodeCertificate => signNodeCertificate(key, { ability: CORE_ABILITY, node: n, ttlMs: 30 * DAY, now: at })
const reason = (f: () => unknown): string => {
  try {
    f()
  } catch (err) {
    if (err instanceof NodeCertificateError) return err.reason
    throw err
  }
  return 'accepted'
}

t.test('a valid owner certificate is believed: the bid keeps its owner', async (t) => {
  const b = verifyNodeCertificate(ownerCert(), { ability: OWNER_ABILITY, node, issuers: [alice.did], now })
  t.equal(b.issuer, alice.did)
  t.equal(certifiedOwner({ node, owner: alice.did, ownerCert: ownerCert() }, now), alice.did)
})

t.test('a claimed owner without a valid certificate is no owner (the node is its own)', async (t) => {
  t.equal(certifiedOwner({ node, owner: alice.did }, now), node, 'no certificate')
  // forged: mallory signs but names alice as issuer
  const forged = ownerCert(mallory)
  const relabelled = { body: { ...forged.body, issuer: alice.did }, sig: forged.sig }
  t.equal(reason(() => verifyNodeCertificate(relabelled, { ability: OWNER_ABILITY, node, issuers: [alice.did], now })), 'signature')
  t.equal(certifiedOwner({ node, owner: alice.did, ownerCert: relabelled }, now), node, 'forged')
  // wrong signer: mallory's own certificate, presented with owner alice
  t.equal(reason(() => verifyNodeCertificate(ownerCert(mallory), { ability: OWNER_ABILITY, node, issuers: [alice.did], now })), 'wrong-issuer')
  t.equal(certifiedOwner({ node, owner: alice.did, ownerCert: ownerCert(mallory) }, now), node, 'wrong signer')
  // another node's certificate, copied from its bids
  t.equal(reason(() => verifyNodeCertificate(ownerCert(alice, other), { ability: OWNER_ABILITY, node, issuers: [alice.did], now })), 'wrong-node')
  t.equal(certifiedOwner({ node, owner: alice.did, ownerCert: ownerCert(alice, other) }, now), node, "another node's")
  // altered: the node field rewritten to this node
  const copied = ownerCert(alice, other)
  t.equal(certifiedOwner({ node, owner: alice.did, ownerCert: { body: { ...copied.body, node }, sig: copied.sig } }, now), node, 'altered')
  // expired, and from the future
  t.equal(reason(() => verifyNodeCertificate(ownerCert(alice, node, now - 31 * DAY), { ability: OWNER_ABILITY, node, issuers: [alice.did], now })), 'expired')
  t.equal(certifiedOwner({ node, owner: alice.did, ownerCert: ownerCert(alice, node, now - 31 * DAY) }, now), node, 'expired')
  t.equal(reason(() => verifyNodeCertificate(ownerCert(alice, node, now + DAY), { ability: OWNER_ABILITY, node, issuers: [alice.did], now })), 'not-yet-valid')
  // a core certificate is not an owner certificate
  t.equal(reason(() => verifyNodeCertificate(signNodeCertificate(alice, { ability: CORE_ABILITY, node, ttlMs: DAY, now }), { ability: OWNER_ABILITY, node, issuers: [alice.did], now })), 'wrong-ability')
  // malformed
  for (const bad of [null, 'x', {}, { body: {} }, { body: { ...ownerCert().body, extra: 1 }, sig: ownerCert().sig }, { body: ownerCert().body }]) {
    t.equal(reason(() => verifyNodeCertificate(bad, { ability: OWNER_ABILITY, node, issuers: [alice.did], now })) !== 'accepted', true)
    t.equal(certifiedOwner({ node, owner: alice.did, ownerCert: bad }, now), node)
  }
})

t.test('a certificate checked once (cached) is still refused when replayed by another node, altered, or past its expiry', async (t) => {
  const cert = ownerCert()
  t.equal(certifiedOwner({ node, owner: alice.did, ownerCert: cert }, now), alice.did, 'verified, now cached')
  t.equal(certifiedOwner({ node, owner: alice.did, ownerCert: cert }, now), alice.did, 'from the cache')
  t.equal(certifiedOwner({ node: other, owner: alice.did, ownerCert: cert }, now), other, 'presented by another node')
  t.equal(certifiedOwner({ node, owner: mallory.did, ownerCert: cert }, now), node, 'with another owner claimed')
  t.equal(certifiedOwner({ node, owner: alice.did, ownerCert: { body: { ...cert.body, expiresAt: cert.body.expiresAt + 365 * DAY }, sig: cert.sig } }, now), node, 'its expiry extended')
  t.equal(certifiedOwner({ node, owner: alice.did, ownerCert: cert }, now + 31 * DAY), node, 'past its expiry')
})

t.test('core membership: only a trusted root signs it, for this node, in its window', async (t) => {
  t.ok(certifiedCore({ node, owner: node, coreCert: coreCert() }, [root.did], now))
  t.notOk(certifiedCore({ node, owner: node, coreCert: coreCert() }, [], now), 'no roots configured: nobody is core')
  t.notOk(certifiedCore({ node, owner: node, coreCert: coreCert(mallory) }, [root.did], now), 'self-made membership')
  t.notOk(certifiedCore({ node, owner: node, coreCert: coreCert(root, other) }, [root.did], now), "another node's membership")
  t.notOk(certifiedCore({ node, owner: node, coreCert: coreCert(root, node, now - 31 * DAY) }, [root.did], now), 'expired')
  t.notOk(certifiedCore({ node, owner: node, coreCert: ownerCert(root) }, [root.did], now), 'an owner certificate is not membership')
  t.notOk(certifiedCore({ node, owner: node }, [root.did], now), 'none')
})

t.test('signing refuses a non-did:key node and an unbounded ttl', async (t) => {
  t.throws(() => signNodeCertificate(alice, { ability: OWNER_ABILITY, node: 'did:web:x', ttlMs: DAY }), NodeCertificateError)
  t.throws(() => signNodeCertificate(alice, { ability: OWNER_ABILITY, node, ttlMs: 400 * DAY }), NodeCertificateError)
  t.throws(() => signNodeCertificate(alice, { ability: OWNER_ABILITY, node, ttlMs: 0 }), NodeCertificateError)
})

t.test('placement with certified owners: owners.allow passes only the certified node; spreading counts certified owners', async (t) => {
  const certifiedNode = NodeKey.generate().did
  const claimingNode = NodeKey.generate().did
  const offers = [certifiedNode, claimingNode].map((did, i) => offer(i + 1, {
    nodeDid: did,
    ownerDid: certifiedOwner({ node: did, owner: alice.did, ...(i === 0 ? { ownerCert: ownerCert(alice, did) } : {}) }, now),
  }))
  const w = workload({ constraints: { owners: { allow: [alice.did] } } })
  t.ok(isEligible(w, offers[0]!))
  t.notOk(isEligible(w, offers[1]!), 'the node that only claims alice is not eligible')
  t.same(constraintFailures(w, offers[1]!).map((f) => f.constraint), ['owner'])
  const r = place({ workload: w, count: 1, offers })
  t.ok(r.ok && r.picks[0]!.offer.nodeDid === certifiedNode)
  // deny: a node cannot escape a deny list by claiming nothing — its certified owner is what counts
  const denied = place({ workload: workload({ constraints: { owners: { deny: [alice.did] } } }), count: 1, offers: [offers[0]!] })
  t.notOk(denied.ok)

  // spreading: two nodes that claim mallory without certificates are two owners; two certified ones are one
  const a = NodeKey.generate().did, b = NodeKey.generate().did, c = NodeKey.generate().did
  const claimed = [a, b].map((did, i) => offer(10 + i, { nodeDid: did, ownerDid: certifiedOwner({ node: did, owner: mallory.did }, now) }))
  t.not(claimed[0]!.ownerDid, claimed[1]!.ownerDid, 'uncertified claims do not merge into one owner')
  const certified = [a, b].map((did, i) => offer(10 + i, { nodeDid: did, ownerDid: certifiedOwner({ node: did, owner: mallory.did, ownerCert: ownerCert(mallory, did) }, now) }))
  const third = offer(12, { nodeDid: c, ownerDid: certifiedOwner({ node: c, owner: alice.did, ownerCert: ownerCert(alice, c) }, now), pricePerHour: '1300000' })
  const spread = place({ workload: workload({ lane: 'protected' }), count: 2, offers: [...certified, third] })
  t.ok(spread.ok)
  if (spread.ok) t.equal(new Set(spread.picks.map((p) => p.offer.ownerDid)).size, 2, 'certified owners are spread across')
})

t.test('constraints.core: validated, and placement keeps a core workload on certified core nodes', async (t) => {
  let refused: unknown
  try {
    validateWorkload({ apiVersion: 'noir/v1', kind: 'service', name: 'web', runtime: { type: 'container', image: 'noir/busybox:latest' }, resources: { cpu: 1, memory: '1Gi' }, constraints: { core: 'yes' } })
  } catch (err) {
    refused = err
  }
  t.ok(refused instanceof InvalidWorkloadError || refused instanceof WorkloadParseError, 'core must be a boolean')
  t.match(String((refused as Error).message), /core/)
  const w = workload({ constraints: { core: true } })
  t.equal(w.constraints.core, true)
  const plain = offer(1, { pricePerHour: '500000' })
  const core = offer(2, { core: certifiedCore({ node, owner: node, coreCert: coreCert() }, [root.did], now) })
  const fake = offer(3, { pricePerHour: '400000', core: certifiedCore({ node, owner: node, coreCert: coreCert(mallory) }, [root.did], now) })
  t.same(constraintFailures(w, plain).map((f) => f.constraint), ['core'])
  const r = place({ workload: w, count: 1, offers: [plain, core, fake] })
  t.ok(r.ok && r.picks[0]!.offer.nodeDid === core.nodeDid, 'the certified core node, though dearer')
  t.notOk(place({ workload: w, count: 1, offers: [plain, fake] }).ok, 'no certified core node: infeasible')
  // the protected lane picks its standby on a core node when one fits
  const p = place({ workload: workload({ lane: 'protected' }), count: 2, offers: [offer(4, { pricePerHour: '100000' }), offer(5, { pricePerHour: '100000' }), offer(6, { pricePerHour: '100000' }), offer(7, { core: true, pricePerHour: '900000' })], standby: true })
  t.ok(p.ok && p.standby?.offer.core === true, 'standby on the core node')
  const q = place({ workload: workload({ lane: 'protected' }), count: 2, offers: [offer(4), offer(5), offer(6)], standby: true })
  t.ok(q.ok && q.standby !== undefined, 'without core nodes a standby is still picked')
})

// Bids verified when acted on (actors/placement/verified-place.ts): real signed bids, an injected verifier that
// counts its calls. A pick is verified before it is returned, in the order of the choice; a forged pick is
// refused and the next best bid taken; a bid never picked is never verified.
import t from 'tap'
import { NodeKey } from '../../identity/keys.ts'
import { signBid, verifyBidSignature, type SignedBid } from '../bidding/messages.ts'
import { InvalidSignatureError } from '../errors.ts'
import type { NodeOffer } from '../placement/offer.ts'
import { place } from '../placement/place.ts'
import { placeVerified } from '../placement/verified-place.ts'
import { workload } from './helpers.ts'

const GiB = 2 ** 30
const free = { cpu: 4, memoryBytes: 8 * GiB, gpu: 0, vramBytes: 0, diskBytes: 100 * GiB }

/** n nodes, each with a real signed bid at `price(i)`, and the offers placement scores. */
function market(n: number, nlc: (i: number) => number) {
  const price = (i: number): string => String(nlc(i) * 1_000_000)
  const keys = Array.from({ length: n }, () => NodeKey.generate())
  const bids = new Map<string, SignedBid>()
  const offers: NodeOffer[] = keys.map((k, i) => {
    const bid = signBid(k, { requestId: 'r1', deploymentId: 'd1', owner: k.did, arch: 'amd64', region: 'eu', labels: {}, runtimes: ['container'], free, pricePerHour: price(i) })
    bids.set(k.did, bid)
    return { nodeDid: k.did, ownerDid: k.did, arch: 'amd64', region: 'eu', labels: {}, runtimes: ['container'], free, pricePerHour: price(i), latencyMs: 1, trust: 0.5 }
  })
  const calls: string[] = []
  const verify = (o: NodeOffer): void => {
    calls.push(o.nodeDid)
    const b = bids.get(o.nodeDid)!
    verifyBidSignature(b.body, b.sig)
  }
  return { keys, bids, offers, calls, verify }
}

t.test('a bid never picked is never verified: one verification per node picked', async (t) => {
  const m = market(8, (i) => 1 + i) // node 0 cheapest, then 1, 2...
  const w = workload({ service: { replicas: 2 } })
  const v = placeVerified({ workload: w, count: 2, offers: m.offers }, m.verify)
  t.ok(v.result.ok)
  if (!v.result.ok) return
  const picked = v.result.picks.map((p) => p.offer.nodeDid)
  t.same(picked, [m.keys[0]!.did, m.keys[1]!.did], 'the two cheapest')
  t.same(m.calls, picked, 'only the picks were verified, in the order of the choice')
  t.equal(v.verified, 2)
  t.same(v.refused, [])
  t.same(v.result, place({ workload: w, count: 2, offers: m.offers }), 'the same placement as place() when every pick verifies')
})

t.test('a forged bid that would win is verified, refused, and the next best bid is taken', async (t) => {
  const m = market(6, (i) => 2 + i)
  // node 3 claims the lowest price of all: its body no longer matches its signature
  const forger = m.keys[3]!.did
  const b = m.bids.get(forger)!
  m.bids.set(forger, { body: { ...b.body, pricePerHour: '10000' }, sig: b.sig })
  const offers = m.offers.map((o) => (o.nodeDid === forger ? { ...o, pricePerHour: '10000' } : o))
  const w = workload()
  const unverified = place({ workload: w, count: 1, offers })
  t.equal(unverified.ok && unverified.picks[0]!.offer.nodeDid, forger, 'unchecked, the forged bid would win')
  const v = placeVerified({ workload: w, count: 1, offers }, m.verify)
  t.ok(v.result.ok)
  if (!v.result.ok) return
  t.equal(v.result.picks[0]!.offer.nodeDid, m.keys[0]!.did, 'the next best bid (the cheapest genuine one) is placed')
  t.same(m.calls, [forger, m.keys[0]!.did], 'the forged pick was verified first, then its replacement')
  t.equal(v.refused.length, 1)
  t.equal(v.refused[0]!.node, forger)
  t.ok(v.refused[0]!.error instanceof InvalidSignatureError, `refused with ${v.refused[0]!.error.name}`)
  // the refused bid weighs in nothing: the result is place() over the offers without it
  t.same(v.result, place({ workload: w, count: 1, offers: offers.filter((o) => o.nodeDid !== forger) }))
})

t.test('the standby is verified too, and a forged standby is replaced by the next node', async (t) => {
  const m = market(5, (i) => 1 + i)
  const w = workload({ lane: 'protected' })
  const first = place({ workload: w, count: 2, offers: m.offers, standby: true })
  t.ok(first.ok && first.standby)
  if (!first.ok || !first.standby) return
  const standby = first.standby.offer.nodeDid
  const b = m.bids.get(standby)!
  m.bids.set(standby, { body: b.body, sig: `${b.sig.slice(0, 80)}AAAAAA` })
  const v = placeVerified({ workload: w, count: 2, offers: m.offers, standby: true }, m.verify)
  t.ok(v.result.ok && v.result.standby)
  if (!v.result.ok) return
  t.not(v.result.standby!.offer.nodeDid, standby, 'another standby')
  t.same(v.result.picks.map((p) => p.offer.nodeDid), first.picks.map((p) => p.offer.nodeDid), 'the replicas stay')
  t.same(v.refused.map((r) => r.node), [standby])
  t.equal(v.verified, 4, 'two replicas, the forged standby, its replacement: each verified once')
  t.same(new Set(m.calls).size, m.calls.length, 'no node verified twice')
})

t.test('when every bid that could be picked is forged the placement is infeasible, and nothing unverified is returned', async (t) => {
  const m = market(3, () => 1)
  for (const [did, b] of m.bids) m.bids.set(did, { body: { ...b.body, pricePerHour: '0' }, sig: b.sig })
  const v = placeVerified({ workload: workload(), count: 1, offers: m.offers }, m.verify)
  t.notOk(v.result.ok)
  t.equal(v.refused.length, 3)
  t.equal(v.verified, 3)
})

t.test('nodes verified before are not verified again', async (t) => {
  const m = market(4, (i) => 1 + i)
  const seen = new Set<string>()
  placeVerified({ workload: workload(), count: 1, offers: m.offers }, m.verify, seen)
  const v = placeVerified({ workload: workload(), count: 1, offers: m.offers }, m.verify, seen)
  t.equal(v.verified, 0)
  t.equal(m.calls.length, 1)
})

// Placements kept in flight while their picks are verified on the signature thread (actors/placement/
// pipelined-place.ts, actors/bidding/bid-verifier.ts; spec/orchestration.md "Bids verified on the signature
// thread"). With the real thread: a forged pick is refused there, excluded and the placement made again, as
// placeVerified does inline. With a verifier that holds its answers (a unit test of the pipeline's order): no
// placement is handed out before every pick answered, placements answered out of order keep their own picks.
import t from 'tap'
import { NodeKey } from '../../identity/keys.ts'
import { SignatureWorker } from '../../identity/signature-worker.ts'
import { verifyBidOnWorker } from '../bidding/bid-verifier.ts'
import { signBid, verifyBidSignature, type SignedBid } from '../bidding/messages.ts'
import { InvalidSignatureError } from '../errors.ts'
import type { NodeOffer } from '../placement/offer.ts'
import { place } from '../placement/place.ts'
import { PlacementPipeline } from '../placement/pipelined-place.ts'
import { placeVerified, type VerifiedPlacement } from '../placement/verified-place.ts'
import { workload } from './helpers.ts'

const GiB = 2 ** 30
const free = { cpu: 4, memoryBytes: 8 * GiB, gpu: 0, vramBytes: 0, diskBytes: 100 * GiB }

/** n nodes, each with a real signed bid at `price(i)`, and the offers placement scores. */
function market(n: number, price: (i: number) => number) {
  const keys = Array.from({ length: n }, () => NodeKey.generate())
  const bids = new Map<string, SignedBid>()
  const offers: NodeOffer[] = keys.map((k, i) => {
    const bid = signBid(k, { requestId: 'r1', deploymentId: 'd1', owner: k.did, arch: 'amd64', region: 'eu', labels: {}, runtimes: ['container'], free, pricePerHour: String(price(i) * 1_000_000) })
    bids.set(k.did, bid)
    return { nodeDid: k.did, ownerDid: k.did, arch: 'amd64', region: 'eu', labels: {}, runtimes: ['container'], free, pricePerHour: String(price(i) * 1_000_000), latencyMs: 1, trust: 0.5 }
  })
  return { keys, bids, offers }
}

/** The bid of `node` now claims `price`: its body no longer matches its signature. */
function forge(m: ReturnType<typeof market>, node: string, price: number): NodeOffer[] {
  const b = m.bids.get(node)!
  m.bids.set(node, { body: { ...b.body, pricePerHour: String(Math.round(price * 1_000_000)) }, sig: b.sig })
  return m.offers.map((o) => (o.nodeDid === node ? { ...o, pricePerHour: String(Math.round(price * 1_000_000)) } : o))
}

async function until(cond: () => boolean, w?: SignatureWorker<unknown>): Promise<void> {
  const end = Date.now() + 20_000
  while (!cond() && Date.now() < end) {
    w?.awaitOutcomes(5)
    await new Promise((r) => setTimeout(r, 1))
  }
}

t.test('on the signature thread: a forged pick is refused, excluded and re-placed; nothing is handed out before its picks verified', async (t) => {
  const worker = new SignatureWorker<unknown>({ onFailure: () => {} })
  t.teardown(() => worker.stop())
  worker.start()
  const m = market(6, (i) => 2 + i)
  const forger = m.keys[3]!.did
  const offers = forge(m, forger, 0.01)
  const w = workload({ service: { replicas: 2 } })
  const unverified = place({ workload: w, count: 2, offers })
  t.ok(unverified.ok && unverified.picks.some((p) => p.offer.nodeDid === forger), 'unchecked, the forged bid would be picked')
  const asked: string[] = []
  const placed: [number, VerifiedPlacement][] = []
  const pipe = new PlacementPipeline<number>({
    verify: (offer, done) => {
      asked.push(offer.nodeDid)
      const b = m.bids.get(offer.nodeDid)!
      verifyBidOnWorker(worker, b.body, b.sig, done)
    },
    onPlaced: (tag, v) => placed.push([tag, v]),
  })
  for (let i = 0; i < 5; i++) pipe.submit({ workload: w, count: 2, offers }, i)
  t.equal(pipe.inFlight, 5, 'five placements in flight at once')
  t.same(placed, [], 'none handed out before the thread answered')
  await until(() => pipe.inFlight === 0, worker)
  t.same(placed.map(([tag]) => tag).sort(), [0, 1, 2, 3, 4], 'each placement handed out once')
  const inline = placeVerified({ workload: w, count: 2, offers }, (o) => {
    const b = m.bids.get(o.nodeDid)!
    verifyBidSignature(b.body, b.sig)
  })
  for (const [tag, v] of placed) {
    t.ok(v.result.ok, `placement ${tag} placed`)
    if (!v.result.ok) continue
    t.notOk(v.result.picks.some((p) => p.offer.nodeDid === forger), `placement ${tag}: the forged bid is not placed`)
    t.same(v.refused.map((r) => r.node), [forger], `placement ${tag}: the forger refused`)
    t.ok(v.refused[0]!.error instanceof InvalidSignatureError, `refused with ${v.refused[0]!.error.name}`)
    t.same(v.result, inline.result, `placement ${tag}: the same placement as placeVerified inline`)
    t.equal(v.verified, 3, 'two picks, then the replacement of the forged one')
  }
  t.ok(worker.signatureChecks >= 15, 'verified on the thread')
})

t.test('after the thread stopped the same pipeline verifies inline, with the same outcome', async (t) => {
  const worker = new SignatureWorker<unknown>({ onFailure: () => {} })
  await worker.stop()
  const m = market(4, (i) => 1 + i)
  const forger = m.keys[2]!.did
  const offers = forge(m, forger, 0.5)
  const placed: VerifiedPlacement[] = []
  const pipe = new PlacementPipeline<null>({
    verify: (offer, done) => {
      const b = m.bids.get(offer.nodeDid)!
      verifyBidOnWorker(worker, b.body, b.sig, done)
    },
    onPlaced: (_tag, v) => placed.push(v),
  })
  pipe.submit({ workload: workload(), count: 1, offers }, null)
  t.equal(placed.length, 1, 'handed out before submit returned')
  t.ok(placed[0]!.result.ok && placed[0]!.result.picks[0]!.offer.nodeDid === m.keys[0]!.did, 'the cheapest genuine bid')
  t.same(placed[0]!.refused.map((r) => r.node), [forger])
})

/** A verifier whose answers the test gives, in any order. */
function heldVerifier() {
  const held: { node: string; done: (e: Error | undefined) => void }[] = []
  return { held, verify: (offer: NodeOffer, done: (e: Error | undefined) => void) => void held.push({ node: offer.nodeDid, done }) }
}

t.test('a placement waits for every pick; a refused pick is replaced and the replacement waited for too', async (t) => {
  const m = market(5, (i) => 1 + i)
  const v = heldVerifier()
  const placed: VerifiedPlacement[] = []
  const pipe = new PlacementPipeline<string>({ verify: v.verify, onPlaced: (_tag, p) => placed.push(p) })
  pipe.submit({ workload: workload({ lane: 'protected' }), count: 2, offers: m.offers, standby: true }, 'a')
  t.same(v.held.map((h) => h.node), [m.keys[0]!.did, m.keys[1]!.did, m.keys[2]!.did], 'both replicas and the standby asked at once')
  v.held[0]!.done(undefined)
  v.held[2]!.done(undefined)
  t.same(placed, [], 'one pick unanswered: nothing handed out')
  v.held[1]!.done(new InvalidSignatureError('bid: forged'))
  t.same(placed, [], 'a refused pick: the placement is made again, not handed out')
  t.equal(v.held.length, 4, 'only the new pick is asked (the verified ones are not asked again)')
  t.equal(v.held[3]!.node, m.keys[3]!.did)
  v.held[1]!.done(undefined) // a second answer to an answered job counts for nothing
  t.same(placed, [])
  v.held[3]!.done(undefined)
  t.equal(placed.length, 1)
  const p = placed[0]!
  t.ok(p.result.ok)
  if (!p.result.ok) return
  t.same([...p.result.picks.map((x) => x.offer.nodeDid), p.result.standby!.offer.nodeDid].sort(), [m.keys[0]!.did, m.keys[2]!.did, m.keys[3]!.did].sort())
  t.same(p.refused.map((r) => r.node), [m.keys[1]!.did])
  t.equal(p.verified, 4)
  t.equal(pipe.inFlight, 0)
})

t.test('placements answered out of order are handed out as they complete, each with its own tag and picks', async (t) => {
  const m = market(6, (i) => 1 + i)
  const v = heldVerifier()
  const placed: [number, VerifiedPlacement][] = []
  const pipe = new PlacementPipeline<number>({ verify: v.verify, onPlaced: (tag, p) => placed.push([tag, p]) })
  pipe.submit({ workload: workload(), count: 1, offers: m.offers }, 1)
  pipe.submit({ workload: workload(), count: 1, offers: m.offers, exclude: new Set([m.keys[0]!.did]) }, 2)
  t.equal(v.held.length, 2)
  v.held[1]!.done(undefined)
  t.same(placed.map(([tag]) => tag), [2], 'the second first')
  t.equal(placed[0]![1].result.ok && placed[0]![1].result.picks[0]!.offer.nodeDid, m.keys[1]!.did)
  v.held[0]!.done(undefined)
  t.same(placed.map(([tag]) => tag), [2, 1])
  t.equal(placed[1]![1].result.ok && placed[1]![1].result.picks[0]!.offer.nodeDid, m.keys[0]!.did)
})

t.test('an infeasible placement is handed out at once; when every pickable bid is refused it ends infeasible', async (t) => {
  const m = market(2, () => 1)
  const placed: VerifiedPlacement[] = []
  const pipe = new PlacementPipeline<null>({ verify: (_o, done) => done(new InvalidSignatureError('bid: forged')), onPlaced: (_t, p) => placed.push(p) })
  pipe.submit({ workload: workload({ resources: { cpu: 64, memory: '1Gi' } }), count: 1, offers: m.offers }, null)
  t.equal(placed.length, 1)
  t.notOk(placed[0]!.result.ok, 'nothing fits')
  t.equal(placed[0]!.verified, 0, 'nothing verified')
  pipe.submit({ workload: workload(), count: 1, offers: m.offers }, null)
  t.equal(placed.length, 2)
  t.notOk(placed[1]!.result.ok, 'every bid refused')
  t.equal(placed[1]!.refused.length, 2)
  t.equal(pipe.inFlight, 0)
})

t.test('a batch handed over at once, with a share verified inline (inlineShare): forged picks are refused on either side, none handed out', async (t) => {
  const worker = new SignatureWorker<unknown>({ onFailure: () => {}, inlineShare: 0.5 })
  t.teardown(() => worker.stop())
  worker.start()
  const m = market(12, (i) => 2 + i)
  // the two cheapest bids are forged (cheaper still): each placement picks them first
  const forgers = [m.keys[0]!.did, m.keys[1]!.did]
  let offers = forge(m, forgers[0]!, 0.01)
  offers = forge({ ...m, offers }, forgers[1]!, 0.02)
  const routes: string[] = []
  const placed: [number, VerifiedPlacement][] = []
  const pipe = new PlacementPipeline<number>({
    verify: (offer, done) => {
      const b = m.bids.get(offer.nodeDid)!
      routes.push(verifyBidOnWorker(worker, b.body, b.sig, done, false))
    },
    onPlaced: (tag, v) => placed.push([tag, v]),
  })
  const w = workload({ service: { replicas: 2 } })
  for (let i = 0; i < 8; i++) pipe.submit({ workload: w, count: 2, offers }, i)
  worker.flush()
  await until(() => placed.length === 8, worker)
  t.ok(routes.includes('checked') && routes.includes('queued'), 'picks verified on both sides')
  t.equal(placed.length, 8, 'every placement handed out once')
  t.same(placed.map(([tag]) => tag).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7])
  for (const [tag, v] of placed) {
    t.ok(v.result.ok, `placement ${tag} placed`)
    if (!v.result.ok) continue
    t.notOk(v.result.picks.some((p) => forgers.includes(p.offer.nodeDid)), `placement ${tag}: no forged pick`)
    t.same(v.refused.map((r) => r.node).sort(), [...forgers].sort(), `placement ${tag}: both forged bids refused`)
    for (const r of v.refused) t.type(r.error, InvalidSignatureError)
    for (const p of v.result.picks) t.doesNotThrow(() => verifyBidSignature(m.bids.get(p.offer.nodeDid)!.body, m.bids.get(p.offer.nodeDid)!.sig), 'each pick holds a genuine bid')
  }
  t.equal(pipe.inFlight, 0)
})

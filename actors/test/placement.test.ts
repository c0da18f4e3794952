import t from 'tap'
import { constraintFailures } from '../placement/constraints.ts'
import { isEligible, place } from '../placement/place.ts'
import { defaultPricePolicy, quote } from '../placement/price.ts'
import { offer, workload } from './helpers.ts'

const GiB = 2 ** 30

t.test('best-effort picks the cheapest node that fits', async (t) => {
  const offers = [offer(1, { pricePerHour: '3000000' }), offer(2, { pricePerHour: '1000000' }), offer(3, { pricePerHour: '2000000' })]
  const r = place({ workload: workload(), count: 1, offers })
  t.ok(r.ok)
  if (r.ok) t.equal(r.picks[0]!.offer.nodeDid, offer(2).nodeDid)
})

t.test('replicas spread over distinct nodes when prices are equal', async (t) => {
  const r = place({ workload: workload({ service: { replicas: 2 } }), count: 2, offers: [offer(1), offer(2), offer(3)] })
  t.ok(r.ok)
  if (r.ok) t.not(r.picks[0]!.offer.nodeDid, r.picks[1]!.offer.nodeDid)
})

t.test('best-effort may stack replicas on one node when only it fits', async (t) => {
  const r = place({ workload: workload({ service: { replicas: 2 } }), count: 2, offers: [offer(1), offer(2, { free: { cpu: 0.5, memoryBytes: GiB, gpu: 0, vramBytes: 0, diskBytes: 0 } })] })
  t.ok(r.ok)
  if (r.ok) t.same(r.picks.map((p) => p.offer.nodeDid), [offer(1).nodeDid, offer(1).nodeDid])
})

t.test('stacked replicas never exceed the node capacity', async (t) => {
  const r = place({ workload: workload({ service: { replicas: 5 } }), count: 5, offers: [offer(1)] })
  t.notOk(r.ok, 'four cpus cannot hold five one-cpu replicas')
})

t.test('the protected lane needs distinct nodes, prefers distinct owners, and picks a standby', async (t) => {
  const offers = [offer(1, { ownerDid: 'did:key:alice' }), offer(2, { ownerDid: 'did:key:alice' }), offer(3, { ownerDid: 'did:key:bob', pricePerHour: '1200000' }), offer(4, { ownerDid: 'did:key:carol', pricePerHour: '1100000' })]
  const r = place({ workload: workload({ lane: 'protected' }), count: 2, offers, standby: true })
  t.ok(r.ok)
  if (!r.ok) return
  const owners = r.picks.map((p) => p.offer.ownerDid)
  t.equal(new Set(owners).size, 2, 'two owners')
  t.ok(r.standby)
  t.notOk(r.picks.some((p) => p.offer.nodeDid === r.standby!.offer.nodeDid), 'the standby is not a replica node')
})

t.test('owners.distinct: no two replicas of one owner (hard), the standby of another owner too, a replacement avoids the owners still running', async (t) => {
  // Alice's two nodes are the cheapest: spreading alone would still put two replicas on them when Bob's is full
  const offers = [
    offer(1, { ownerDid: 'did:key:alice', pricePerHour: '100000' }), offer(2, { ownerDid: 'did:key:alice', pricePerHour: '100000' }),
    offer(3, { ownerDid: 'did:key:bob', pricePerHour: '900000' }), offer(4, { ownerDid: 'did:key:carol', pricePerHour: '950000' }),
  ]
  const distinct = workload({ constraints: { owners: { distinct: true } }, service: { replicas: 3 } })
  const r = place({ workload: distinct, count: 3, offers })
  t.ok(r.ok)
  if (r.ok) t.same(r.picks.map((p) => p.offer.ownerDid).sort(), ['did:key:alice', 'did:key:bob', 'did:key:carol'], 'three replicas, three owners')
  const spread = place({ workload: workload({ service: { replicas: 3 } }), count: 3, offers })
  t.ok(spread.ok && spread.picks.filter((p) => p.offer.ownerDid === 'did:key:alice').length === 2, 'without it, spreading lets the cheap owner take two (the rule is what changes that)')
  const four = place({ workload: distinct, count: 4, offers })
  t.notOk(four.ok, 'four replicas, three owners: infeasible')
  if (!four.ok) {
    t.equal(four.infeasible.constraint, 'distinct-owners')
    t.match(four.infeasible.reason, /owners\.distinct: 4 replica\(s\) need as many owners; the eligible nodes belong to 3 owner\(s\)/)
  }
  const replacing = place({ workload: distinct, count: 1, offers, existing: [{ nodeDid: offers[0]!.nodeDid, ownerDid: 'did:key:alice' }, { nodeDid: offers[2]!.nodeDid, ownerDid: 'did:key:bob' }] })
  t.ok(replacing.ok && replacing.picks[0]!.offer.ownerDid === 'did:key:carol', 'a lost replica is replaced on the one owner no running replica has')
  const protectedTwo = place({ workload: workload({ lane: 'protected', constraints: { owners: { distinct: true } } }), count: 2, offers, standby: true })
  t.ok(protectedTwo.ok)
  if (protectedTwo.ok) {
    const owners = [...protectedTwo.picks.map((p) => p.offer.ownerDid), protectedTwo.standby?.offer.ownerDid]
    t.equal(new Set(owners).size, 3, `the standby is of a third owner (${owners.join(', ')})`)
  }
  const capacity = place({ workload: workload({ constraints: { owners: { distinct: true } }, resources: { cpu: 64, memory: '1Gi' } }), count: 1, offers })
  t.ok(!capacity.ok && capacity.infeasible.constraint === 'cpu', 'a placement short of capacity says so, not owners')
})

t.test('the protected lane with one eligible node is infeasible: distinct-nodes', async (t) => {
  const r = place({ workload: workload({ lane: 'protected', constraints: { arch: ['amd64'] } }), count: 2, offers: [offer(1), offer(2, { arch: 'arm64' })] })
  t.notOk(r.ok)
  if (!r.ok) t.equal(r.infeasible.constraint, 'distinct-nodes')
})

t.test('placing a lost replica avoids the nodes that still hold one (protected)', async (t) => {
  const w = workload({ lane: 'protected' })
  const r = place({ workload: w, count: 1, offers: [offer(1), offer(2), offer(3)], existing: [{ nodeDid: offer(2).nodeDid, ownerDid: offer(2).ownerDid }], exclude: new Set([offer(1).nodeDid]) })
  t.ok(r.ok)
  if (r.ok) t.equal(r.picks[0]!.offer.nodeDid, offer(3).nodeDid)
})

t.test('an infeasible request names the constraint no node met and the nearest candidate', async (t) => {
  const w = workload({ resources: { cpu: 1, memory: '64Gi' } })
  const r = place({ workload: w, count: 1, offers: [offer(1), offer(2, { free: { cpu: 8, memoryBytes: 32 * GiB, gpu: 0, vramBytes: 0, diskBytes: 0 } })] })
  t.notOk(r.ok)
  if (r.ok) return
  t.equal(r.infeasible.constraint, 'memory')
  t.equal(r.infeasible.noneMet, true)
  t.equal(r.infeasible.nearest?.nodeDid, offer(2).nodeDid, 'the node with the most memory is nearest')
  t.match(r.infeasible.reason, /no node meets memory.*nearest candidate.*32GiB/)
})

t.test('when constraints are met only separately, the reason names the one that ruled out most', async (t) => {
  const w = workload({ constraints: { region: ['eu'], arch: ['arm64'] } })
  const offers = [offer(1, { arch: 'arm64', region: 'us' }), offer(2, { region: 'eu' }), offer(3, { region: 'eu' })]
  const r = place({ workload: w, count: 1, offers })
  t.notOk(r.ok)
  if (!r.ok) {
    t.equal(r.infeasible.noneMet, false)
    t.equal(r.infeasible.constraint, 'arch')
    t.equal(r.infeasible.ruledOut.region, 1)
  }
})

t.test('no offers at all is its own reason', async (t) => {
  const r = place({ workload: workload(), count: 1, offers: [] })
  t.notOk(r.ok)
  if (!r.ok) t.equal(r.infeasible.constraint, 'no-offers')
})

t.test('every hard constraint rules a node out', async (t) => {
  const cases: [Record<string, unknown>, Parameters<typeof offer>[1], string][] = [
    [{ runtime: { type: 'microvm', kernel: 'k' } }, {}, 'runtime'],
    [{ constraints: { arch: ['arm64'] } }, {}, 'arch'],
    [{ constraints: { region: ['us'] } }, {}, 'region'],
    [{ constraints: { labels: { ssd: 'yes' } } }, { labels: { ssd: 'no' } }, 'labels'],
    [{ constraints: { owners: { deny: ['did:key:owner1'] } } }, {}, 'owner'],
    [{ constraints: { owners: { allow: ['did:key:someone'] } } }, {}, 'owner'],
    [{ constraints: { maxLatencyMs: 5 } }, { latencyMs: 50 }, 'maxLatencyMs'],
    [{ constraints: { maxPrice: '500000' } }, {}, 'maxPrice'],
    [{ constraints: { minTrust: 0.9 } }, {}, 'minTrust'],
    [{ resources: { cpu: 16, memory: '1Gi' } }, {}, 'cpu'],
    [{ resources: { cpu: 1, memory: '1Gi', gpu: 1 } }, {}, 'gpu'],
    [{ resources: { cpu: 1, memory: '1Gi', disk: '1Ti' } }, {}, 'disk'],
  ]
  for (const [w, o, constraint] of cases) {
    const wl = workload(w)
    const of = offer(1, o)
    t.equal(isEligible(wl, of), false, `${constraint}: not eligible`)
    t.same(constraintFailures(wl, of).map((f) => f.constraint), [constraint], `${constraint}: explained`)
  }
})

t.test('the fast eligibility check agrees with the explaining one on random offers', async (t) => {
  let seed = 7
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const w = workload({ constraints: { region: ['eu', 'us'], maxPrice: '2000000', maxLatencyMs: 30, minTrust: 0.3, labels: { tier: 'a' } } })
  let disagreements = 0
  for (let i = 0; i < 2000; i++) {
    const o = offer(i, {
      region: rnd() < 0.7 ? 'eu' : 'asia', pricePerHour: String(Math.floor(rnd() * 3_000_000)), latencyMs: rnd() * 50, trust: rnd(), labels: rnd() < 0.8 ? { tier: 'a' } : {},
      free: { cpu: rnd() * 3, memoryBytes: rnd() * 3 * GiB, gpu: 0, vramBytes: 0, diskBytes: GiB },
    })
    if (isEligible(w, o) !== (constraintFailures(w, o).length === 0)) disagreements++
  }
  t.equal(disagreements, 0)
})

t.test('sampling a few candidates still places on an eligible node', async (t) => {
  const offers = Array.from({ length: 1000 }, (_, i) => offer(i, { arch: i % 2 === 0 ? 'amd64' : 'arm64', pricePerHour: String(1_000_000 + (i % 7) * 1_000_000) }))
  const w = workload({ constraints: { arch: ['arm64'] } })
  const r = place({ workload: w, count: 3, offers, candidateLimit: 16 })
  t.ok(r.ok)
  if (r.ok) {
    t.ok(r.picks.every((p) => p.offer.arch === 'arm64'))
    t.ok(r.eligible <= 16)
  }
})

t.test('a quote follows the owner price policy and the lane', async (t) => {
  const w = workload({ resources: { cpu: 2, memory: '4Gi' } })
  t.equal(quote(defaultPricePolicy, w.resources, 'best-effort'), 2_000_000n + 4n * 250_000n, '2 cpu and 4 GiB: 3 NLC')
  t.equal(quote(defaultPricePolicy, w.resources, 'protected'), 4_500_000n, 'times 15000 bps')
})

t.test('a quote is rounded up, never down: a fraction of a µNLC is a whole one', async (t) => {
  const policy = { ...defaultPricePolicy, minimumPerHour: 0 }
  // 1 byte of memory at 250000 µNLC per GiB-hour is 0.00023 µNLC: quoted as 1
  t.equal(quote({ ...policy, cpuPerHour: 0 }, { cpu: 0, memoryBytes: 1, gpu: 0, vramBytes: 0, diskBytes: 0 }, 'best-effort'), 1n)
  // 10 millicores at 1 µNLC per CPU-hour is 0.01 µNLC: 1
  t.equal(quote({ ...policy, cpuPerHour: 1 }, { cpu: 0.01, memoryBytes: 0, gpu: 0, vramBytes: 0, diskBytes: 0 }, 'best-effort'), 1n)
  // a cpu fraction below a millicore counts as a whole one, as the allocator holds it: 0.0101 cores -> 11 millicores
  t.equal(quote({ ...policy, cpuPerHour: 1000 }, { cpu: 0.0101, memoryBytes: 0, gpu: 0, vramBytes: 0, diskBytes: 0 }, 'best-effort'), 11n)
  // 0.011 (11.000000000000002 as a double times 1000) stays 11 millicores
  t.equal(quote({ ...policy, cpuPerHour: 1000 }, { cpu: 0.011, memoryBytes: 0, gpu: 0, vramBytes: 0, diskBytes: 0 }, 'best-effort'), 11n)
  // the protected lane rounds up too: 3 µNLC * 1.5 = 4.5 -> 5
  t.equal(quote({ ...policy, minimumPerHour: 3, cpuPerHour: 0 }, { cpu: 0.01, memoryBytes: 0, gpu: 0, vramBytes: 0, diskBytes: 0 }, 'protected'), 5n)
  // the floor applies before the lane
  t.equal(quote(defaultPricePolicy, { cpu: 0.01, memoryBytes: 0, gpu: 0, vramBytes: 0, diskBytes: 0 }, 'best-effort'), 10_000n)
})

t.test('a quote is exact in bigint where a double would not be', async (t) => {
  const big = Number.MAX_SAFE_INTEGER // µNLC per CPU-hour
  const policy = { cpuPerHour: big, memoryGiBPerHour: big, gpuPerHour: big, diskGiBPerHour: big, protectedMultiplierBps: 10_001, minimumPerHour: 0 }
  const r = { cpu: 1024, memoryBytes: 2 ** 50 + 1, gpu: 8, vramBytes: 0, diskBytes: 2 ** 52 + 3 }
  const B = BigInt(big)
  const GiB = 2n ** 30n
  const exact = 1024n * B + 8n * B + (BigInt(r.memoryBytes) * B + GiB - 1n) / GiB + 0n // memory alone, rounded up
  const num = 1024_000n * B * GiB + BigInt(r.memoryBytes) * B * 1000n + 8n * B * 1000n * GiB + BigInt(r.diskBytes) * B * 1000n
  const den = 1000n * GiB
  const raw = (num + den - 1n) / den
  t.equal(quote(policy, r, 'best-effort'), raw, 'one rounding, up, over the exact sum')
  t.ok(raw > exact, 'the disk share is in it')
  t.equal(quote(policy, r, 'protected'), (raw * 10_001n + 9_999n) / 10_000n)
  t.ok(raw > BigInt(Number.MAX_SAFE_INTEGER) * 1000n, 'far beyond what a double holds exactly')
})

// When a sampled bid round may stop waiting (actors/placement/settled.ts): only when the bids in hand decide
// the placement whatever the nodes still out would bid at their best.
import t from 'tap'
import { CapacityIndex } from '../placement/capacity-index.ts'
import type { PlacementFacts } from '../placement/capacity-report.ts'
import { defaultPricePolicy, quote, type PricePolicy } from '../placement/price.ts'
import { placementSettled, bestCase } from '../placement/settled.ts'
import { offer, workload } from './helpers.ts'

const GiB = 2 ** 30
const self = offer(0, { latencyMs: 0 })
const w = workload({ resources: { cpu: 0.5, memory: '256Mi' } })

function indexOf(nodes: { did: string; facts?: Partial<PlacementFacts> | null }[]): CapacityIndex {
  const index = new CapacityIndex()
  const free = { cpu: 2, memoryBytes: 4 * GiB, diskBytes: 50 * GiB, gpu: 0 }
  for (const n of nodes) {
    const facts: PlacementFacts = { owner: n.did, arch: 'amd64', region: 'eu', labels: {}, runtimes: ['container', 'wasm'], price: defaultPricePolicy, ...n.facts }
    index.observe(n.did, {
      v: 1, node: n.did, seq: 1, at: Date.now(), intervalMs: 60_000,
      capacity: { share: free, used: { cpu: 0, memoryBytes: 0, diskBytes: 0, gpu: 0 }, free, ports: { range: [20000, 20999], used: 0, free: 1000 } },
      allocations: { total: 0, byState: {}, running: [] }, load: { loadavg1: 0, cpuNanos: 0, memoryBytes: 0 },
      ...(n.facts === null ? {} : { facts }),
    })
  }
  return index
}

const priced = (o: ReturnType<typeof offer>) => ({ ...o, pricePerHour: String(quote(defaultPricePolicy, w.resources, w.lane)) })
const a = offer(1).nodeDid
const b = offer(2).nodeDid

t.test('the orchestrator\'s own bid decides a best-effort placement: nodes as cheap but farther could only lose', async (t) => {
  const index = indexOf([{ did: a }, { did: b }])
  const input = { workload: w, count: 1, standby: false, offers: [priced(self)], index, latencyMs: () => 1 }
  t.equal(placementSettled({ ...input, pending: [{ did: a, waitedMs: 2 }, { did: b, waitedMs: 2 }] }), true)
  t.equal(placementSettled({ ...input, pending: [] }), true, 'nothing pending: decided')
})

t.test('a node still out that its own price policy makes cheaper is waited for', async (t) => {
  const cheap: PricePolicy = { ...defaultPricePolicy, cpuPerHour: 1, memoryGiBPerHour: 1, minimumPerHour: 1 }
  const index = indexOf([{ did: a, facts: { price: cheap } }, { did: b }])
  const pending = [{ did: a, waitedMs: 2 }, { did: b, waitedMs: 2 }]
  t.equal(placementSettled({ workload: w, count: 1, standby: false, offers: [priced(self)], pending, index, latencyMs: () => 1 }), false)
})

t.test('a node the index cannot foresee (no facts, or not in it) is waited for', async (t) => {
  const index = indexOf([{ did: a, facts: null }])
  const input = { workload: w, count: 1, standby: false, offers: [priced(self)], index, latencyMs: () => 1 }
  t.equal(placementSettled({ ...input, pending: [{ did: a, waitedMs: 2 }] }), false, 'no facts')
  t.equal(placementSettled({ ...input, pending: [{ did: b, waitedMs: 2 }] }), false, 'not in the index')
  t.equal(bestCase(b, 2, input), undefined)
})

t.test('no bid in hand that places: not decided', async (t) => {
  const index = indexOf([{ did: a }])
  t.equal(placementSettled({ workload: w, count: 1, standby: false, offers: [], pending: [{ did: a, waitedMs: 2 }], index, latencyMs: () => 1 }), false)
  const small = offer(0, { latencyMs: 0, free: { cpu: 0.1, memoryBytes: GiB, gpu: 0, vramBytes: 0, diskBytes: GiB } })
  t.equal(placementSettled({ workload: w, count: 1, standby: false, offers: [priced(small)], pending: [{ did: a, waitedMs: 2 }], index, latencyMs: () => 1 }), false, 'the bid in hand has no room')
})

t.test('the protected lane waits until its standby is decided too', async (t) => {
  const p = workload({ resources: { cpu: 0.5, memory: '256Mi' }, lane: 'protected' })
  const index = indexOf([{ did: a }, { did: b }])
  const q = String(quote(defaultPricePolicy, p.resources, p.lane))
  const base = { workload: p, count: 1, standby: true, index, latencyMs: () => 1 }
  t.equal(placementSettled({ ...base, offers: [{ ...self, pricePerHour: q }], pending: [{ did: a, waitedMs: 2 }, { did: b, waitedMs: 2 }] }), false, 'only one bid: the standby is one of those still out')
  const c = offer(3, { pricePerHour: q, latencyMs: 3 })
  t.equal(placementSettled({ ...base, offers: [{ ...self, pricePerHour: q }, c], pending: [{ did: a, waitedMs: 2 }, { did: b, waitedMs: 2 }] }), false, 'a node out (1 ms away at best) could be a better standby than the one in hand (3 ms)')
})

t.test('a node still out is taken at the least latency its answer can still show', async (t) => {
  // its mesh ping unknown: its round trip is at least what it has been waited for
  const index = indexOf([{ did: a }])
  const remote = priced(offer(9, { latencyMs: 3 }))
  const input = { workload: w, count: 1, standby: false, offers: [remote], index, latencyMs: () => undefined }
  t.equal(placementSettled({ ...input, pending: [{ did: a, waitedMs: 1 }] }), false, 'out for 1 ms: it could still answer faster than the bid in hand')
  t.equal(placementSettled({ ...input, pending: [{ did: a, waitedMs: 5 }] }), true, 'out for 5 ms: it can only be farther')
})

t.test('owner rules: every answer is awaited (an owner is only shown by the bid\'s certificate)', async (t) => {
  const ow = workload({ resources: { cpu: 0.5, memory: '256Mi' }, constraints: { owners: { deny: ['did:key:someone'] } } })
  const index = indexOf([{ did: a }])
  t.equal(placementSettled({ workload: ow, count: 1, standby: false, offers: [priced(self)], pending: [{ did: a, waitedMs: 50 }], index, latencyMs: () => 1 }), false)
})

t.test('a quarantined or excluded node still out changes nothing', async (t) => {
  const cheap: PricePolicy = { ...defaultPricePolicy, cpuPerHour: 1, memoryGiBPerHour: 1, minimumPerHour: 1 }
  const index = indexOf([{ did: a, facts: { price: cheap } }])
  const input = { workload: w, count: 1, standby: false, offers: [priced(self)], pending: [{ did: a, waitedMs: 2 }], index, latencyMs: () => 1 }
  t.equal(placementSettled({ ...input, trust: { trustOf: () => 0.5, quarantined: (d: string) => d === a } }), true)
  t.equal(placementSettled({ ...input, exclude: new Set([a]) }), true)
})

t.test('the protected lane: decided once the standby in hand is nearer than any node still out can be', async (t) => {
  const p = workload({ resources: { cpu: 0.5, memory: '256Mi' }, lane: 'protected' })
  const index = indexOf([{ did: a }, { did: b }])
  const q = String(quote(defaultPricePolicy, p.resources, p.lane))
  const c = offer(3, { pricePerHour: q, latencyMs: 1 })
  t.equal(placementSettled({ workload: p, count: 1, standby: true, index, latencyMs: () => 2, offers: [{ ...self, pricePerHour: q }, c], pending: [{ did: a, waitedMs: 4 }, { did: b, waitedMs: 4 }] }), true)
})

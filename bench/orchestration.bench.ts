// Orchestration benchmarks (npm run bench -- orchestration):
//  1. placements per second over 1,000 and 10,000 simulated nodes (bidders in-process), beside a first-fit
//     scan of the same nodes (the least any scheduler does) measured in the same run. Nomad's published
//     figure (1M containers on 5,000 hosts at 3,750 placements/s) is printed as the target for reference.
//  2. deploy -> running on three real daemons beside a direct `docker run` of the same image (when Docker
//     and the daemon harness are present).
//  3. kill -9 of a node -> its protected replica running elsewhere.
import { printSection, percentile, type Figure } from './report.ts'
import { isEligible, place } from '../actors/placement/place.ts'
import { quote, defaultPricePolicy } from '../actors/placement/price.ts'
import { subtract } from '../actors/placement/constraints.ts'
import type { NodeOffer } from '../actors/placement/offer.ts'
import { validateWorkload, type Workload } from '../actors/workload/workload.ts'

const GiB = 2 ** 30

function makeNodes(n: number, seed = 1): NodeOffer[] {
  let s = seed
  const rnd = (): number => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const regions = ['eu', 'us', 'asia']
  return Array.from({ length: n }, (_, i) => ({
    nodeDid: `did:key:sim${i}`,
    ownerDid: `did:key:owner${i % Math.max(1, Math.floor(n / 3))}`,
    arch: rnd() < 0.8 ? 'amd64' : 'arm64',
    region: regions[i % 3]!,
    labels: rnd() < 0.3 ? { ssd: 'yes' } : {},
    runtimes: ['container', 'wasm'],
    free: { cpu: 16, memoryBytes: 64 * GiB, gpu: 0, vramBytes: 0, diskBytes: 500 * GiB },
    pricePerHour: 0,
    latencyMs: 1 + rnd() * 80,
    trust: 0.5,
  }))
}

const workloads: Workload[] = [
  validateWorkload({ apiVersion: 'noir/v1', kind: 'service', name: 'web', runtime: { type: 'container', image: 'x' }, resources: { cpu: 0.5, memory: '512Mi' }, service: { replicas: 3 } }),
  validateWorkload({ apiVersion: 'noir/v1', kind: 'service', name: 'db', lane: 'protected', runtime: { type: 'container', image: 'x' }, resources: { cpu: 1, memory: '2Gi' }, constraints: { labels: { ssd: 'yes' } } }),
  validateWorkload({ apiVersion: 'noir/v1', kind: 'job', name: 'batch', runtime: { type: 'wasm', module: 'm.wasm' }, resources: { cpu: 0.25, memory: '128Mi' }, constraints: { region: ['eu'], arch: ['amd64'] } }),
]

/** One market round per placement: every simulated node evaluates the request and quotes (as a bidder does), then placement. */
function runPlacements(nodes: NodeOffer[], ms: number, candidateLimit: number | undefined): { perSec: number; p50: number; p99: number } {
  const samples: number[] = []
  let n = 0
  const t0 = performance.now()
  while (performance.now() - t0 < ms) {
    const w = workloads[n % workloads.length]!
    const s = performance.now()
    // The bidders: each node that fits answers with its quote.
    const offers: NodeOffer[] = []
    const price = quote(defaultPricePolicy, w.resources, w.lane)
    for (const node of nodes) {
      if (!isEligible(w, node)) continue
      node.pricePerHour = price * (0.8 + (node.latencyMs % 7) / 10)
      offers.push(node)
    }
    const count = w.kind === 'service' ? w.service!.replicas : 1
    const r = place({ workload: w, count, offers, candidateLimit })
    if (r.ok) for (const p of r.picks) p.offer.free = subtract(p.offer.free, w.resources)
    samples.push(performance.now() - s)
    n++
  }
  const el = (performance.now() - t0) / 1000
  return { perSec: n / el, p50: percentile(samples, 50), p99: percentile(samples, 99) }
}

/** Scheduler-only: placement over offers already gathered (no bidding). */
function runPlaceOnly(nodes: NodeOffer[], ms: number, candidateLimit: number | undefined): number {
  let n = 0
  const t0 = performance.now()
  while (performance.now() - t0 < ms) {
    const w = workloads[n % workloads.length]!
    const count = w.kind === 'service' ? w.service!.replicas : 1
    const r = place({ workload: w, count, offers: nodes, candidateLimit })
    if (r.ok) for (const p of r.picks) p.offer.free = subtract(p.offer.free, w.resources)
    n++
  }
  return n / ((performance.now() - t0) / 1000)
}

/** Baseline: first fit, the least work a scheduler can do per placement. */
function runFirstFit(nodes: NodeOffer[], ms: number): number {
  let n = 0
  const t0 = performance.now()
  while (performance.now() - t0 < ms) {
    const w = workloads[n % workloads.length]!
    const count = w.kind === 'service' ? w.service!.replicas : 1
    let placed = 0
    for (const node of nodes) {
      if (placed === count) break
      if (isEligible(w, node)) {
        node.free = subtract(node.free, w.resources)
        placed++
      }
    }
    n++
  }
  return n / ((performance.now() - t0) / 1000)
}

const figures: Figure[] = []
for (const size of [1000, 10_000]) {
  const ff = runFirstFit(makeNodes(size), 1500)
  const full = runPlacements(makeNodes(size), 2000, undefined)
  const sampled = runPlacements(makeNodes(size), 2000, 64)
  const only = runPlaceOnly(makeNodes(size), 1500, 64)
  const base = { name: 'first-fit scan', value: ff }
  figures.push(
    { name: `${size} nodes: bid round + full scoring`, value: full.perSec, unit: 'place/s', baseline: base, better: 'higher', target: 'Nomad 3,750/s on 5,000 hosts' },
    { name: `${size} nodes: bid round + sampled scoring (64)`, value: sampled.perSec, unit: 'place/s', baseline: base, better: 'higher' },
    { name: `${size} nodes: placement only, sampled (64)`, value: only, unit: 'place/s', baseline: base, better: 'higher' },
    { name: `${size} nodes: bid round + full scoring p99`, value: full.p99, unit: 'ms', better: 'lower' },
  )
}
printSection('placement over simulated nodes (in-process bidders)', figures)

const live = await import('./orchestration-live.ts').catch((err: Error) => {
  console.log(`\n## live figures skipped: ${err.message}`)
  return undefined
})
if (live) await live.runLive()

// When a sampled bid round may stop waiting (spec/orchestration.md "Placement at scale", "A round ends when
// its placement is known"): the bids in hand already decide the placement, whatever the nodes that have not
// answered yet will say. Each node still to answer stands in as the best offer it could make: its price as its
// own price policy quotes it (the capacity index holds the policy from its signed heartbeats; no policy, price
// 0), its latency the least its answer can still show (its round trip is at least the time it has taken so
// far, and never below the mesh's ping), its trust as the trust book holds it, room for anything, no owner
// shared with another node. The round is decided when placement picks the same nodes with and without those
// stand-ins and picks none of them: the answers still out could only lose.
import type { Workload } from '../workload/workload.ts'
import type { CapacityIndex } from './capacity-index.ts'
import type { NodeOffer, TrustView } from './offer.ts'
import { place, type ExistingReplica } from './place.ts'
import { quote } from './price.ts'

export interface PendingNode {
  did: string
  /** How long its answer has been awaited, ms. */
  waitedMs: number
}

export interface SettleInput {
  workload: Workload
  count: number
  standby: boolean
  /** The offers made by the bids in hand (as the round's offers are built). */
  offers: NodeOffer[]
  pending: readonly PendingNode[]
  exclude?: ReadonlySet<string>
  existing?: ExistingReplica[]
  index: CapacityIndex
  /** The mesh's ping of a node, when known. */
  latencyMs(did: string): number | undefined
  trust?: TrustView
}

const unlimited = { cpu: Infinity, memoryBytes: Infinity, gpu: Infinity, vramBytes: Infinity, diskBytes: Infinity }

/** The best offer `did` could still make, or undefined when none can be foreseen (not in the index, no facts). */
export function bestCase(did: string, waitedMs: number, i: Pick<SettleInput, 'workload' | 'index' | 'latencyMs' | 'trust'>): NodeOffer | undefined {
  const facts = i.index.get(did)?.facts
  if (!facts) return undefined
  const w = i.workload
  return {
    nodeDid: did,
    // its own DID: shares no owner with another node (the least spread penalty it could get)
    ownerDid: did,
    arch: facts.arch,
    region: facts.region,
    labels: facts.labels,
    runtimes: [w.runtime.type],
    free: unlimited,
    pricePerHour: facts.price ? String(quote(facts.price, w.resources, w.lane)) : '0',
    latencyMs: Math.max(0, Math.min(i.latencyMs(did) ?? Infinity, waitedMs, 10_000)),
    trust: i.trust ? i.trust.trustOf(did) : 0.5,
    ...((i.trust?.coreRoots?.length ?? 0) > 0 ? { core: true } : {}),
  }
}

/** True when the bids in hand decide the placement: no node still to answer could take a pick. */
export function placementSettled(i: SettleInput): boolean {
  const w = i.workload
  // owner rules judge owners that only a bid (its certificate) can show: such a round waits for every answer
  if (w.constraints.owners !== undefined) return false
  const stand: NodeOffer[] = []
  for (const p of i.pending) {
    if (i.exclude?.has(p.did) || i.trust?.quarantined(p.did)) continue
    const o = bestCase(p.did, p.waitedMs, i)
    if (!o) return false
    stand.push(o)
  }
  const req = { workload: w, count: i.count, standby: i.standby, ...(i.exclude ? { exclude: new Set(i.exclude) } : {}), ...(i.existing ? { existing: i.existing } : {}) }
  const now = place({ ...req, offers: i.offers })
  if (!now.ok) return false
  if (stand.length === 0) return true
  const all = place({ ...req, offers: [...i.offers, ...stand] })
  if (!all.ok) return false
  const nodes = (r: typeof now): string[] => (r.ok ? [...r.picks.map((p) => p.offer.nodeDid), r.standby?.offer.nodeDid ?? ''] : [])
  const a = nodes(now)
  const b = nodes(all)
  return a.length === b.length && a.every((n, k) => n === b[k])
}

// Placement: filter offers by hard constraints, score the rest (price, measured latency, trust, spread) and
// pick replicas greedily. Pure and allocation-light, so it can place thousands of workloads per second over
// thousands of offers. Like Nomad's limit iterator, it may stop after `candidateLimit` eligible nodes found
// from a random starting point instead of scoring every node; an infeasible answer always scans them all.
import { maxPriceOf, type Lane, type ResourceRequest, type Workload } from '../workload/workload.ts'
import { constraintFailures, constraintOrder, subtract, type ConstraintFailure, type ConstraintName } from './constraints.ts'
import { offerPricePerHour, type Capacity, type NodeOffer } from './offer.ts'

export interface ScoreWeights {
  price: number
  latency: number
  trust: number
  /** Penalty per replica of this workload already on the node (and half of it per replica on the same owner). */
  spread: number
}

/** best-effort: the cheapest fit; protected: spread and latency weigh more (distinct nodes are a hard rule). */
export const laneWeights: Record<Lane, ScoreWeights> = {
  'best-effort': { price: 0.6, latency: 0.15, trust: 0.1, spread: 0.5 },
  protected: { price: 0.3, latency: 0.3, trust: 0.2, spread: 1 },
}

export interface ExistingReplica {
  nodeDid: string
  ownerDid: string
}

export interface PlacementRequest {
  workload: Workload
  /** How many replicas to place now (all of them at deploy, the lost ones at failover). */
  count: number
  offers: readonly NodeOffer[]
  /** Replicas of this workload that keep running (spread; distinct nodes for the protected lane). */
  existing?: readonly ExistingReplica[]
  /** Nodes not to use: lost, fenced, or that refused to reserve. */
  exclude?: ReadonlySet<string>
  /** Also pick a standby node (protected lane) distinct from every replica, when one exists. */
  standby?: boolean
  weights?: ScoreWeights
  /** Stop after this many eligible nodes (0 or undefined: score all). */
  candidateLimit?: number
  random?: () => number
}

export interface PlacementPick {
  offer: NodeOffer
  score: number
}

export interface NearestCandidate {
  nodeDid: string
  failures: ConstraintFailure[]
}

export interface InfeasibleReason {
  /** One sentence for people. */
  reason: string
  /** The constraint that ruled out the most nodes (every node when `noneMet`), or `distinct-nodes`. */
  constraint?: ConstraintName | 'distinct-nodes' | 'distinct-owners' | 'no-offers'
  /** True when not a single node met `constraint`. */
  noneMet: boolean
  offers: number
  eligible: number
  needed: number
  /** How many nodes each constraint ruled out. */
  ruledOut: Partial<Record<ConstraintName, number>>
  nearest?: NearestCandidate
  /** Nodes that answered the bid request with a signed "no", and why (added by the orchestrator). */
  declines?: { node: string; reasons: string[] }[]
  /** Nodes asked that did not answer. */
  silent?: { node: string; reason: string }[]
}

export type PlacementResult =
  | { ok: true; picks: PlacementPick[]; standby?: PlacementPick; eligible: number }
  | { ok: false; infeasible: InfeasibleReason }

export type EligibilityCheck = (o: NodeOffer, free?: Capacity) => boolean

const compiled = new WeakMap<Workload, EligibilityCheck>()

/**
 * The hot-path eligibility check for one workload, compiled once (constraint lists turned into sets and
 * arrays) so checking thousands of offers allocates nothing. `constraintFailures` is its explaining twin.
 */
export function eligibility(w: Workload): EligibilityCheck {
  let check = compiled.get(w)
  if (check) return check
  const c = w.constraints
  const r = w.resources
  const runtime = w.runtime.type
  const arch = c.arch ? new Set<string>(c.arch) : undefined
  const region = c.region ? new Set(c.region) : undefined
  const labels = c.labels ? Object.entries(c.labels) : []
  const deny = c.owners?.deny ? new Set(c.owners.deny) : undefined
  const allow = c.owners?.allow ? new Set(c.owners.allow) : undefined
  const maxLatency = c.maxLatencyMs ?? Infinity
  const maxPrice = maxPriceOf(c)
  const minTrust = c.minTrust ?? -Infinity
  const core = c.core === true
  check = (o: NodeOffer, free: Capacity = o.free): boolean => {
    if (r.cpu > free.cpu + 1e-9 || r.memoryBytes > free.memoryBytes || r.gpu > free.gpu || r.vramBytes > free.vramBytes || r.diskBytes > free.diskBytes) return false
    if (o.latencyMs > maxLatency || o.trust < minTrust) return false
    if (maxPrice !== undefined && offerPricePerHour(o) > maxPrice) return false
    if (!o.runtimes.includes(runtime)) return false
    if (arch && !arch.has(o.arch)) return false
    if (region && !region.has(o.region)) return false
    for (let i = 0; i < labels.length; i++) if (o.labels[labels[i]![0]] !== labels[i]![1]) return false
    if (deny?.has(o.ownerDid)) return false
    if (allow && !allow.has(o.ownerDid)) return false
    if (core && o.core !== true) return false
    return true
  }
  compiled.set(w, check)
  return check
}

/** Whether `o` meets every hard constraint of `w` (with `free` capacity, default the offer's). */
export function isEligible(w: Workload, o: NodeOffer, free: Capacity = o.free): boolean {
  return eligibility(w)(o, free)
}

const fits = (r: ResourceRequest, f: Capacity): boolean =>
  r.cpu <= f.cpu + 1e-9 && r.memoryBytes <= f.memoryBytes && r.gpu <= f.gpu && r.vramBytes <= f.vramBytes && r.diskBytes <= f.diskBytes

interface Candidate {
  offer: NodeOffer
  free: Capacity
  onNode: number
  base: number
  /** The offer's µNLC price as a Number: for the score only (a rank, never money). */
  price: number
}

export function place(req: PlacementRequest): PlacementResult {
  const { workload: w, offers } = req
  const lane = w.lane
  const weights = req.weights ?? laneWeights[lane]
  const exclude = req.exclude
  const distinctNodes = lane === 'protected'
  /** constraints.owners.distinct: no two replicas on nodes of one owner (hard). */
  const distinctOwners = w.constraints?.owners?.distinct === true
  const existing = req.existing ?? []
  const usedNodes = new Map<string, number>()
  const usedOwners = new Map<string, number>()
  for (const e of existing) {
    usedNodes.set(e.nodeDid, (usedNodes.get(e.nodeDid) ?? 0) + 1)
    usedOwners.set(e.ownerDid, (usedOwners.get(e.ownerDid) ?? 0) + 1)
  }
  const wantStandby = req.standby === true
  const need = req.count + (wantStandby ? 1 : 0)
  const limit = req.candidateLimit && req.candidateLimit > 0 ? Math.max(req.candidateLimit, need * 2) : Infinity

  // Collect eligible candidates, from a random start when sampling.
  const n = offers.length
  const start = limit < n ? Math.floor((req.random ?? Math.random)() * n) : 0
  const cands: Candidate[] = []
  const eligible = eligibility(w)
  // Prices rank candidates here, nothing is paid from them: the score may read them as Numbers (a µNLC
  // price loses precision as a double only beyond 2^53 µNLC, 9 billion NLC an hour, and then only in its rank).
  let maxPrice = 0
  for (let i = 0; i < n && cands.length < limit; i++) {
    const o = offers[(start + i) % n]!
    if (exclude?.has(o.nodeDid)) continue
    if (distinctNodes && usedNodes.has(o.nodeDid)) continue
    if (!eligible(o)) continue
    const price = Number(o.pricePerHour)
    cands.push({ offer: o, free: o.free, onNode: usedNodes.get(o.nodeDid) ?? 0, base: 0, price })
    if (price > maxPrice) maxPrice = price
  }
  const minReplicas = distinctNodes ? req.count : Math.min(req.count, 1)
  if (cands.length < minReplicas || cands.length === 0) return { ok: false, infeasible: explain(req, cands.length) }

  // Static part of each score: price (cheaper is better), latency, trust.
  for (const c of cands) {
    const price = maxPrice > 0 ? 1 - c.price / maxPrice : 1
    const latency = 1 / (1 + c.offer.latencyMs / 50)
    c.base = weights.price * price + weights.latency * latency + weights.trust * c.offer.trust
  }
  const score = (c: Candidate): number =>
    c.base - weights.spread * (c.onNode + 0.5 * (usedOwners.get(c.offer.ownerDid) ?? 0))

  const picks: PlacementPick[] = []
  for (let k = 0; k < req.count; k++) {
    let best: Candidate | undefined
    let bestScore = -Infinity
    let ownerTaken = false
    for (const c of cands) {
      if (distinctNodes && c.onNode > 0) continue
      if (!fits(w.resources, c.free)) continue
      if (distinctOwners && usedOwners.has(c.offer.ownerDid)) {
        ownerTaken = true
        continue
      }
      const s = score(c)
      if (s > bestScore || (s === bestScore && best && c.offer.nodeDid < best.offer.nodeDid)) {
        best = c
        bestScore = s
      }
    }
    if (!best) return { ok: false, infeasible: ownerTaken ? distinctOwnersShort(req, cands, usedOwners) : explain(req, cands.length) }
    picks.push({ offer: best.offer, score: bestScore })
    best.free = subtract(best.free, w.resources)
    best.onNode++
    usedNodes.set(best.offer.nodeDid, best.onNode)
    usedOwners.set(best.offer.ownerDid, (usedOwners.get(best.offer.ownerDid) ?? 0) + 1)
  }
  let standby: PlacementPick | undefined
  if (wantStandby) {
    // a certified core node when any fits (spec/trust.md "The core pool"), the best score among those
    let bestScore = -Infinity
    let bestCore = false
    for (const c of cands) {
      if (c.onNode > 0 || !fits(w.resources, c.free)) continue
      // with distinct owners, the standby (a replica once it takes over) is of an owner no replica has
      if (distinctOwners && usedOwners.has(c.offer.ownerDid)) continue
      const s = score(c)
      const core = c.offer.core === true
      if ((core && !bestCore) || (core === bestCore && s > bestScore)) {
        standby = { offer: c.offer, score: s }
        bestScore = s
        bestCore = core
      }
    }
  }
  return { ok: true, picks, ...(standby ? { standby } : {}), eligible: cands.length }
}

/** Why a placement with `owners.distinct` found no replica of an owner not used yet. */
function distinctOwnersShort(req: PlacementRequest, cands: readonly Candidate[], used: ReadonlyMap<string, number>): InfeasibleReason {
  const owners = new Set(cands.map((c) => c.offer.ownerDid))
  const fresh = [...owners].filter((o) => !used.has(o)).length
  const needed = req.count + (req.existing?.length ?? 0)
  return {
    reason: `owners.distinct: ${needed} replica(s) need as many owners; the eligible nodes belong to ${owners.size} owner(s), ${fresh} of them without a replica here`,
    constraint: 'distinct-owners', noneMet: false, offers: req.offers.length, eligible: cands.length, needed, ruledOut: {},
  }
}

/** Why a placement cannot be made: the constraint no node met (or that ruled out most), and the nearest node. */
export function explain(req: PlacementRequest, eligible: number): InfeasibleReason {
  const { workload: w, offers } = req
  const needed = w.lane === 'protected' ? req.count : Math.min(req.count, 1)
  if (offers.length === 0) {
    return { reason: 'no node answered the bid request', constraint: 'no-offers', noneMet: true, offers: 0, eligible: 0, needed, ruledOut: {} }
  }
  const ruledOut: Partial<Record<ConstraintName, number>> = {}
  let nearest: NearestCandidate | undefined
  let nearestKey = Infinity
  let considered = 0
  for (const o of offers) {
    if (req.exclude?.has(o.nodeDid)) continue
    considered++
    const f = constraintFailures(w, o)
    for (const x of f) ruledOut[x.constraint] = (ruledOut[x.constraint] ?? 0) + 1
    const key = f.length * 10 + f.reduce((s, x) => s + x.gap, 0)
    if (f.length > 0 && key < nearestKey) {
      nearestKey = key
      nearest = { nodeDid: o.nodeDid, failures: f }
    }
  }
  const base = { offers: offers.length, eligible, needed, ruledOut, ...(nearest ? { nearest } : {}) }
  const near = nearest ? `; nearest candidate ${nearest.nodeDid}: ${nearest.failures.map((f) => `${f.constraint} (${f.detail})`).join(', ')}` : ''
  if (considered === 0) {
    return { ...base, reason: `every node that answered is excluded (lost, fenced or refused to reserve)`, constraint: 'no-offers', noneMet: true }
  }
  const noneMet = constraintOrder.find((c) => ruledOut[c] === considered)
  if (noneMet) return { ...base, reason: `no node meets ${noneMet}${near}`, constraint: noneMet, noneMet: true }
  if (eligible > 0 && w.lane === 'protected') {
    return { ...base, reason: `the protected lane needs ${needed} distinct nodes, only ${eligible} meet every constraint${near}`, constraint: 'distinct-nodes', noneMet: false }
  }
  let worst: ConstraintName | undefined
  for (const c of constraintOrder) if ((ruledOut[c] ?? 0) > (worst ? ruledOut[worst]! : 0)) worst = c
  return {
    ...base,
    reason: `no node meets every constraint (${worst ?? 'capacity'} ruled out ${worst ? ruledOut[worst] : 0} of ${considered})${near}`,
    ...(worst ? { constraint: worst } : {}),
    noneMet: false,
  }
}

// Hard constraints: a node either meets each one or it does not. Each failure is named so that an
// infeasible answer can say which constraint no node met and how close the nearest candidate came.
import { formatNlc } from '../../ledger/units.ts'
import { maxPriceOf, type ResourceRequest, type Workload } from '../workload/workload.ts'
import { formatBytes } from '../workload/quantity.ts'
import { offerPricePerHour, type Capacity, type NodeOffer } from './offer.ts'

export type ConstraintName =
  | 'runtime' | 'arch' | 'region' | 'labels' | 'owner' | 'maxLatencyMs' | 'maxPrice' | 'minTrust' | 'core'
  | 'cpu' | 'memory' | 'gpu' | 'vram' | 'disk'

export const constraintOrder: readonly ConstraintName[] = [
  'runtime', 'arch', 'region', 'labels', 'owner', 'core', 'maxLatencyMs', 'maxPrice', 'minTrust', 'cpu', 'memory', 'gpu', 'vram', 'disk',
]

export interface ConstraintFailure {
  constraint: ConstraintName
  /** e.g. "needs 2 cpu, has 1.5" */
  detail: string
  /** How far off, 0..1 (relative shortfall), for ranking the nearest candidate. */
  gap: number
}

const rel = (need: number, have: number): number => (need <= 0 ? 0 : Math.min(1, Math.max(0, (need - have) / need)))

/** The resource failures of `free` for `req` (empty when it fits). */
export function resourceFailures(req: ResourceRequest, free: Capacity): ConstraintFailure[] {
  const out: ConstraintFailure[] = []
  if (req.cpu > free.cpu + 1e-9) out.push({ constraint: 'cpu', detail: `needs ${req.cpu} cpu, has ${round(free.cpu)}`, gap: rel(req.cpu, free.cpu) })
  if (req.memoryBytes > free.memoryBytes) out.push({ constraint: 'memory', detail: `needs ${formatBytes(req.memoryBytes)} memory, has ${formatBytes(free.memoryBytes)}`, gap: rel(req.memoryBytes, free.memoryBytes) })
  if (req.gpu > free.gpu) out.push({ constraint: 'gpu', detail: `needs ${req.gpu} gpu, has ${free.gpu}`, gap: rel(req.gpu, free.gpu) })
  if (req.vramBytes > free.vramBytes) out.push({ constraint: 'vram', detail: `needs ${formatBytes(req.vramBytes)} vram, has ${formatBytes(free.vramBytes)}`, gap: rel(req.vramBytes, free.vramBytes) })
  if (req.diskBytes > free.diskBytes) out.push({ constraint: 'disk', detail: `needs ${formatBytes(req.diskBytes)} disk, has ${formatBytes(free.diskBytes)}`, gap: rel(req.diskBytes, free.diskBytes) })
  return out
}

const round = (n: number): number => Math.round(n * 1000) / 1000

/** Every hard constraint `offer` fails for `w` (empty when the node is eligible). */
export function constraintFailures(w: Workload, offer: NodeOffer): ConstraintFailure[] {
  const c = w.constraints
  const out: ConstraintFailure[] = []
  if (!offer.runtimes.includes(w.runtime.type)) out.push({ constraint: 'runtime', detail: `runs ${offer.runtimes.join('/') || 'nothing'}, not ${w.runtime.type}`, gap: 1 })
  if (c.arch && !c.arch.includes(offer.arch)) out.push({ constraint: 'arch', detail: `is ${offer.arch}, wanted ${c.arch.join('/')}`, gap: 1 })
  if (c.region && !c.region.includes(offer.region)) out.push({ constraint: 'region', detail: `is in ${offer.region}, wanted ${c.region.join('/')}`, gap: 1 })
  if (c.labels) {
    const missing = Object.entries(c.labels).filter(([k, v]) => offer.labels[k] !== v)
    if (missing.length > 0) out.push({ constraint: 'labels', detail: `lacks ${missing.map(([k, v]) => `${k}=${v}`).join(', ')}`, gap: missing.length / Object.keys(c.labels).length })
  }
  if (c.owners?.deny?.includes(offer.ownerDid)) out.push({ constraint: 'owner', detail: `owner ${offer.ownerDid} is denied`, gap: 1 })
  else if (c.owners?.allow && !c.owners.allow.includes(offer.ownerDid)) out.push({ constraint: 'owner', detail: `owner ${offer.ownerDid} is not in the allow list`, gap: 1 })
  if (c.core === true && offer.core !== true) out.push({ constraint: 'core', detail: 'is not a certified core node', gap: 1 })
  if (c.maxLatencyMs !== undefined && offer.latencyMs > c.maxLatencyMs) out.push({ constraint: 'maxLatencyMs', detail: `is ${round(offer.latencyMs)} ms away, limit ${c.maxLatencyMs} ms`, gap: rel(offer.latencyMs, c.maxLatencyMs) })
  const maxPrice = maxPriceOf(c)
  const price = offerPricePerHour(offer)
  if (maxPrice !== undefined && price > maxPrice) {
    // the gap only ranks the nearest candidate: a Number is good enough for it
    out.push({ constraint: 'maxPrice', detail: `asks ${formatNlc(price)}/h, limit ${formatNlc(maxPrice)}/h`, gap: rel(Number(price), Number(maxPrice)) })
  }
  if (c.minTrust !== undefined && offer.trust < c.minTrust) out.push({ constraint: 'minTrust', detail: `has trust ${offer.trust}, needs ${c.minTrust}`, gap: rel(c.minTrust, offer.trust) })
  out.push(...resourceFailures(w.resources, offer.free))
  return out
}

/** Subtracts one replica's resources from a capacity (a copy). */
export function subtract(free: Capacity, req: ResourceRequest): Capacity {
  return {
    cpu: free.cpu - req.cpu,
    memoryBytes: free.memoryBytes - req.memoryBytes,
    gpu: free.gpu - req.gpu,
    vramBytes: free.vramBytes - req.vramBytes,
    diskBytes: free.diskBytes - req.diskBytes,
  }
}

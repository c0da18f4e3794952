// What the capacity index reads from a node's signed heartbeat (appliance/heartbeat, spec/appliance.md): the
// node, its sequence and interval (freshness), its free capacity, and the facts a bid would state (owner,
// arch, region, labels, runtimes, price policy). A heartbeat is a hint, never a promise: the binding
// statement is still the bid a sampled node signs. Bodies of older nodes carry no `facts`; they are taken
// (freshness, capacity) but such a node is no sampling candidate (spec/orchestration.md, "Placement at scale").
import { InvalidHeartbeatError, type WorkloadIssue } from '../errors.ts'
import type { Arch, RuntimeType } from '../workload/workload.ts'
import { PRICE_POLICY_FIELDS, pricePolicyUnits, type PricePolicy } from './price.ts'

/** What a node states about itself for placement, in its heartbeat: the facts its bids state too. */
export interface PlacementFacts {
  /** The device owner's DID (the node's own when the owner configured none). */
  owner: string
  arch: Arch
  region: string
  labels: Record<string, string>
  /** Runtimes the node can run now. */
  runtimes: RuntimeType[]
  /** The owner's price policy: lets the index leave out nodes above a workload's `maxPrice`; the bid's price binds. */
  price?: PricePolicy
}

/** Free resources as a heartbeat states them (the allocator's `free`; `vramBytes` only where it is tracked). */
export interface ReportedFree {
  cpu: number
  memoryBytes: number
  diskBytes: number
  gpu: number
  vramBytes?: number
}

/** The part of a heartbeat body (appliance/heartbeat/heartbeat.ts `HeartbeatBody`) the capacity index reads. */
export interface CapacityReport {
  v: 1
  node: string
  seq: number
  /** ms since the epoch on the node's clock (compared only with the same node's earlier beats). */
  at: number
  intervalMs: number
  capacity: { free: ReportedFree }
  facts?: PlacementFacts
}

/** Bounds on what one heartbeat may state (a body beyond them is refused, not cut). */
export const reportLimits = {
  minIntervalMs: 100,
  /** A node cannot stay fresh for hours by announcing a long interval. */
  maxIntervalMs: 300_000,
  maxLabels: 64,
  maxLabelChars: 128,
  maxRegionChars: 64,
  maxDidChars: 256,
} as const

const ARCHES: ReadonlySet<string> = new Set<Arch>(['amd64', 'arm64', 'riscv64'])
const RUNTIMES: ReadonlySet<string> = new Set<RuntimeType>(['container', 'microvm', 'wasm', 'actor'])
const FREE_FIELDS = ['cpu', 'memoryBytes', 'diskBytes', 'gpu'] as const

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)
const isAmount = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0
const isWhole = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0
const isDid = (x: unknown): x is string => typeof x === 'string' && x.startsWith('did:') && x.length <= reportLimits.maxDidChars

/**
 * Checks a received heartbeat body and returns the part the index keeps (a copy: the rest of the body is not
 * held). `from` is the DID that signed the pubsub message: a body naming another node is refused. Throws
 * InvalidHeartbeatError listing every problem. Unknown runtime names are left out (a newer node may run more
 * kinds than this one knows), unknown fields ignored.
 */
export function parseCapacityReport(body: unknown, from?: string): CapacityReport {
  const issues: WorkloadIssue[] = []
  const bad = (path: string, reason: string): void => void issues.push({ path, reason })
  if (!isObject(body)) throw new InvalidHeartbeatError([{ path: '$', reason: 'must be an object' }])
  if (body.v !== 1) bad('$.v', 'must be 1')
  if (!isDid(body.node)) bad('$.node', 'must be a DID')
  else if (from !== undefined && body.node !== from) bad('$.node', `names ${body.node}, but ${from} signed it`)
  if (typeof body.seq !== 'number' || !Number.isSafeInteger(body.seq) || body.seq < 0) bad('$.seq', 'must be a non-negative integer')
  if (typeof body.at !== 'number' || !Number.isFinite(body.at) || body.at <= 0) bad('$.at', 'must be a time in ms since the epoch')
  const iv = body.intervalMs
  if (typeof iv !== 'number' || !Number.isFinite(iv) || iv < reportLimits.minIntervalMs || iv > reportLimits.maxIntervalMs) {
    bad('$.intervalMs', `must be between ${reportLimits.minIntervalMs} and ${reportLimits.maxIntervalMs}`)
  }
  const free: ReportedFree = { cpu: 0, memoryBytes: 0, diskBytes: 0, gpu: 0 }
  const cap = body.capacity
  if (!isObject(cap) || !isObject(cap.free)) bad('$.capacity.free', 'must be an object')
  else {
    const f = cap.free
    for (const k of FREE_FIELDS) {
      if (isAmount(f[k])) free[k] = f[k]
      else bad(`$.capacity.free.${k}`, 'must be a finite number >= 0')
    }
    if (f.vramBytes !== undefined) {
      if (isAmount(f.vramBytes)) free.vramBytes = f.vramBytes
      else bad('$.capacity.free.vramBytes', 'must be a finite number >= 0')
    }
  }
  const facts = body.facts === undefined ? undefined : parseFacts(body.facts, bad)
  if (issues.length > 0) throw new InvalidHeartbeatError(issues)
  return {
    v: 1, node: body.node as string, seq: body.seq as number, at: body.at as number, intervalMs: iv as number,
    capacity: { free }, ...(facts ? { facts } : {}),
  }
}

function parseFacts(x: unknown, bad: (path: string, reason: string) => void): PlacementFacts | undefined {
  if (!isObject(x)) {
    bad('$.facts', 'must be an object')
    return undefined
  }
  const n = reportLimits
  if (!isDid(x.owner)) bad('$.facts.owner', 'must be a DID')
  if (typeof x.arch !== 'string' || !ARCHES.has(x.arch)) bad('$.facts.arch', `must be one of ${[...ARCHES].join(', ')}`)
  if (typeof x.region !== 'string' || x.region.length === 0 || x.region.length > n.maxRegionChars) bad('$.facts.region', `must be a string of 1 to ${n.maxRegionChars} characters`)
  const labels: Record<string, string> = {}
  if (!isObject(x.labels)) bad('$.facts.labels', 'must be an object of strings')
  else {
    const entries = Object.entries(x.labels)
    if (entries.length > n.maxLabels) bad('$.facts.labels', `at most ${n.maxLabels} labels`)
    for (const [k, v] of entries) {
      if (typeof v !== 'string' || k.length > n.maxLabelChars || v.length > n.maxLabelChars) bad(`$.facts.labels.${k.slice(0, n.maxLabelChars)}`, `must be a string of at most ${n.maxLabelChars} characters`)
      else labels[k] = v
    }
  }
  const runtimes: RuntimeType[] = []
  if (!Array.isArray(x.runtimes) || x.runtimes.length > 16) bad('$.facts.runtimes', 'must be an array of at most 16 runtime names')
  else {
    x.runtimes.forEach((r, i) => {
      if (typeof r !== 'string') bad(`$.facts.runtimes[${i}]`, 'must be a string')
      else if (RUNTIMES.has(r) && !runtimes.includes(r as RuntimeType)) runtimes.push(r as RuntimeType)
    })
  }
  let price: PricePolicy | undefined
  if (x.price !== undefined) {
    if (!isObject(x.price)) bad('$.facts.price', 'must be an object')
    else {
      const p = x.price
      let ok = true
      for (const k of PRICE_POLICY_FIELDS) {
        if (!isWhole(p[k])) {
          bad(`$.facts.price.${k}`, `must be a whole number >= 0 of ${pricePolicyUnits[k]}`)
          ok = false
        }
      }
      if (ok) price = Object.fromEntries(PRICE_POLICY_FIELDS.map((k) => [k, p[k]])) as unknown as PricePolicy
    }
  }
  return {
    owner: x.owner as string, arch: x.arch as Arch, region: x.region as string, labels, runtimes, ...(price ? { price } : {}),
  }
}

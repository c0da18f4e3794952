// What the orchestrator knows about one candidate node when it places work: the facts the node put in its
// signed bid (capacity, arch, region, labels, owner, price quote) plus what the orchestrator measured itself
// (latency) and what it believes (trust). Placement is pure over these values.
import type { Arch, RuntimeType } from '../workload/workload.ts'
import type { NodeCertificateBody } from './node-certificate.ts'

/** Free capacity in canonical units. */
export interface Capacity {
  cpu: number
  memoryBytes: number
  gpu: number
  vramBytes: number
  diskBytes: number
}

export interface NodeOffer {
  /** The node's did:key. */
  nodeDid: string
  /** The DID of the device owner (several nodes may share one). */
  ownerDid: string
  arch: Arch
  region: string
  labels: Record<string, string>
  runtimes: RuntimeType[]
  /** What the node says it can still give (after its reservations). */
  free: Capacity
  /** The node's quote for one replica of this workload, µNLC per hour: decimal digits, as its bid states it. */
  pricePerHour: string
  /** Round trip measured by the orchestrator, ms (0 for its own node). */
  latencyMs: number
  /** 0..1: what the orchestrator's trust book says of the node (spec/trust.md); 0.5 without one. */
  trust: number
  /** A certified member of the operator's core pool (spec/trust.md "The core pool"); absent: not. */
  core?: boolean
}

/** What an orchestrator believes of nodes (spec/trust.md): their trust, and which get no paid work. */
export interface TrustView {
  trustOf(did: string): number
  quarantined(did: string): boolean
  /** The roots whose core-membership certificates this orchestrator believes (config.json `trustedRoots`). */
  coreRoots?: readonly string[]
  /** True when the issuer of a node certificate revoked it (spec/trust.md "Revoking a certificate"). */
  certificateRevoked?(c: NodeCertificateBody): boolean
}

export const emptyCapacity = (): Capacity => ({ cpu: 0, memoryBytes: 0, gpu: 0, vramBytes: 0, diskBytes: 0 })

/** An offer's price, µNLC per replica-hour (the one way code reads it as a number). */
export function offerPricePerHour(o: Pick<NodeOffer, 'pricePerHour'>): bigint {
  return BigInt(o.pricePerHour)
}

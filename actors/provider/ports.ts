// What the provider side of orchestration needs from the device (the appliance implements these; a unit
// test may implement them in memory). actors/ never imports appliance/: the appliance adapts itself.
import type { Capacity } from '../placement/offer.ts'
import type { NodeCertificate } from '../placement/node-certificate.ts'
import type { Arch, ResourceRequest, RuntimeType, Workload } from '../workload/workload.ts'

/** Facts a node states in its bids. */
export interface NodeFacts {
  did: string
  /** The device owner's DID (the node's own DID when the owner did not configure one). */
  owner: string
  arch: Arch
  region: string
  labels: Record<string, string>
  /** Certificates the node carries in its bids (spec/trust.md): its owner's, and core membership. */
  ownerCert?: NodeCertificate
  coreCert?: NodeCertificate
}

/** The owner's share as the allocator sees it: what is free, and two-phase reservations. */
export interface CapacityPort {
  /** Free capacity now (share minus running work minus open reservations). */
  free(): Promise<Capacity> | Capacity
  /** Reserves for `ttlMs`; rejects (e.g. InsufficientCapacityError) when it does not fit. */
  reserve(o: { id: string; resources: ResourceRequest; ttlMs: number; ports?: number }): Promise<{ reservationId: string }>
  /** Turns a reservation into a held allocation (it no longer expires). */
  commit(reservationId: string): Promise<void>
  /** Frees a reservation or a committed hold. Idempotent. */
  release(reservationId: string): Promise<void>
}

export type InstanceState = 'starting' | 'running' | 'exited' | 'failed' | 'stopped'

export interface InstanceStatus {
  instanceId: string
  state: InstanceState
  /** Exit code for `exited`. */
  code?: number | null
  reason?: string
  at: number
}

export interface LogEntry {
  ts: number
  stream: string
  line: string
}

/** Runs workload instances on this node. */
export interface WorkloadRunner {
  /** Runtimes this node can run now (e.g. container only when Docker answers). */
  runtimes(): Promise<RuntimeType[]> | RuntimeType[]
  /** Why this node cannot run this workload although it has the runtime (e.g. a catalog entry it lacks); undefined when it can. */
  missing?(w: Workload): string | undefined
  /** Starts one instance against a committed reservation; resolves once it is running (or has already ended). `consumer`: the contract's consumer DID (where the workload's artifacts are fetched from first). */
  start(o: { contractId: string; slot: string; workload: Workload; reservationId: string; consumer?: string; restore?: { digest: string; from: string[] } }): Promise<{ instanceId: string }>
  stop(instanceId: string): Promise<void>
  /**
   * Optional (a migration, spec/migration.md): stops the instance and archives its state directory as an
   * artifact; asked again for the same instance, the same archive. Without it the node cannot be migrated from.
   * `live`: archived while it runs (a copy of the directory at that moment; stateful failover), nothing stops.
   */
  checkpoint?(instanceId: string, o?: { live?: boolean }): Promise<{ digest: string; bytes: number }>
  /**
   * Optional (a migration's handover, spec/migration.md): readies the instance of a reserved contract ahead
   * of its start (an SDK actor's sandbox spawned, its bundle loaded, its actor not started), so the start
   * that follows with the old replica's state is quick. `{ warm: false }` when it has no such thing for
   * this workload. Asked again, the same answer; not started within a while, the warm instance is ended.
   */
  prewarm?(o: { contractId: string; slot: string; workload: Workload; reservationId: string; consumer?: string }): Promise<{ warm: boolean }>
  /** Status changes of every instance this runner started. Returns an unsubscribe function. */
  onStatus(listener: (s: InstanceStatus) => void): () => void
  /** After a restart of this node: report the status changes of an instance started before it (re-attached). */
  resume?(instanceId: string): void
  /** Optional: the instances this runner started for contracts that have not ended (after a restart: re-attached). */
  liveInstances?(): Promise<{ instanceId: string; contractId: string }[]>
  /** Log lines after `since` (ms, exclusive), at most `limit`. */
  logs(instanceId: string, o: { since: number; limit: number }): Promise<{ lines: LogEntry[]; ended: boolean }>
}

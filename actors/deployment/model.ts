// What a deployment is, as plain JSON: the deployment actor's context (its persisted snapshot is the
// checkpoint), the view `noir status` shows, and the facts its effects report back. Pure helpers that
// change a context live here too, so the machine (machine.ts) reads as the workflow and nothing else.
import type { Contract } from '../contracts/contract.ts'
import type { BidBody, DeclineBody } from '../bidding/messages.ts'
import type { InfeasibleReason } from '../placement/place.ts'
import type { NodeOffer } from '../placement/offer.ts'
import type { Lane, Workload } from '../workload/workload.ts'

export type DeploymentPhase =
  | 'preparing' | 'bidding' | 'committing' | 'provisioning' | 'running' | 'degraded' | 'stopping'
  | 'completed' | 'failed' | 'stopped' | 'handed-over'
  /** A service with `scale.min: 0` scaled to zero after `idleSeconds` without traffic: no replica, no contract; traffic wakes it. */
  | 'idle'
/** Phases after which this node does nothing more for the deployment (`handed-over`: its standby orchestrates it). */
export const finalPhases: readonly DeploymentPhase[] = ['completed', 'failed', 'stopped', 'handed-over']

export type ReplicaState = 'pending' | 'placing' | 'starting' | 'running' | 'succeeded' | 'failed' | 'lost' | 'stopped'

export interface ReplicaView {
  index: number
  slot: string
  epoch: number
  node: string | null
  owner: string | null
  contractId: string | null
  state: ReplicaState
  /** µNLC per replica-hour of the slot's contract (decimal digits), null before one. */
  pricePerHour: string | null
  /** Placements of this slot so far (1 = first). */
  attempts: number
  /** Nodes where this slot failed or was lost. */
  failedOn: string[]
  runningSince: number | null
  lastExitCode: number | null
  /** The slot's last checkpoint (a migration's, or a protected replica's periodic one): its next start restores it. */
  lastCheckpoint?: { digest: string; bytes: number; at: number } | null
  /** Scaling in: no longer offered to ingresses, its contract being released; the slot goes once it is. */
  retiring?: boolean
}

/** A replica as the deployment actor keeps it: the view plus its signed contract. */
export interface Replica extends ReplicaView {
  contract: Contract | null
  /** When the current placement of this slot began (for the time-to-running figure). */
  placingSince: number | null
  /** The slot's last checkpoint: every later start of the slot restores it. */
  checkpoint?: SlotCheckpoint | null
  /** A migration in flight (between the `migrate` and the `move` jobs). */
  moving?: Moving | null
}

export interface DeploymentEventLine {
  at: number
  msg: string
}

/** A replica (or the standby) whose node did not confirm that it stopped. */
export interface StopFailure {
  slot: string
  node: string
  contractId: string
  /** `Name: message` of the failure (a time-out, the node's StopFailedError, unreachable...). */
  error: string
  at: number
}

export interface Failover {
  slot: string
  from: string
  to: string | null
  lostAt: number
  lastHeartbeatAt: number | null
  runningAt: number | null
  ms: number | null
}

export interface StandbyRef {
  node: string
  contractId: string
}

/**
 * Work the deployment still has to do on one slot, in order of arrival. A migration is two jobs: `migrate`
 * reserves the new node (nothing is touched yet), `move` checkpoints the old replica, starts the new one from
 * the checkpoint and releases the old one (its contract is in `Replica.moving`, so a restart re-runs it).
 */
export type RepairJob =
  | { kind: 'slot'; slot: string; why: string }
  | { kind: 'standby' }
  | { kind: 'migrate'; slot: string; why: string; id: string; to?: string; at: number }
  | { kind: 'move'; slot: string; why: string; id: string }
  | { kind: 'retire'; slot: string; why: string }

/** A slot's state as an artifact (a tar of its state directory; an SDK actor's snapshot is in it). */
export interface SlotCheckpoint {
  digest: string
  bytes: number
  /** Where it can be fetched first (the node that made it); any holder the DHT names otherwise. */
  from: string
  at: number
}

/** A migration in flight: the new contract (reserved, not started) and the replica it replaces. */
export interface Moving {
  id: string
  contract: Contract
  from: { node: string; contractId: string }
  why: string
  requestedAt: number
}

/** One migration, as `noir status` shows it. */
export interface MigrationRecord {
  id: string
  slot: string
  from: string
  to: string | null
  why: string
  requestedAt: number
  doneAt: number | null
  ok: boolean | null
  /** The state carried (null: a stateless workload, started before the old one stopped). */
  checkpoint: { digest: string; bytes: number } | null
  /** From the old replica quiesced to the new one running (ms); null when nothing was quiesced. */
  gapMs: number | null
  /** An SDK actor's handover: whether the new sandbox was readied (bundle loaded) before the old one was quiesced. */
  warm?: boolean
  error: string | null
}

export interface BidRound {
  requestId: string
  asked: string[]
  bids: BidBody[]
  declines: DeclineBody[]
  /** Nodes asked directly that did not answer (time-out or error), with the reason. */
  silent: { node: string; reason: string }[]
  /** Measured round trip of each direct answer, ms. */
  rttMs: Record<string, number>
  /** The bids as offers placement scores (the orchestrator adds latency and trust). */
  offers: NodeOffer[]
  /**
   * Each bid's signature as received, by bidding node: verified only when the bid is acted on (proposed to),
   * spec/orchestration.md "Bids verified when acted on". A bid without one here is never acted on.
   */
  sigs?: Record<string, string>
  /**
   * Nodes asked whose answers the round did not wait for: the bids in hand already decided the placement,
   * whatever those nodes would say (spec/orchestration.md "Placement at scale").
   */
  unawaited?: string[]
}

export interface DeploymentContext {
  id: string
  workload: Workload
  createdAt: number
  /** Instances that should run at once (service replicas, job parallelism). */
  desired: number
  /** Job: successful runs needed. */
  completions: number
  /** Job: failed runs tolerated. */
  retries: number
  /** Commit rounds allowed before giving up (each round re-bids without the refusing nodes). */
  maxCommitRounds: number
  replicas: Replica[]
  standby: StandbyRef | null
  succeeded: number
  failures: number
  commitRounds: number
  /**
   * Bid rounds in a row that placed nothing while some asked nodes did not answer (a restart before the mesh
   * is back, a partition): an unknown, not an infeasible workload, so it bids again after a growing pause, up
   * to UNANSWERED_ROUNDS_MAX times, before it fails. Absent in snapshots older than this field (0).
   */
  unansweredRounds?: number
  reason: string | null
  infeasible: InfeasibleReason | null
  /** Every phase entered, with the time (ms). */
  history: { phase: DeploymentPhase; at: number; note?: string }[]
  /** The newest MAX_EVENTS events. */
  events: DeploymentEventLine[]
  /** Events dropped from the front of `events` (beyond MAX_EVENTS). Absent in snapshots older than this field (0). */
  eventsDropped?: number
  failovers: Failover[]
  /** Nodes that refused a contract for this deployment, and how often (twice: left out of later rounds). */
  refusals: Record<string, number>
  stopFailures: StopFailure[]
  /** The bid round being committed (initial placement only). */
  round: BidRound | null
  /** The standby placement chose in that round (protected lane). */
  preferredStandby: string | null
  /** Slots to place again, standby to reserve again: done one job at a time. */
  queue: RepairJob[]
  /** The job being worked on. */
  current: RepairJob | null
  /** Jobs that found no node: tried again after the retry delay. */
  parked: RepairJob[]
  /** A stop arrived while a step was in flight: stop as soon as it settles. */
  stopRequested: boolean
  /** The deployment cannot go on (`reason` says why): it releases what it holds and fails. */
  failNow: boolean
  /** Ever had every replica running (a deployment that never ran fails instead of waiting). */
  everRan: boolean
  /** Which orchestrator term this is: 1 on the node that created it, +1 each time a standby takes it over. */
  orchestratorEpoch?: number
  /** The node this deployment was taken over from (this node is its standby orchestrator), if any. */
  takenOverFrom?: string | null
  /**
   * The capability the node it was taken over from issued to this one (ability /noir/orchestrate): its fences
   * carry it, so a provider that never heard of the takeover learns it from them (spec/contracts.md "Fences").
   */
  handoverToken?: string
  /** The key its create was made with (a retried create with it returns this deployment). */
  idempotencyKey?: string | null
  /** Migrations asked for (`noir migrate`), newest last. Absent in older snapshots. */
  migrations?: MigrationRecord[]
  /** When traffic woke it from `idle` (its replicas not all running again yet); null otherwise. */
  wokenAt?: number | null
  /** The ingress whose traffic woke it. */
  wokenBy?: string | null
  /** A wake that came while its replicas were still stopping: taken as soon as they are. */
  wakeAsked?: { at: number; by: string | null } | null
  /** When it last scaled out (its new replicas not all running yet); null otherwise. */
  scalingSince?: number | null
  /** Each wake from zero: when, and how long until every replica ran again (the cold start), newest last. */
  coldStarts?: ColdStart[]
}

export interface ColdStart { wokenAt: number; runningAt: number; ms: number; by: string | null }

export interface DeploymentView {
  id: string
  name: string
  kind: 'service' | 'job'
  lane: Lane
  phase: DeploymentPhase
  reason: string | null
  infeasible: InfeasibleReason | null
  createdAt: number
  desired: number
  succeeded: number
  failures: number
  replicas: ReplicaView[]
  standby: StandbyRef | null
  history: DeploymentContext['history']
  /** The newest MAX_EVENTS events; the deployment has had `eventsDropped + events.length` in all. */
  events: DeploymentEventLine[]
  /** How many older events are no longer kept: `events[0]` is the deployment's event number `eventsDropped`. */
  eventsDropped: number
  /** Each failover: when the node was found lost and when the replacement ran. */
  failovers: Failover[]
  /** After a stop: the replicas whose node did not confirm they stopped (empty when every one did). */
  stopFailures: StopFailure[]
  /** The orchestrator term (1: the creating node; more: a standby took it over) and who it was taken from. */
  orchestratorEpoch: number
  takenOverFrom: string | null
  /** Each migration: from, to, why, the state carried and the gap. */
  migrations: MigrationRecord[]
  /** Wakes from zero (`service.scale.min: 0`) and their cold starts, newest last. */
  coldStarts: ColdStart[]
}

export const MAX_EVENTS = 200

export function newReplica(id: string, index: number): Replica {
  return {
    index, slot: `${id}/${index}`, epoch: 0, node: null, owner: null, contractId: null, state: 'pending', pricePerHour: null,
    attempts: 0, failedOn: [], runningSince: null, lastExitCode: null, contract: null, placingSince: null,
  }
}

/** A changed copy of the context: `fn` edits a deep copy (contexts are JSON, small, and changed a few times a second at most). */
export function edit(c: DeploymentContext, fn: (draft: DeploymentContext) => void): DeploymentContext {
  const draft = structuredClone(c)
  fn(draft)
  return draft
}

export function note(d: DeploymentContext, at: number, msg: string): void {
  d.events.push({ at, msg })
  if (d.events.length > MAX_EVENTS) {
    d.eventsDropped = (d.eventsDropped ?? 0) + d.events.length - MAX_EVENTS
    d.events.splice(0, d.events.length - MAX_EVENTS)
  }
}

/** How many events the deployment has had in all (the ones kept and the ones dropped beyond MAX_EVENTS). */
export function eventCount(c: Pick<DeploymentContext, 'events' | 'eventsDropped'>): number {
  return (c.eventsDropped ?? 0) + c.events.length
}

export function replicaOf(d: DeploymentContext, slot: string): Replica | undefined {
  return d.replicas.find((r) => r.slot === slot)
}

export const isActive = (r: ReplicaView): boolean => r.state === 'running' || r.state === 'starting' || r.state === 'placing'

export function runningCount(d: DeploymentContext): number {
  return d.replicas.filter((r) => r.state === 'running').length
}

export function repeatRefusers(d: DeploymentContext): string[] {
  return Object.entries(d.refusals).filter(([, n]) => n >= 2).map(([node]) => node)
}

export function enqueue(d: DeploymentContext, job: RepairJob): void {
  const same = (j: RepairJob): boolean => j.kind === job.kind && (j.kind === 'standby' || ('slot' in job && 'slot' in j && j.slot === job.slot))
  if (d.queue.some(same)) return
  d.parked = d.parked.filter((j) => !same(j))
  d.queue.push(job)
}

export function toView(c: DeploymentContext, phase: DeploymentPhase): DeploymentView {
  return {
    id: c.id, name: c.workload.name, kind: c.workload.kind, lane: c.workload.lane, phase, reason: c.reason, infeasible: c.infeasible,
    createdAt: c.createdAt, desired: c.desired, succeeded: c.succeeded, failures: c.failures,
    replicas: c.replicas.map(({ contract: _c, placingSince: _p, checkpoint: k, moving: _m, ...r }) => ({
      ...r, failedOn: [...r.failedOn], lastCheckpoint: k ? { digest: k.digest, bytes: k.bytes, at: k.at } : null,
    })),
    standby: c.standby ? { ...c.standby } : null, history: c.history.map((h) => ({ ...h })), events: c.events.map((e) => ({ ...e })), eventsDropped: c.eventsDropped ?? 0,
    failovers: c.failovers.map((f) => ({ ...f })), stopFailures: c.stopFailures.map((f) => ({ ...f })),
    orchestratorEpoch: c.orchestratorEpoch ?? 1, takenOverFrom: c.takenOverFrom ?? null,
    migrations: (c.migrations ?? []).map((m) => ({ ...m, checkpoint: m.checkpoint ? { ...m.checkpoint } : null })),
    coldStarts: (c.coldStarts ?? []).map((x) => ({ ...x })),
  }
}

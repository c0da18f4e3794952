// The orchestrator: turns a workload into running replicas and keeps them running. It hosts actors on the
// node's ActorSystem and nothing else keeps state:
//   <did>/orchestrator                 the inbox: bid answers, replica reports, convictions -> routed as messages
//   <did>/orchestrator/<deployment>    one deployment actor each (../deployment/machine.ts): owns the workflow
//   <did>/failure-detector             heartbeats in, convictions out (../failure/failure-detector.ts)
// Every deployment snapshot is written before the step it starts sends anything (write-ahead, effects.ts),
// and a restarted orchestrator spawns each deployment from its last snapshot: the step in flight runs again.
import type { SignatureWorker } from '../../identity/signature-worker.ts'
import { randomBytes } from 'node:crypto'
import { setup, type AnyActorLogic } from 'xstate'
import { failpoint, withFailpoints } from '../../core/failpoints.ts'
import { ActorSystem, defineActor, registerErrorClass, type ActorDefinition, type ActorRef, type MessageContext } from '../../core/index.ts'
import { parseAddress } from '../../identity/address.ts'
import type { Log } from '../../p2p/log.ts'
import { DEPLOYMENT_STEPS, deploymentMachine, phaseOfSnapshot, viewOf, type DeploymentEvent, type DeploymentMachine } from '../deployment/machine.ts'
import { eventCount, finalPhases, type DeploymentContext, type DeploymentView, type MigrationRecord, type SlotCheckpoint } from '../deployment/model.ts'
import { upgradeDeploymentSnapshot } from '../deployment/upgrade.ts'
import * as errors from '../errors.ts'
import { DeploymentNotFoundError, IdempotencyConflictError, InvalidTermsError, OrchestrationError } from '../errors.ts'
import { verifyContract, workloadDigest, type Contract, type ContractTerms } from '../contracts/contract.ts'
import { FailureBehavior, failureDetectorActor, type FailureDetectorContext, type NodeGone, type NodeLost } from '../failure/failure-detector.ts'
import { place } from '../placement/place.ts'
import type { LogEntry } from '../provider/ports.ts'
import type { ReplicaReport } from '../provider/provider.ts'
import { instanceCount, maxPriceOf, type Lane, type Workload } from '../workload/workload.ts'
import { Checkpoints, type DeploymentStore } from './checkpoints.ts'
import { OrchestrationEffects, type MarketPorts } from './effects.ts'
import { StandbyReplicas, StandbyReplicator, type StandbyReplicaStore } from './standby.ts'
import type { CapacityIndex } from '../placement/capacity-index.ts'
import { MarketBehavior, ORCHESTRATOR_ACTOR, OrchestratorBehavior, Topics } from './protocol.ts'
import { withDeclines } from '../deployment/machine.ts'
import { LeaseRenewer, type LeaseTarget } from './lease-renewer.ts'
import { emptyReport, reconcile, type ReconcileReport, type Verdict } from './reconciliation.ts'
import type { ContractLeaseView, GoneContract } from '../provider/leases.ts'
import { MemoryKvStore } from '../../core/index.ts'
import type { Escrow } from '../usage/escrow.ts'
import { UsageDesk } from '../usage/desk.ts'
import { CheckpointWitness } from '../usage/witness.ts'
import type { Tolerance } from '../usage/judge.ts'
import { KvUsageStore, type StoredUsage } from '../usage/store.ts'
import { defaultPricePolicy } from '../placement/price.ts'
import type { Handover } from '../provider/orchestrator-authority.ts'
import { Rebalancer, type RebalancePolicy } from './rebalancer.ts'
import { IdleWatch, type TrafficReport } from './idle-watch.ts'

export type { DeploymentRecord, DeploymentStore } from './checkpoints.ts'
export type { BidRound, DeploymentEventLine, DeploymentView, ReplicaState, ReplicaView, StopFailure } from '../deployment/model.ts'

for (const value of Object.values(errors)) {
  // Each class's `name` equals its class name, so a remote caller gets the same class back.
  if (typeof value === 'function' && value.prototype instanceof Error) registerErrorClass(value as never)
}

export const FAILURE_DETECTOR_ACTOR = 'failure-detector'

/** Behaviors of a deployment actor: local only (the orchestrator's inbox and commands). */
export const DeploymentBehavior = {
  report: '/noir/deployment/report',
  nodeLost: '/noir/deployment/node-lost',
  stop: '/noir/deployment/stop',
  resume: '/noir/deployment/resume',
  takenOver: '/noir/deployment/taken-over',
  status: '/noir/deployment/status',
  /** `noir migrate` (local only): move a slot's replica to another node. */
  migrate: '/noir/deployment/migrate',
  /** A running replica's live checkpoint (local only): the slot starts from it after a failover. */
  checkpointed: '/noir/deployment/checkpointed',
  /** Scale to zero (local only): no traffic for its idle time; and traffic for a service at zero. */
  idle: '/noir/deployment/idle',
  wake: '/noir/deployment/wake',
  scaleOut: '/noir/deployment/scale-out',
  scaleIn: '/noir/deployment/scale-in',
} as const

export interface OrchestratorPorts extends MarketPorts {
  /** Where deployment snapshots are kept across restarts of this node (default: in memory). */
  deployments?: DeploymentStore
  /** The ActorSystem that hosts the orchestration actors (default: a local one of its own). */
  system?: ActorSystem
  /** Keeps a copy of an artifact on this node (fetched from `from`, checked by digest): a replica's checkpoint outlives its node. */
  keepArtifact?(digest: string, from: string[]): Promise<void>
  /** Asks another node's orchestrator inbox (standby replication and questions). */
  askOrchestrator?(did: string, behavior: string, body: unknown, timeoutMs: number): Promise<unknown>
  /** This node's standby orchestrator: another node its owner controls (spec/orchestration.md "Standby orchestrator"). */
  standby?: string
  /** The nodes this node is the standby orchestrator of (deny by default: nobody else's snapshots are kept). */
  standbyFor?: readonly string[]
  /** Where the snapshots received as a standby are kept across restarts (default: in memory). */
  standbyReplicas?: StandbyReplicaStore
  /** The capacity index fed by signed heartbeats: bid rounds ask a sample of it first (spec/orchestration.md "Placement at scale"). */
  capacityIndex?: CapacityIndex
  /** The signature thread the picks' bid signatures are verified on (spec/orchestration.md "Bids verified on the signature thread"); absent: inline. */
  signatures?: SignatureWorker<unknown>
  /**
   * The node's wallet (spec/ledger.md "Escrow"): contracts hold prepaid windows of NLC, usage is paid from
   * them. Absent (unit tests of placement): nothing is held or paid.
   */
  escrow?: Escrow
  /** Where usage records and observations are kept (default: in memory). */
  usage?: KvUsageStore
  /**
   * Sees every report that comes from the node it names, before it is routed (spec/trust.md): the trust
   * layer's own check runs are its to take (true: not a deployment's report); ended job runs are compared.
   */
  observeReport?(r: ReplicaReport): boolean
  now?: () => number
  log?: Log
}

export interface OrchestratorOptions {
  /** How long to wait for bids. Default 1500 ms. */
  bidWindowMs?: number
  /** Time-out of a propose/start ask. Default 10 s. */
  commitTimeoutMs?: number
  /** phi at which a node is lost, per lane. Defaults: protected 3, best-effort 6. */
  phiThreshold?: Partial<Record<Lane, number>>
  /** Expected heartbeat interval (seeds the detector). Default 500 ms. */
  heartbeatIntervalMs?: number
  /**
   * Keep the reports that arrive before `restore()` and route them after it (a daemon: its own provider
   * reports at its start what ended while it was down). Default false (nothing is restored, nothing waits).
   */
  holdReportsUntilRestore?: boolean
  /** How often the detector is checked. Default 100 ms. */
  checkIntervalMs?: number
  /** How often fences of live deployments are broadcast again (so a healed partition learns them). Default 2 s. */
  fenceRepeatMs?: number
  /**
   * How often each running replica of a protected deployment with a `stateDir` is checkpointed (its state
   * directory archived while it runs, kept on this node too), so a replica lost with its node resumes from
   * its last checkpoint elsewhere (spec/migration.md "Stateful failover"). Default 30 s; 0: never.
   */
  checkpointEveryMs?: number
  /**
   * Rebalancing of best-effort service replicas to clearly cheaper nodes (spec/migration.md "Rebalancing"):
   * off unless given; what is left out takes DEFAULT_REBALANCE_POLICY.
   */
  rebalance?: Partial<RebalancePolicy>
  /** How long a degraded deployment waits before it tries again to place a slot no node took. Default 30 s. */
  replaceRetryMs?: number
  /**
   * The grace a provider gives an instance on stop before it kills it (SIGTERM to SIGKILL). Default 2000 ms
   * (the appliance's). A stop ask waits this long plus `stopMarginMs` for the node to confirm.
   */
  stopGraceMs?: number
  /** Time beyond the grace for the kill, the removal and the round trip. Default 10 s. */
  stopMarginMs?: number
  /** Commit rounds before a deployment gives up. Default 5. */
  maxCommitRounds?: number
  /** The lease written in each contract (spec/contracts.md "Leases"). Default 30 s. */
  leaseMs?: number
  /** How often the leases of live contracts are renewed. Default a third of the lease. */
  leaseRenewMs?: number
  /** The prepaid window each escrow hold covers (ms). Default 120,000. */
  escrowWindowMs?: number
  /** How far a usage record may exceed what this node observed and still be accepted in full. */
  usageTolerance?: Tolerance
}

export interface DryRunResult {
  round: import('../deployment/model.ts').BidRound
  placement: { ok: true; nodes: string[]; standby: string | null } | { ok: false; infeasible: import('../placement/place.ts').InfeasibleReason }
}

const shortId = (): string => randomBytes(4).toString('hex')
/** How long a create waits for its standby orchestrator to hold it before it is answered anyway. */
const REPLICATE_BEFORE_ACK_MS = 2000
const senderDid = (msg: MessageContext): string => parseAddress(msg.from).did
const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)))

/** Runs `logic` and hands every snapshot it moves to (before any effect it starts) to `onSnapshot`. */
function checkpointed<T extends AnyActorLogic>(logic: T, onSnapshot: (snapshot: unknown) => void): T {
  const wrapped = Object.create(logic) as T
  wrapped.transition = ((snapshot: never, event: never, scope: never) => {
    const next = logic.transition(snapshot, event, scope)
    onSnapshot(next)
    return next
  }) as T['transition']
  wrapped.getInitialSnapshot = ((scope: never, input: never) => {
    const first = logic.getInitialSnapshot(scope, input)
    onSnapshot(first)
    return first
  }) as T['getInitialSnapshot']
  // Restored snapshots must belong to the machine itself, as fresh ones do (XState keeps `snapshot.machine`).
  if (logic.restoreSnapshot) wrapped.restoreSnapshot = logic.restoreSnapshot.bind(logic) as T['restoreSnapshot']
  return wrapped
}

export class Orchestrator {
  readonly #p: OrchestratorPorts
  readonly #o: { bidWindowMs: number; commitTimeoutMs: number; heartbeatIntervalMs: number; checkIntervalMs: number; fenceRepeatMs: number; replaceRetryMs: number; stopTimeoutMs: number; maxCommitRounds: number; phiThreshold: Record<Lane, number> }
  readonly #system: ActorSystem
  readonly #ownSystem: boolean
  readonly #now: () => number
  readonly #effects: OrchestrationEffects
  readonly #machine: DeploymentMachine
  readonly #logic: DeploymentMachine
  readonly #definition: ActorDefinition
  readonly #checkpoints: Checkpoints
  /** Deployment ids this node orchestrates (their actors live under `orchestrator/`). */
  readonly #ids = new Set<string>()
  /** The last snapshot of each deployment (what a crashed actor is started again from). */
  readonly #last = new Map<string, unknown>()
  readonly #waiters = new Map<string, Set<() => void>>()
  /** Sends snapshots to this node's standby orchestrator, when one is named. */
  readonly #replicator: StandbyReplicator | undefined
  /** Snapshots of the nodes this node stands by for. */
  readonly #replicas: StandbyReplicas
  /** Creates by idempotency key: the deployment and the digest of the workload it was made with. */
  readonly #byKey = new Map<string, { id: string; digest: string }>()
  /** Deployments this node's standby took over while it was down: shown, never acted on. */
  readonly #handedOver = new Map<string, DeploymentView>()
  /** Reports that arrived before restore() (undefined once it ran). */
  #early: { r: ReplicaReport; fromDid: string }[] | undefined
  #checkingHandover = false
  /** Renews the leases of every live contract, one ask per provider per period. */
  readonly #renewer: LeaseRenewer
  /** The last reconciliation with the providers (after a restart). */
  #reconciliation: ReconcileReport | null = null
  /** The consumer side of metering: escrow holds, usage records answered and paid. */
  readonly #usage: UsageDesk
  /** The consumer as witness of its providers' ledgers: cosigns checkpoints holding the receipts it accepted. */
  readonly #witness: CheckpointWitness
  #inbox: ActorRef | undefined
  #detector: ActorRef | undefined
  #fenceTimer: NodeJS.Timeout | undefined
  #idleTimer: NodeJS.Timeout | undefined
  readonly #idle = new IdleWatch()
  #checkpointTimer: NodeJS.Timeout | undefined
  #rebalancer: Rebalancer | undefined
  readonly #rebalance: Partial<RebalancePolicy> | undefined
  #checkpointing = false
  readonly #checkpointEveryMs: number
  #stopped = false
  /** Since this process started: contracts taken for a slot (placements, first or again) and failovers completed (for metrics). */
  readonly activity = { placements: 0, failovers: 0 }

  constructor(ports: OrchestratorPorts, opts: OrchestratorOptions = {}) {
    this.#p = ports
    this.#now = ports.now ?? Date.now
    this.#o = {
      bidWindowMs: opts.bidWindowMs ?? 1500,
      commitTimeoutMs: opts.commitTimeoutMs ?? 10_000,
      heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 500,
      checkIntervalMs: opts.checkIntervalMs ?? 100,
      fenceRepeatMs: opts.fenceRepeatMs ?? 2000,
      replaceRetryMs: opts.replaceRetryMs ?? 30_000,
      stopTimeoutMs: (opts.stopGraceMs ?? 2000) + (opts.stopMarginMs ?? 10_000),
      maxCommitRounds: opts.maxCommitRounds ?? 5,
      phiThreshold: { protected: 3, 'best-effort': 6, ...(opts.phiThreshold ?? {}) },
    }
    this.#checkpointEveryMs = opts.checkpointEveryMs ?? 30_000
    this.#rebalance = opts.rebalance
    if (opts.holdReportsUntilRestore) this.#early = []
    this.#ownSystem = ports.system === undefined
    this.#system = ports.system ?? new ActorSystem({ key: ports.key })
    this.#checkpoints = new Checkpoints(ports.deployments, (msg, fields) => this.#log('warn', msg, fields))
    const leaseMs = opts.leaseMs ?? 30_000
    this.#renewer = new LeaseRenewer({
      askMarket: ports.askMarket,
      named: () => this.#leaseTargets(),
      gone: (t, g) => this.#contractGone(t, g),
      now: this.#now,
      log: (level, msg, fields) => this.#log(level, msg, fields),
    }, { leaseMs, renewMs: opts.leaseRenewMs ?? Math.floor(leaseMs / 3) })
    const usageStore = ports.usage ?? new KvUsageStore(new MemoryKvStore())
    this.#witness = new CheckpointWitness({ key: ports.key, usage: usageStore, witnessed: usageStore.witnessed })
    this.#usage = new UsageDesk({
      key: ports.key, contracts: ports.contracts, store: usageStore, now: this.#now,
      outOfFunds: (terms, err) => this.#outOfFunds(terms, err),
      adopted: (consumer, deploymentId, contractId) => this.#adoptedContract(consumer, deploymentId, contractId),
      log: (level, msg, fields) => this.#log(level, msg, fields), ...(ports.escrow ? { escrow: ports.escrow } : {}),
    }, { ...(opts.escrowWindowMs !== undefined ? { windowMs: opts.escrowWindowMs } : {}), ...(opts.usageTolerance ? { tolerance: opts.usageTolerance } : {}) })
    this.#effects = new OrchestrationEffects({
      usage: this.#usage,
      key: ports.key,
      askMarket: ports.askMarket,
      publish: ports.publish,
      candidates: ports.candidates,
      latencyMs: ports.latencyMs,
      contracts: ports.contracts,
      now: this.#now,
      log: (level, msg, fields) => this.#log(level, msg, fields),
      durable: (id) => this.#checkpoints.durable(id),
      lost: () => new Set(this.#detectorContext()?.lost ?? []),
      alive: (node) => this.heartbeat(node),
      running: () => !this.#stopped,
      proposed: (t) => this.#renewer.proposed(t),
      stepSettled: (id) => this.#renewer.settled(id),
      handoverOf: (id) => this.#handoverOf(id),
      ...(ports.capacityIndex ? { index: ports.capacityIndex } : {}),
      ...(ports.signatures ? { signatures: ports.signatures } : {}),
      ...(ports.trust ? { trust: ports.trust } : {}),
    }, { bidWindowMs: this.#o.bidWindowMs, commitTimeoutMs: this.#o.commitTimeoutMs, stopTimeoutMs: this.#o.stopTimeoutMs, replaceRetryMs: this.#o.replaceRetryMs, roundPauseMs: 1000, leaseMs })
    const ask = ports.askOrchestrator
    if (ports.standby && ask) {
      const standby = ports.standby
      this.#replicator = new StandbyReplicator({
        standby, send: (body) => ask(standby, OrchestratorBehavior.replica, body, 5000), warn: (msg, fields) => this.#log('warn', msg, fields),
      })
    }
    this.#replicas = new StandbyReplicas({ self: ports.key.did, standbyFor: ports.standbyFor ?? [], ...(ports.standbyReplicas ? { store: ports.standbyReplicas } : {}), now: this.#now })
    // Each step can be made to crash the process before or after it (core/failpoints.ts, spec/failpoints.md).
    this.#machine = deploymentMachine(withFailpoints(this.#effects, 'orchestrator', DEPLOYMENT_STEPS))
    this.#logic = checkpointed(this.#machine, (s) => this.#onSnapshot(s))
    this.#definition = defineActor(this.#logic).with({
      name: 'deployment',
      restart: 'temporary',
      mailboxCapacity: 10_000,
      behaviors: {
        [DeploymentBehavior.report]: { event: (b: { report: ReplicaReport }): DeploymentEvent => ({ type: 'REPORT', report: b.report }) },
        [DeploymentBehavior.nodeLost]: { event: (b: NodeLost): DeploymentEvent => ({ type: 'NODE_LOST', ...b }) },
        [DeploymentBehavior.stop]: { event: (b?: { reason?: unknown }): DeploymentEvent => ({ type: 'STOP', ...(typeof b?.reason === 'string' && b.reason !== '' ? { reason: b.reason.slice(0, 500) } : {}) }) },
        [DeploymentBehavior.resume]: { event: (): DeploymentEvent => ({ type: 'RESUME' }) },
        [DeploymentBehavior.takenOver]: { event: (b: { from: string; by: string; epoch: number; at: number; token?: string }): DeploymentEvent => ({ type: 'TAKEN_OVER', ...b }) },
        [DeploymentBehavior.status]: { reply: (s) => viewOf(s as never) },
        [DeploymentBehavior.checkpointed]: { event: (b: { slot: string; contractId: string; checkpoint: SlotCheckpoint }): DeploymentEvent => ({ type: 'CHECKPOINTED', ...b }) },
        [DeploymentBehavior.idle]: { event: (b: { at: number; idleMs: number }): DeploymentEvent => ({ type: 'IDLE', at: b.at, idleMs: b.idleMs }) },
        [DeploymentBehavior.scaleOut]: { event: (b: { to: number; at: number; active: number }): DeploymentEvent => ({ type: 'SCALE_OUT', to: b.to, at: b.at, active: b.active }) },
        [DeploymentBehavior.scaleIn]: { event: (b: { to: number; at: number; active: number }): DeploymentEvent => ({ type: 'SCALE_IN', to: b.to, at: b.at, active: b.active }) },
        [DeploymentBehavior.wake]: { event: (b: { at: number; by?: string }): DeploymentEvent => ({ type: 'WAKE', at: b.at, ...(b.by ? { by: b.by } : {}) }) },
        [DeploymentBehavior.migrate]: { event: (b: { id: string; slot: string; to?: string; why: string; at: number }): DeploymentEvent => ({ type: 'MIGRATE', ...b }) },
      },
    })
  }

  get did(): string {
    return this.#p.key.did
  }

  /** The ActorSystem hosting the orchestration actors. */
  get system(): ActorSystem {
    return this.#system
  }

  /** Spawns the inbox and the failure detector. Call `restore()` after it to take earlier deployments up. */
  start(): void {
    this.#inbox = this.#system.spawn(this.#inboxActor(), { name: ORCHESTRATOR_ACTOR })
    this.#detector = this.#system.spawn(failureDetectorActor({
      now: this.#now,
      self: this.did,
      hosting: () => this.#hosting(),
      convicted: (lost) => this.#system.tell(this.#inbox!, OrchestratorBehavior.nodeLost, lost),
      log: (level, msg, fields) => this.#log(level, msg, fields),
    }, { heartbeatIntervalMs: this.#o.heartbeatIntervalMs, checkIntervalMs: this.#o.checkIntervalMs, phiThreshold: this.#o.phiThreshold }), { name: FAILURE_DETECTOR_ACTOR })
    this.#fenceTimer = setInterval(() => {
      void this.#repeatFences()
      // after a partition (or a false conviction) the standby may hold deployments this node still runs: ask
      void this.#checkHandedOver()
    }, this.#o.fenceRepeatMs)
    this.#fenceTimer.unref()
    // scale to zero: services with scale.min 0 and no traffic for their idle time (spec/ingress.md)
    this.#idleTimer = setInterval(() => this.#scaleIdleToZero(), 1000)
    this.#idleTimer.unref()
    const every = this.#checkpointEveryMs
    if (every > 0) {
      this.#checkpointTimer = setInterval(() => void this.#checkpointReplicas(), every)
      this.#checkpointTimer.unref()
    }
    if (this.#rebalance) {
      this.#rebalancer = new Rebalancer({
        // only the deployments this node orchestrates (not those handed over to its standby)
        deployments: () => this.list().filter((v) => this.#ids.has(v.id)),
        quotes: async (view, exclude) => {
          const w = this.workloadOf(view.id)
          if (!w) return []
          // a round of its own, as a dry run's: nothing is reserved; the move bids again with the chosen node only
          const round = await this.#effects.collect(`rebalance-${shortId()}`, w, 1, exclude)
          return round.bids.filter((b) => !exclude.includes(b.node) && /^\d+$/.test(b.pricePerHour)).map((b) => ({ node: b.node, pricePerHour: BigInt(b.pricePerHour) }))
        },
        migrate: (id, replica, to, why) => this.migrate(id, { replica, to, why }),
        now: () => this.#now(),
        log: (level, msg, fields) => this.#log(level, msg, fields),
      }, this.#rebalance)
      this.#rebalancer.start()
    }
    this.#renewer.start()
    this.#replicator?.start(this.#p.key, this.#now()).catch((err: Error) => this.#log('warn', 'standby capability not issued', { error: err.name, message: err.message }))
  }

  /** Standby figures for `noir node status`: who this node replicates to, and for whom it stands by. */
  get standby(): { standby: string | null; replicated: number; backlog: number; standingFor: string[] } {
    return { standby: this.#replicator?.standby ?? null, replicated: this.#replicator?.sent ?? 0, backlog: this.#replicator?.backlog ?? 0, standingFor: [...this.#replicas.standingFor] }
  }

  /**
   * Spawns every deployment this node orchestrated before a restart from its last snapshot: the step that
   * was in flight runs again, a running deployment's nodes are watched again. Returns how many were found.
   */
  async restore(): Promise<number> {
    try {
      return await this.#restore()
    } finally {
      const early = this.#early ?? []
      this.#early = undefined
      for (const { r, fromDid } of early) {
        try {
          this.#routeReport(r, fromDid)
        } catch (err) {
          this.#log('info', 'early report refused', { error: (err as Error).name })
        }
      }
    }
  }

  async #restore(): Promise<number> {
    const records = await this.#checkpoints.loadAll()
    const kept = await this.#replicas.load()
    if (kept > 0) this.#log('info', 'standby snapshots loaded', { count: kept })
    const takenOver = await this.#askTakenOver()
    let n = 0
    for (const r of records) {
      if (this.#ids.has(r.id)) continue
      if (r.v !== 2) {
        this.#log('warn', 'deployment record of an older format left alone', { deployment: r.id, v: r.v })
        continue
      }
      n++
      r.snapshot = upgradeDeploymentSnapshot(r.snapshot)
      const keyed = (r.snapshot as { context?: DeploymentContext } | undefined)?.context
      if (keyed?.idempotencyKey) this.#byKey.set(keyed.idempotencyKey, { id: r.id, digest: workloadDigest(keyed.workload) })
      if (takenOver.has(r.id)) {
        // Its standby orchestrates it now: this node shows it and never acts for it again.
        const v = viewOf(r.snapshot as never)
        this.#handedOver.set(r.id, { ...v, phase: 'handed-over', reason: `taken over by the standby orchestrator ${this.#replicator!.standby}` })
        this.#log('warn', 'deployment was taken over by the standby orchestrator while this node was down', { deployment: r.id, standby: this.#replicator!.standby })
        continue
      }
      this.#ids.add(r.id)
      this.#last.set(r.id, r.snapshot)
      const ref = this.#spawn(r.id, r.snapshot)
      const s = this.#snapshot(r.id)
      if (!s || finalPhases.includes(phaseOfSnapshot(s))) continue
      for (const rep of s.context.replicas) if (rep.state === 'running' && rep.node) this.heartbeat(rep.node)
      this.#log('info', 'deployment taken up again after a restart', { deployment: r.id })
      this.#system.tell(ref, DeploymentBehavior.resume, {})
    }
    return n
  }

  async stop(): Promise<void> {
    this.#stopped = true
    this.#replicator?.stop()
    this.#renewer.stop()
    if (this.#fenceTimer) clearInterval(this.#fenceTimer)
    if (this.#idleTimer) clearInterval(this.#idleTimer)
    if (this.#checkpointTimer) clearInterval(this.#checkpointTimer)
    this.#rebalancer?.stop()
    if (this.#system.running) {
      for (const ref of [this.#detector, this.#inbox]) {
        if (ref) await this.#system.stopActor(ref).catch((err: Error) => this.#log('info', 'orchestration actor not stopped', { actor: ref.address, error: err.name }))
      }
    }
    await this.#checkpoints.flushAll()
    if (this.#ownSystem) await this.#system.stop()
  }

  /** Lease figures for `noir node status`: the lease, the renewal period, renewals sent and their answers. */
  get leases(): { leaseMs: number; renewMs: number; rounds: number; renewed: number; gone: number; refused: number; failed: number } {
    return { ...this.#renewer.timings, ...this.#renewer.stats }
  }

  /** The last reconciliation with the providers (null before any). */
  get reconciliation(): ReconcileReport | null {
    return this.#reconciliation
  }

  /**
   * After a restart (call it after `restore()`): asks every provider this node has dealt with, and `more`
   * (peers, the capacity index), for the live contracts it acts for; adopts those its deployments name, stops
   * the others (spec/contracts.md "Reconciliation"). Nodes that do not answer are asked again for a while.
   */
  async reconcile(more: readonly string[] = [], o: { attempts?: number; pauseMs?: number } = {}): Promise<ReconcileReport> {
    const nodes = new Set<string>([this.did, ...more])
    for (const s of await this.#p.contracts.list()) if (s.side === 'consumer') nodes.add(s.contract.terms.provider)
    for (const t of this.#leaseTargets()) nodes.add(t.node)
    const report = (this.#reconciliation = emptyReport())
    return reconcile([...nodes], {
      askMarket: this.#p.askMarket,
      judge: (c) => this.#judge(c),
      stop: async (node, contractId, why) => {
        const a = (await this.#p.askMarket(node, MarketBehavior.stop, { contractId }, this.#o.stopTimeoutMs)) as { stopped?: unknown } | null
        if (a?.stopped !== true) throw new OrchestrationError(`node answered ${JSON.stringify(a)} instead of { stopped: true }`)
        const mine = await this.#p.contracts.get(contractId, 'consumer')
        if (mine && mine.status !== 'ended') await this.#p.contracts.put({ ...mine, status: 'ended', updatedAt: this.#now(), note: why })
      },
      log: (level, msg, fields) => this.#log(level, msg, fields),
    }, report, o)
  }

  // ---- inputs: all through mailboxes --------------------------------------------------------------------------

  /** Bid signatures verified so far: one per bid acted on (proposed to), not one per answer. */
  get bidSignaturesChecked(): number {
    return this.#effects.bidSignaturesChecked
  }

  get ownStalls(): FailureDetectorContext['stalls'] {
    return this.#detectorContext()?.stalls ?? { count: 0, totalMs: 0, longestMs: 0, forgiven: 0 }
  }

  /** A verified heartbeat from `did`: told to the failure detector. */
  heartbeat(did: string): void {
    if (this.#detector) this.#system.tell(this.#detector, FailureBehavior.beat, { node: did })
  }

  /** Whether `did` hosts a replica, a standby or an orchestrator this node depends on (its departure matters). */
  watches(did: string): boolean {
    return did !== this.did && this.#hosting().has(did)
  }

  /** The mesh saw `did`'s process gone (every listen address refused): convicted at once, not by silence. */
  gone(did: string, evidence: string): void {
    if (this.#detector) this.#system.tell(this.#detector, FailureBehavior.gone, { node: did, evidence } satisfies NodeGone)
  }

  /**
   * A provider's report about one instance, from `fromDid` (over the mesh it arrives at the inbox's
   * `/noir/orchestrator/report`; an in-process market hands it here): checked, then told to its deployment.
   */
  report(r: ReplicaReport, fromDid: string): void {
    this.#routeReport(r, fromDid)
  }

  // ---- commands ----------------------------------------------------------------------------------------------

  /**
   * Creates a deployment; resolves once it is recorded on disk (before any bid request leaves), with its
   * view. With an idempotency key, a create retried with the same key (after a dropped connection, or a
   * crash of this node once the first was acknowledged) returns the same deployment, never a second one;
   * the same key with another workload is IdempotencyConflictError.
   */
  async deploy(workload: Workload, o: { idempotencyKey?: string } = {}): Promise<DeploymentView> {
    if (!this.#inbox) throw new OrchestrationError('the orchestrator is not started')
    const key = o.idempotencyKey
    if (key !== undefined) {
      if (typeof key !== 'string' || !/^[A-Za-z0-9._:-]{1,128}$/.test(key)) throw new IdempotencyConflictError('an idempotency key is 1-128 characters of A-Z a-z 0-9 . _ : -')
      const digest = workloadDigest(workload)
      const known = this.#byKey.get(key)
      if (known) {
        if (known.digest !== digest) throw new IdempotencyConflictError(`idempotency key ${key} was used for deployment ${known.id} of another workload`)
        await this.#checkpoints.durable(known.id)
        return this.status(known.id)
      }
    }
    this.#checkFunds(workload)
    const id = `${workload.name}-${shortId()}`
    if (key !== undefined) this.#byKey.set(key, { id, digest: workloadDigest(workload) })
    this.#ids.add(id)
    this.#spawn(id, undefined, { id, workload, at: this.#now(), maxCommitRounds: this.#o.maxCommitRounds, ...(key !== undefined ? { idempotencyKey: key } : {}) })
    await this.#checkpoints.durable(id)
    // durable here and, with a standby orchestrator, there too (bounded: a standby that is down does not stop
    // creates; its snapshot is retried): an acknowledged create survives this node's death for good
    if (this.#replicator) await this.#replicator.replicated(id, REPLICATE_BEFORE_ACK_MS)
    failpoint('orchestrator.create.recorded') // recorded, not yet acknowledged to the client
    return this.status(id)
  }

  /**
   * Before placement: the wallet must be able to hold one prepaid window for every replica, at the
   * workload's price ceiling when it has one, else at the lowest price a node quotes by default
   * (spec/ledger.md "Escrow"). The binding check is the hold at commit; this one refuses early.
   */
  #checkFunds(w: Workload): void {
    const available = this.#usage.available()
    if (available === undefined) return
    const perHour = (w.constraints ? maxPriceOf(w.constraints) : undefined) ?? BigInt(defaultPricePolicy.minimumPerHour)
    const needed = this.#usage.estimate(perHour, instanceCount(w))
    if (needed > available) {
      throw new errors.InsufficientFundsError(`the wallet holds ${available} µNLC available; one prepaid window of ${instanceCount(w)} replica(s) needs ${needed} µNLC`, { needed: String(needed), available: String(available) })
    }
  }

  /**
   * The trust service's check runs are paid like any replica (spec/trust.md "Paid check runs"): the
   * countersigned contract kept as this node's, its first prepaid window held before the start (the funds
   * missing: InsufficientFundsError, nothing starts), its instance observed as it runs and ends, so the
   * provider's usage records are judged, answered and paid as a paid job's are.
   */
  async checkRunProposed(signed: Contract): Promise<void> {
    const terms = verifyContract(signed)
    await this.#p.contracts.put({ contract: signed, side: 'consumer', status: 'reserved', updatedAt: this.#now() })
    await this.#usage.hold(terms, 0)
  }

  checkRunObserved(o: { contractId: string; deploymentId: string; running?: number; ended?: number }): void {
    this.#usage.observe(o)
  }

  async checkRunEnded(contractId: string, why: string): Promise<void> {
    const s = await this.#p.contracts.get(contractId, 'consumer')
    if (s && s.status !== 'ended') await this.#p.contracts.put({ ...s, status: 'ended', updatedAt: this.#now(), note: why })
  }

  /** The usage records of a deployment (this node's side as its consumer), in contract and seq order. */
  async usage(id: string): Promise<StoredUsage[]> {
    this.status(id)
    return (await this.#usage.ofDeployment(id)).filter((u) => u.side === 'consumer')
  }

  list(): DeploymentView[] {
    return [...[...this.#ids].map((id) => this.#view(id)).filter((v): v is DeploymentView => v !== undefined), ...this.#handedOver.values()]
  }

  status(id: string): DeploymentView {
    const v = this.#view(id) ?? this.#handedOver.get(id)
    if (!v) throw new DeploymentNotFoundError(`no deployment ${id}`)
    return v
  }

  /**
   * Stops every replica and the standby, waiting for each node to confirm. The view's `stopFailures` names
   * the replicas whose node did not (their contracts stay open); stopping again asks those nodes again.
   */
  async stopDeployment(id: string): Promise<DeploymentView> {
    const before = this.status(id)
    const retry = finalPhases.includes(before.phase) && before.stopFailures.length > 0
    if (finalPhases.includes(before.phase) && !retry) return before
    // settled: a final phase entered after this stop's `stopping` (the history grows by both)
    const seen = before.history.length
    const settled = this.#until(id, (s) => finalPhases.includes(phaseOfSnapshot(s)) && !s.context.stopRequested && s.context.history.length > seen + (retry ? 1 : 0))
    this.#system.tell(this.#ref(id), DeploymentBehavior.stop, {})
    await settled
    const after = this.status(id)
    // A provider refused the release because the standby orchestrator took the deployment over (this node
    // was cut off, not dead): the stop is not done, and not this node's to do. Not acknowledged: the client
    // hears who holds it now, and this node stops acting for it.
    const handed = after.stopFailures.find((f) => f.error.startsWith('HandedOverError'))
    if (handed) {
      await this.#handOver(id, `taken over by the standby orchestrator (${handed.node} refused the stop: ${handed.error})`)
      throw new errors.HandedOverError(`deployment ${id} is orchestrated by the standby orchestrator ${this.#replicator?.standby ?? '(unknown)'} now: stop it there`)
    }
    return after
  }

  /**
   * Moves replica `replica` (default 0) of deployment `id` to another node (`to`: that one), and resolves
   * once it runs there (spec/migration.md). Typed refusals: DeploymentNotFoundError, ReplicaNotRunningError,
   * MigrationInProgressError, NoMigrationTargetError (nothing moved), MigrationFailedError (the move started
   * and did not finish: `data.slot` says where the slot stands).
   */
  async migrate(id: string, o: { replica?: number; to?: string; why?: string } = {}): Promise<MigrationRecord> {
    const v = this.status(id)
    const index = o.replica ?? 0
    if (!Number.isSafeInteger(index) || index < 0) throw new errors.ReplicaNotRunningError(`replica must be a whole number from 0 (got ${String(o.replica)})`)
    if (o.to !== undefined && (typeof o.to !== 'string' || !o.to.startsWith('did:key:'))) throw new InvalidTermsError('to: a node DID (did:key:...)')
    const rep = v.replicas.find((r) => r.index === index)
    if (v.phase !== 'running' && v.phase !== 'degraded') throw new errors.ReplicaNotRunningError(`deployment ${id} is ${v.phase}: only a running deployment's replicas move`)
    if (!rep || rep.state !== 'running') throw new errors.ReplicaNotRunningError(`replica ${index} of ${id} is ${rep ? rep.state : 'not there'}${rep ? '' : ` (it has ${v.replicas.length})`}`)
    if (o.to !== undefined && o.to === rep.node) throw new errors.NoMigrationTargetError(`replica ${index} already runs on ${o.to}`)
    const s = this.#snapshot(id)
    const ctx = s?.context
    if (ctx && (ctx.replicas.some((r) => r.moving) || [ctx.current, ...ctx.queue].some((j) => j?.kind === 'migrate' || j?.kind === 'move'))) {
      throw new errors.MigrationInProgressError(`a migration of ${id} is already in progress`)
    }
    const mid = `m-${shortId()}`
    const done = new Promise<MigrationRecord>((resolve) => {
      void this.#until(id, (x) => (x.context.migrations ?? []).some((m) => m.id === mid && m.doneAt !== null) || finalPhases.includes(phaseOfSnapshot(x)))
        .then(() => resolve((this.#snapshot(id)?.context.migrations ?? []).find((m) => m.id === mid) ?? {
          id: mid, slot: rep.slot, from: rep.node ?? '', to: null, why: '', requestedAt: 0, doneAt: this.#now(), ok: false, checkpoint: null, gapMs: null, error: 'the deployment ended',
        }))
    })
    this.#system.tell(this.#ref(id), DeploymentBehavior.migrate, { id: mid, slot: rep.slot, ...(o.to ? { to: o.to } : {}), why: o.why ?? 'migrated on request', at: this.#now() })
    const m = await done
    if (m.ok) return m
    const data = { deploymentId: id, slot: rep.slot, from: m.from, error: m.error }
    if (m.error?.startsWith('no other node fits')) throw new errors.NoMigrationTargetError(`replica ${index} of ${id}: ${m.error}`, data)
    if (m.error === 'a migration is already in progress') throw new errors.MigrationInProgressError(`a migration of ${id} is already in progress`, data)
    if (m.error?.endsWith('is not running')) throw new errors.ReplicaNotRunningError(`replica ${index} of ${id} is not running`, data)
    throw new errors.MigrationFailedError(`replica ${index} of ${id} did not move: ${m.error ?? 'unknown'}`, data)
  }

  /**
   * The wallet cannot hold the next prepaid window of a running contract (spec/ledger.md "Escrow"): the
   * deployment is stopped, saying why, rather than run on credit. Its last records are paid from what is held.
   */
  #outOfFunds(terms: ContractTerms, err: Error): void {
    const id = terms.deploymentId
    if (!this.#ids.has(id)) return
    const s = this.#snapshot(id)
    if (!s || finalPhases.includes(phaseOfSnapshot(s)) || s.context.stopRequested) return
    const needed = (err as { data?: { needed?: unknown } }).data?.needed
    const reason = `out of funds: the wallet cannot hold the next usage window of contract ${terms.id.slice(0, 8)}${typeof needed === 'string' ? ` (${needed} µNLC)` : ''} (InsufficientFundsError)`
    this.#log('warn', 'deployment stopped: out of funds', { deployment: id, contract: terms.id, error: err.message })
    this.#system.tell(this.#ref(id), DeploymentBehavior.stop, { reason })
  }

  /** A replica contract of a deployment this node took over from `consumer` (its usage is answered and paid here). */
  #adoptedContract(consumer: string, deploymentId: string, contractId: string): ContractTerms | undefined {
    if (!this.#ids.has(deploymentId)) return undefined
    const s = this.#snapshot(deploymentId)
    if (!s || s.context.takenOverFrom !== consumer) return undefined
    const terms = s.context.replicas.find((r) => r.contract?.terms.id === contractId)?.contract?.terms
    return terms && terms.consumer === consumer && terms.role === 'replica' ? terms : undefined
  }

  /** This node no longer orchestrates `id` (its standby took it over): its actor stops, its view says so. */
  async #handOver(id: string, reason: string): Promise<void> {
    const v = this.status(id)
    this.#ids.delete(id)
    this.#handedOver.set(id, { ...v, phase: 'handed-over', reason })
    const ref = this.#system.lookup(`${ORCHESTRATOR_ACTOR}/${id}`)
    if (ref) await this.#system.stopActor(ref).catch((err: Error) => this.#log('info', 'deployment actor not stopped', { deployment: id, error: err.name }))
    this.#log('warn', 'deployment handed over to the standby orchestrator', { deployment: id, reason })
  }

  /** The workload of a deployment this node orchestrates (undefined for another). */
  /**
   * An ingress's report of a deployment's traffic through it (spec/ingress.md "Scale to zero"): open
   * connections and the time of the last one. Counted toward its idle time; ignored for other deployments.
   */
  traffic(id: string, ingress: string, r: TrafficReport): void {
    if (!this.#ids.has(id)) return
    this.#idle.report(id, ingress, r, this.#now())
  }

  /** Traffic for a service at zero: its replicas are placed again (nothing happens in any other phase). The view. */
  wake(id: string, by?: string): DeploymentView {
    const v = this.status(id)
    if (v.phase === 'idle') this.#system.tell(this.#ref(id), DeploymentBehavior.wake, { at: this.#now(), ...(by ? { by } : {}) })
    return v
  }

  #scaleIdleToZero(): void {
    if (this.#stopped) return
    const mine = this.list().filter((v) => this.#ids.has(v.id))
    for (const d of this.#idle.due(mine, (id) => this.workloadOf(id), this.#now())) {
      this.#log('info', 'scaling to zero', { deploymentId: d.id, idleMs: d.idleMs })
      this.#system.tell(this.#ref(d.id), DeploymentBehavior.idle, { at: this.#now(), idleMs: d.idleMs })
    }
    for (const d of this.#idle.scaleOuts(mine, (id) => this.workloadOf(id), this.#now())) {
      this.#log('info', 'scaling out', { deploymentId: d.id, to: d.to, active: d.active })
      this.#system.tell(this.#ref(d.id), DeploymentBehavior.scaleOut, { to: d.to, at: this.#now(), active: d.active })
    }
    for (const d of this.#idle.scaleIns(mine, (id) => this.workloadOf(id), this.#now())) {
      this.#log('info', 'scaling in', { deploymentId: d.id, to: d.to, active: d.active })
      this.#system.tell(this.#ref(d.id), DeploymentBehavior.scaleIn, { to: d.to, at: this.#now(), active: d.active })
    }
  }

  workloadOf(id: string): Workload | undefined {
    return this.#snapshot(id)?.context.workload
  }

  /** Log lines of one replica, read over the mesh from the node that runs it. */
  async logs(id: string, o: { replica?: number; since?: number; limit?: number } = {}): Promise<{ node: string | null; lines: LogEntry[]; ended: boolean }> {
    const v = this.status(id)
    const rep = v.replicas[o.replica ?? 0]
    if (!rep) throw new OrchestrationError(`deployment ${id} has no replica ${o.replica}`)
    const done = finalPhases.includes(v.phase)
    if (!rep.node || !rep.contractId) return { node: null, lines: [], ended: done }
    const r = (await this.#p.askMarket(rep.node, MarketBehavior.logs, { contractId: rep.contractId, since: o.since ?? 0, limit: o.limit ?? 500 }, 5000)) as { lines: LogEntry[]; ended: boolean }
    return { node: rep.node, lines: r.lines, ended: r.ended && (done || rep.state !== 'running') }
  }

  /** Which nodes would bid for this workload, why the others would not, and what would be chosen. Nothing is reserved. */
  async dryRun(workload: Workload): Promise<DryRunResult> {
    // every node is asked: a dry run explains why each would or would not bid
    const round = await this.#effects.collect(`dry-${shortId()}`, workload, instanceCount(workload), [], { broadcast: true, verifyAll: true })
    const result = place({ workload, count: instanceCount(workload), offers: round.offers, standby: workload.lane === 'protected' })
    return {
      round,
      placement: result.ok
        ? { ok: true, nodes: result.picks.map((p) => p.offer.nodeDid), standby: result.standby?.offer.nodeDid ?? null }
        : { ok: false, infeasible: withDeclines(result.infeasible, round) },
    }
  }

  /**
   * A long poll (`GET /v1/deployments/:id?until=PHASES&events=N`): the deployment's view as soon as its phase
   * is one of `phases` or it has had more than `o.events` events in all (when given), or as it stands after
   * `waitMs` or once `o.signal` aborts (the caller went away). Told by the deployment's own snapshots, not
   * found by polling.
   */
  async awaitPhase(id: string, phases: readonly DeploymentView['phase'][], waitMs: number, o: { events?: number; signal?: AbortSignal } = {}): Promise<DeploymentView> {
    const reached = (s: { value: unknown; context: DeploymentContext }): boolean =>
      phases.includes(phaseOfSnapshot(s)) || (o.events !== undefined && eventCount(s.context) > o.events)
    const v = this.status(id)
    const now = this.#snapshot(id)
    if (!now || reached(now) || !this.#ids.has(id) || waitMs <= 0 || o.signal?.aborted) return v
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer)
        o.signal?.removeEventListener('abort', done)
        this.#unwait(id, check)
        resolve()
      }
      const check = (): void => {
        const s = this.#snapshot(id)
        if (!s || !this.#ids.has(id) || reached(s)) done()
      }
      const timer = setTimeout(done, waitMs)
      timer.unref()
      o.signal?.addEventListener('abort', done, { once: true })
      this.#wait(id, check)
      check()
    })
    return this.status(id)
  }

  /** Deployments someone waits on now (long polls, `until`); each one's waiters are dropped with the last. */
  get deploymentsWaitedOn(): number {
    return this.#waiters.size
  }

  /** Resolves when the deployment's snapshot satisfies `pred` (tests and commands that wait for a phase). */
  until(id: string, pred: (v: DeploymentView) => boolean): Promise<DeploymentView> {
    return this.#until(id, (s) => pred(viewOf(s))).then(() => this.status(id))
  }

  // ---- internals ---------------------------------------------------------------------------------------------

  #inboxActor(): ActorDefinition {
    type InboxEvent =
      | { type: 'bid'; body: unknown; from: string; msg: MessageContext }
      | { type: 'report'; body: ReplicaReport; from: string; msg: MessageContext }
      | { type: 'lost'; body: NodeLost }
      | { type: 'replica'; body: unknown; from: string; msg: MessageContext }
      | { type: 'takenOver'; from: string; msg: MessageContext }
      | { type: 'usage'; body: unknown; from: string; msg: MessageContext }
      | { type: 'cosign'; body: unknown; from: string; msg: MessageContext }
    const machine = setup({
      types: { events: {} as InboxEvent },
      actions: {
        bid: ({ event }) => {
          if (event.type !== 'bid') return
          try {
            this.#effects.rounds.arrived(event.body, event.from, this.#now())
            event.msg.respond({ ok: true })
          } catch (err) {
            this.#log('warn', 'bid refused', { from: event.from, error: asError(err).name, message: asError(err).message })
            event.msg.fail(asError(err))
          }
        },
        report: ({ event }) => {
          if (event.type !== 'report') return
          try {
            this.#routeReport(event.body, event.from)
            event.msg.respond({ ok: true })
          } catch (err) {
            event.msg.fail(asError(err))
          }
        },
        replica: ({ event }) => {
          if (event.type !== 'replica') return
          const first = this.#replicas.live(event.from).length === 0
          this.#replicas.accept(event.from, event.body).then(() => {
            // the orchestrating node is watched from its first snapshot on
            if (first) this.heartbeat(event.from)
            event.msg.respond({ ok: true })
          }, (err: unknown) => event.msg.fail(asError(err)))
        },
        usage: ({ event }) => {
          if (event.type !== 'usage') return
          this.#usage.receive(event.body, event.from).then((answered) => event.msg.respond(answered), (err: unknown) => {
            this.#log('warn', 'usage record refused', { from: event.from, error: asError(err).name, message: asError(err).message })
            event.msg.fail(asError(err))
          })
        },
        cosign: ({ event }) => {
          if (event.type !== 'cosign') return
          this.#witness.cosign(event.body, event.from).then((cos) => event.msg.respond(cos), (err: unknown) => {
            this.#log('warn', 'cosignature refused', { from: event.from, error: asError(err).name, message: asError(err).message })
            event.msg.fail(asError(err))
          })
        },
        takenOver: ({ event }) => {
          if (event.type !== 'takenOver') return
          event.msg.respond({ ids: [...this.#ids].filter((id) => this.#snapshot(id)?.context.takenOverFrom === event.from) })
        },
        lost: ({ event }) => {
          if (event.type !== 'lost') return
          this.#p.capacityIndex?.forget(event.body.node)
          if (this.#replicas.standingFor.has(event.body.node)) void this.#takeOver(event.body)
          for (const id of this.#ids) {
            const s = this.#snapshot(id)
            if (!s || finalPhases.includes(phaseOfSnapshot(s))) continue
            const holds = s.context.replicas.some((r) => r.node === event.body.node) || s.context.standby?.node === event.body.node
            if (holds) this.#system.tell(this.#ref(id), DeploymentBehavior.nodeLost, event.body)
          }
        },
      },
    }).createMachine({
      id: 'orchestrator',
      on: { bid: { actions: 'bid' }, report: { actions: 'report' }, lost: { actions: 'lost' }, replica: { actions: 'replica' }, takenOver: { actions: 'takenOver' }, usage: { actions: 'usage' }, cosign: { actions: 'cosign' } },
    })
    return defineActor(machine).with({
      name: 'noir-orchestrator',
      mailboxCapacity: 10_000,
      supervision: { strategy: 'one-for-one', maxRestarts: 1000, withinMs: 1000 },
      behaviors: {
        // The market is open: what binds is the signature on each bid; a report must come from the node it names.
        [OrchestratorBehavior.bid]: { public: true, deferred: true, event: (body: unknown, msg: MessageContext) => ({ type: 'bid' as const, body, from: senderDid(msg), msg }) },
        [OrchestratorBehavior.report]: { public: true, deferred: true, event: (body: ReplicaReport, msg: MessageContext) => ({ type: 'report' as const, body, from: senderDid(msg), msg }) },
        // From a node this one stands by for (checked in StandbyReplicas: deny by default).
        [OrchestratorBehavior.replica]: { public: true, deferred: true, event: (body: unknown, msg: MessageContext) => ({ type: 'replica' as const, body, from: senderDid(msg), msg }) },
        // Asked by a restarted orchestrating node: which of its deployments this node took over (its own only).
        [OrchestratorBehavior.takenOver]: { public: true, deferred: true, event: (_body: unknown, msg: MessageContext) => ({ type: 'takenOver' as const, from: senderDid(msg), msg }) },
        // A provider's usage record: checked in UsageDesk (signed by the sender, for a contract of this node with it).
        [OrchestratorBehavior.usage]: { public: true, deferred: true, event: (body: unknown, msg: MessageContext) => ({ type: 'usage' as const, body, from: senderDid(msg), msg }) },
        // A provider asking for a cosignature of its ledger: checked in CheckpointWitness (its own signed log, receipts this node accepted, consistent with the last cosigned).
        [OrchestratorBehavior.cosign]: { public: true, deferred: true, event: (body: unknown, msg: MessageContext) => ({ type: 'cosign' as const, body, from: senderDid(msg), msg }) },
        // Local only: the failure detector's convictions.
        [OrchestratorBehavior.nodeLost]: { event: (body: NodeLost) => ({ type: 'lost' as const, body }) },
      },
    })
  }

  /**
   * The node this one stands by for was convicted: every live deployment of it is taken over. The providers
   * are told first (a handover with the capability and the next orchestrator epoch: from then on only this
   * node acts for the deployment), then the deployment actor is spawned from the replicated snapshot, learns
   * it was taken over, and that its orchestrating node is lost (replicas there are placed again).
   */
  async #takeOver(lost: NodeLost): Promise<void> {
    const from = lost.node
    const list = this.#replicas.live(from)
    if (list.length === 0) return
    const t0 = this.#now()
    this.#log('warn', 'taking over the deployments of a lost orchestrator', { from, deployments: list.length })
    for (const { record, token } of list) {
      const id = record.id
      if (this.#ids.has(id)) continue
      // a snapshot kept from before integer prices is read with its prices in µNLC (spec/contracts.md "Terms v2")
      const snapshot = upgradeDeploymentSnapshot(record.snapshot)
      const c = (snapshot as { context: DeploymentContext }).context
      const epoch = (c.orchestratorEpoch ?? 1) + 1
      const nodes = new Set<string>()
      for (const r of c.replicas) if (r.node && r.node !== from && r.contract?.terms.consumer === from) nodes.add(r.node)
      if (c.standby && c.standby.node !== from) nodes.add(c.standby.node)
      await Promise.all([...nodes].map((n) => this.#p.askMarket(n, MarketBehavior.handover, { consumer: from, deploymentId: id, epoch, token }, 3000)
        .catch((err: Error) => this.#log('warn', 'handover not confirmed by a provider', { deployment: id, node: n, error: err.name, message: err.message }))))
      this.#ids.add(id)
      this.#last.set(id, snapshot)
      const ref = this.#spawn(id, snapshot)
      this.#system.tell(ref, DeploymentBehavior.takenOver, { from, by: this.did, epoch, at: this.#now(), token })
      for (const r of c.replicas) if (r.state === 'running' && r.node && r.node !== from) this.heartbeat(r.node)
      // what the orchestrating node saw of its replicas is what this node judges their usage records against
      for (const r of c.replicas) if (r.contract && r.runningSince !== null) this.#usage.observe({ contractId: r.contract.terms.id, deploymentId: id, running: r.runningSince })
      this.#system.tell(ref, DeploymentBehavior.nodeLost, lost)
      this.#system.tell(ref, DeploymentBehavior.resume, {})
    }
    this.#log('warn', 'deployments taken over', { from, deployments: list.length, ms: this.#now() - t0 })
  }

  /** Asks this node's standby which of this node's deployments it took over (none when it cannot be asked). */
  /**
   * Asks the standby which of this node's deployments it took over, and hands those over here at once: after
   * a partition that made the standby take over while this node lived, only one orchestrator acts (the copies
   * this node placed meanwhile end with their leases, which it no longer renews). Unreachable: asked again
   * at the next tick (chaos seeds 7 and 9, spec/chaos.md).
   */
  async #checkHandedOver(): Promise<void> {
    const ask = this.#p.askOrchestrator
    const standby = this.#replicator?.standby
    if (this.#checkingHandover || this.#stopped || !ask || !standby || this.#ids.size === 0) return
    this.#checkingHandover = true
    try {
      const r = (await ask(standby, OrchestratorBehavior.takenOver, {}, 2000)) as { ids?: unknown }
      const taken = Array.isArray(r?.ids) ? r.ids.filter((x): x is string => typeof x === 'string') : []
      for (const id of taken) if (this.#ids.has(id)) await this.#handOver(id, `taken over by the standby orchestrator ${standby} while this node was cut off`)
    } catch {
      // not reachable now (a partition): asked again at the next tick
    } finally {
      this.#checkingHandover = false
    }
  }

  async #askTakenOver(): Promise<Set<string>> {
    const ask = this.#p.askOrchestrator
    const standby = this.#replicator?.standby
    if (!ask || !standby) return new Set()
    try {
      const r = (await ask(standby, OrchestratorBehavior.takenOver, {}, 5000)) as { ids?: unknown }
      return new Set(Array.isArray(r?.ids) ? r.ids.filter((x): x is string => typeof x === 'string') : [])
    } catch (err) {
      // Not reachable: this node goes on; if the standby did take over, the providers refuse this node's steps (HandedOverError).
      this.#log('warn', 'standby orchestrator not reachable at restart: deployments taken up without asking it', { standby, error: (err as Error).name })
      return new Set()
    }
  }

  /** A report goes to its deployment's actor if it comes from the node holding the slot's current contract. */
  #routeReport(r: ReplicaReport, fromDid: string): void {
    if (!r || typeof r !== 'object' || r.node !== fromDid) throw new InvalidTermsError('report: not from the node it names')
    if (this.#p.observeReport?.(r) === true) return
    if (this.#early !== undefined) {
      // before restore(): this node's own provider reports what it found at its start (an instance that ended
      // while the daemon was down) before the deployments are spawned again; kept, and routed after restore
      if (this.#early.length < 10_000) this.#early.push({ r, fromDid })
      return
    }
    if (typeof r.deploymentId !== 'string' || !this.#ids.has(r.deploymentId)) return
    const s = this.#snapshot(r.deploymentId)
    const rep = s?.context.replicas.find((x) => x.slot === r.slot)
    if (!s || !rep) return
    if (r.epoch < rep.epoch || r.contractId !== rep.contractId || rep.node !== fromDid) {
      // A copy from an older placement is still alive somewhere: fence it.
      if (r.state === 'running') void this.#effects.fence({ slot: rep.slot, epoch: rep.epoch, deploymentId: r.deploymentId, ...(rep.contractId ? { contractId: rep.contractId } : {}) }, [r.node])
      return
    }
    if (r.state === 'running') this.#usage.observe({ contractId: r.contractId, deploymentId: r.deploymentId, running: this.#now() })
    else if (r.state === 'exited' || r.state === 'failed' || r.state === 'stopped') this.#usage.observe({ contractId: r.contractId, deploymentId: r.deploymentId, ended: this.#now() })
    this.#system.tell(this.#ref(r.deploymentId), DeploymentBehavior.report, { report: r })
  }

  #spawn(id: string, snapshot: unknown, input?: unknown): ActorRef {
    const ref = this.#system.spawn(this.#definition, { name: id, parent: this.#inbox!, input, ...(snapshot !== undefined ? { snapshot } : {}) })
    this.#system.watch(ref, (reason) => {
      if (reason.kind !== 'crashed' || this.#stopped) return
      // A bug in a step must not lose the deployment: it starts again from its last checkpoint.
      this.#log('warn', 'deployment actor crashed: started again from its last snapshot', { deployment: id, error: reason.error.name, message: reason.error.message })
      const last = this.#last.get(id)
      if (last !== undefined) this.#spawn(id, last)
    })
    return ref
  }

  #onSnapshot(s: unknown): void {
    const snap = s as { status: string; context: DeploymentContext; value: unknown }
    const id = snap.context?.id
    // A stopped actor (this node shutting down) or a crashed one is not where the deployment stands.
    if (typeof id !== 'string' || snap.status === 'stopped' || snap.status === 'error') return
    // plain JSON (XState leaves `undefined` fields such as `error`): what is written is what is read and sent
    const persisted = JSON.parse(JSON.stringify(this.#machine.getPersistedSnapshot(snap as never))) as unknown
    this.#count(this.#last.get(id), snap.context)
    this.#last.set(id, persisted)
    const record = { v: 2 as const, id, savedAt: this.#now(), snapshot: persisted }
    this.#checkpoints.put(record)
    this.#replicator?.put(record)
    const waiters = this.#waiters.get(id)
    if (waiters) queueMicrotask(() => { for (const w of [...waiters]) w() })
  }

  /** Contracts taken and failovers completed since the deployment's previous snapshot, added to `activity`. */
  #count(prev: unknown, next: DeploymentContext): void {
    const before = (prev as { context?: DeploymentContext } | undefined)?.context
    const taken = (c: DeploymentContext | undefined): number => c?.replicas?.reduce((n, r) => n + r.attempts, 0) ?? 0
    const failedOver = (c: DeploymentContext | undefined): number => c?.failovers?.filter((f) => f.runningAt !== null).length ?? 0
    this.activity.placements += Math.max(0, taken(next) - taken(before))
    this.activity.failovers += Math.max(0, failedOver(next) - failedOver(before))
  }

  #until(id: string, pred: (s: { value: unknown; context: DeploymentContext }) => boolean): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        const s = this.#snapshot(id)
        if (s && pred(s)) {
          this.#unwait(id, check)
          resolve()
        }
      }
      this.#wait(id, check)
      check()
    })
  }

  /** `check` runs after each of the deployment's snapshots until #unwait. */
  #wait(id: string, check: () => void): void {
    let set = this.#waiters.get(id)
    if (!set) this.#waiters.set(id, (set = new Set()))
    set.add(check)
  }

  /** Removes a waiter, and the deployment's set with its last one (ids come and go with deployments). */
  #unwait(id: string, check: () => void): void {
    const set = this.#waiters.get(id)
    if (!set) return
    set.delete(check)
    if (set.size === 0) this.#waiters.delete(id)
  }

  #ref(id: string): ActorRef {
    const ref = this.#system.lookup(`${ORCHESTRATOR_ACTOR}/${id}`)
    if (!ref) throw new DeploymentNotFoundError(`no deployment ${id}`)
    return ref
  }

  #snapshot(id: string): { value: unknown; context: DeploymentContext } | undefined {
    const ref = this.#system.lookup(`${ORCHESTRATOR_ACTOR}/${id}`)
    return ref ? (this.#system.snapshotOf(ref) as { value: unknown; context: DeploymentContext } | undefined) : undefined
  }

  #view(id: string): DeploymentView | undefined {
    const s = this.#snapshot(id)
    return s ? viewOf(s) : undefined
  }

  #detectorContext(): FailureDetectorContext | undefined {
    if (!this.#detector) return undefined
    return (this.#system.snapshotOf(this.#detector) as { context: FailureDetectorContext } | undefined)?.context
  }

  /** The nodes hosting live replicas, with the strictest lane among them (what the detector judges). */
  #hosting(): Map<string, Lane> {
    const hosting = new Map<string, Lane>()
    for (const id of this.#ids) {
      const s = this.#snapshot(id)
      if (!s || finalPhases.includes(phaseOfSnapshot(s))) continue
      for (const r of s.context.replicas) {
        if (!r.node || (r.state !== 'running' && r.state !== 'starting')) continue
        if (hosting.get(r.node) !== 'protected') hosting.set(r.node, s.context.workload.lane)
      }
      if (s.context.standby && !hosting.has(s.context.standby.node)) hosting.set(s.context.standby.node, s.context.workload.lane)
    }
    // the orchestrating nodes this node stands by for, while they have live deployments: judged as protected
    for (const node of this.#replicas.standingFor) if (this.#replicas.live(node).length > 0) hosting.set(node, 'protected')
    return hosting
  }

  /** The contracts the live deployments name: their replicas being placed, started or running, and their standby. */
  /**
   * Stateful failover (spec/migration.md): each running replica of a live protected deployment with a
   * `stateDir` is asked for a live checkpoint (its state directory archived while it runs), the archive is
   * kept on this node too, and the deployment records it for the slot (its snapshot, which the standby
   * orchestrator receives, names it): a replacement starts from it. One round at a time; a failure is logged.
   */
  async #checkpointReplicas(): Promise<void> {
    if (this.#checkpointing) return
    this.#checkpointing = true
    try {
      for (const id of this.#ids) {
        const s = this.#snapshot(id)
        if (!s || finalPhases.includes(phaseOfSnapshot(s))) continue
        const w = s.context.workload
        if (w.lane !== 'protected' || w.stateDir === undefined) continue
        for (const r of s.context.replicas) {
          if (r.state !== 'running' || !r.node || !r.contractId || r.moving) continue
          try {
            const k = (await this.#p.askMarket(r.node, MarketBehavior.checkpoint, { contractId: r.contractId, live: true }, 60_000)) as { digest?: unknown; bytes?: unknown } | null
            if (typeof k?.digest !== 'string' || typeof k.bytes !== 'number') throw new InvalidTermsError(`checkpoint answered ${JSON.stringify(k).slice(0, 200)}`)
            await this.#p.keepArtifact?.(k.digest, [r.node])
            const ref = this.#system.lookup(`${ORCHESTRATOR_ACTOR}/${id}`)
            if (ref) this.#system.tell(ref, DeploymentBehavior.checkpointed, { slot: r.slot, contractId: r.contractId, checkpoint: { digest: k.digest, bytes: k.bytes, from: this.did, at: this.#now() } })
          } catch (err) {
            this.#log('warn', 'replica not checkpointed', { deployment: id, slot: r.slot, node: r.node, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) })
          }
        }
      }
    } finally {
      this.#checkpointing = false
    }
  }

  #leaseTargets(): LeaseTarget[] {
    const out: LeaseTarget[] = []
    for (const id of this.#ids) {
      const s = this.#snapshot(id)
      if (!s || finalPhases.includes(phaseOfSnapshot(s))) continue
      for (const r of s.context.replicas) {
        if (r.contractId && r.node && (r.state === 'placing' || r.state === 'starting' || r.state === 'running')) out.push({ contractId: r.contractId, node: r.node, deploymentId: id })
        // a migration's new contract, reserved by its first step, is the deployment's until the move settles
        if (r.moving) out.push({ contractId: r.moving.contract.terms.id, node: r.moving.contract.terms.provider, deploymentId: id })
      }
      const sb = s.context.standby
      if (sb) out.push({ contractId: sb.contractId, node: sb.node, deploymentId: id })
    }
    return out
  }

  /**
   * A renewal's answer says the provider no longer holds this contract live (its lease ran out, it was fenced,
   * the instance ended and the report was lost...): the replica's deployment learns it as the instance's end,
   * and places the slot again.
   */
  #contractGone(t: LeaseTarget, g: GoneContract): void {
    const s = this.#snapshot(t.deploymentId)
    if (!s || finalPhases.includes(phaseOfSnapshot(s))) return
    const rep = s.context.replicas.find((r) => r.contractId === t.contractId)
    if (!rep) {
      if (s.context.standby?.contractId === t.contractId) this.#log('warn', 'standby contract gone on its provider', { deployment: t.deploymentId, node: t.node, status: g.status, note: g.note })
      return
    }
    if (rep.state !== 'running' && rep.state !== 'starting') return
    // a migration's checkpoint stopped it on purpose: the move replaces it
    if (rep.moving?.from.contractId === t.contractId) return
    const exited = g.instanceState === 'exited' && typeof g.exitCode === 'number'
    const report: ReplicaReport = {
      contractId: t.contractId, deploymentId: t.deploymentId, slot: rep.slot, epoch: rep.epoch, node: t.node,
      state: exited ? 'exited' : 'failed', ...(exited ? { code: g.exitCode! } : {}),
      reason: `contract ${g.status} on the provider${g.note ? `: ${g.note}` : ''}`, at: this.#now(),
    }
    this.#log('warn', 'contract gone on its provider: slot placed again', { deployment: t.deploymentId, slot: rep.slot, node: t.node, status: g.status, note: g.note })
    this.#system.tell(this.#ref(t.deploymentId), DeploymentBehavior.report, { report })
  }

  /** What reconciliation does with a live contract a provider holds for this node. */
  #judge(c: ContractLeaseView): Verdict {
    if (this.#handedOver.has(c.deploymentId)) return { do: 'leave', why: 'its deployment was handed over to the standby orchestrator' }
    if (this.#renewer.inFlight(c.contractId)) return { do: 'leave', why: 'made by a step in flight' }
    if (!this.#ids.has(c.deploymentId)) return { do: 'stop', why: 'reconciliation: no deployment record names it' }
    const s = this.#snapshot(c.deploymentId)
    if (!s || finalPhases.includes(phaseOfSnapshot(s))) return { do: 'stop', why: `reconciliation: its deployment is ${s ? phaseOfSnapshot(s) : 'gone'}` }
    if (this.#leaseTargets().some((t) => t.contractId === c.contractId)) return { do: 'adopt' }
    return { do: 'stop', why: 'reconciliation: its deployment does not name it (a proposal made again after a restart)' }
  }

  /**
   * One broadcast with every fence of the live deployments (rate limits count messages, not fences): each names
   * its slot's current contract, and a batch carries the handover of each deployment this node took over as
   * standby orchestrator (spec/contracts.md "Fences").
   */
  async #repeatFences(): Promise<void> {
    const fences: { slot: string; epoch: number; contractId?: string; deploymentId: string }[] = []
    for (const id of this.#ids) {
      const s = this.#snapshot(id)
      if (!s || finalPhases.includes(phaseOfSnapshot(s))) continue
      for (const r of s.context.replicas) {
        if (r.epoch > 1 && r.state === 'running') fences.push({ slot: r.slot, epoch: r.epoch, ...(r.contractId ? { contractId: r.contractId } : {}), deploymentId: id })
      }
    }
    for (let i = 0; i < fences.length; i += 200) {
      const batch = fences.slice(i, i + 200)
      const handovers = [...new Set(batch.map((f) => f.deploymentId))].map((id) => this.#handoverOf(id)).filter((h) => h !== undefined)
      // Repeated every fenceRepeatMs: a failed round is logged and the next one tries again.
      await this.#p.publish(Topics.fences, { fences: batch.map(({ deploymentId: _d, ...f }) => f), ...(handovers.length > 0 ? { handovers } : {}) })
        .catch((err: Error) => this.#log('warn', 'fence repeat broadcast failed', { fences: fences.length, error: err.name, message: err.message }))
    }
  }

  /** The handover this node's fences for a deployment carry: set when it took the deployment over as standby. */
  #handoverOf(id: string): Handover | undefined {
    const c = this.#snapshot(id)?.context
    if (!c?.takenOverFrom || c.handoverToken === undefined) return undefined
    return { consumer: c.takenOverFrom, deploymentId: id, epoch: c.orchestratorEpoch ?? 2, token: c.handoverToken }
  }

  #log(level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>): void {
    this.#p.log?.[level](msg, fields)
  }
}

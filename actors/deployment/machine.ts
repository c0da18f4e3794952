// The life of one deployment, as an XState v5 machine that owns the workflow:
//
//   placing: bidding -> committing -> (standby) -> starting      (a refused commit re-bids, up to the rounds)
//   live (parallel):
//     health: provisioning | running | degraded                 (judged from the replicas' states)
//     repair: idle -> working -> idle | waiting -> idle         (one job at a time: a slot to place again,
//                                                                 the standby to reserve again)
//   stopping | failing (release every contract) -> stopped | failed;  completed (a job's runs all succeeded)
//
// Bid rounds, proposals, starts, repairs and releases are invoked `fromPromise` children given by the
// orchestrator (DeploymentEffects): they act on the network and report facts; the machine decides what the
// facts mean. Reports of instances and lost nodes arrive as events. The context is plain JSON (model.ts), so
// the persisted snapshot is the checkpoint: restored, the machine re-runs the step that was in flight.
import { assign, enqueueActions, fromPromise, setup, type SnapshotFrom } from 'xstate'
import { formatNlc } from '../../ledger/units.ts'
import { contractPricePerHour, type Contract } from '../contracts/contract.ts'
import { constraintOrder } from '../placement/constraints.ts'
import { place, type ExistingReplica, type InfeasibleReason } from '../placement/place.ts'
import type { ReplicaReport } from '../provider/provider.ts'
import { instanceCount, type Workload } from '../workload/workload.ts'
import {
  edit, enqueue, isActive, newReplica, note, repeatRefusers, replicaOf, runningCount, toView,
  type BidRound, type DeploymentContext, type DeploymentPhase, type DeploymentView, type MigrationRecord, type Replica, type RepairJob,
  type SlotCheckpoint, type StandbyRef,
} from './model.ts'

// ---- what the effects are given and report ---------------------------------------------------------------------

export interface BidRoundInput {
  deploymentId: string
  workload: Workload
  count: number
  exclude: string[]
}

export interface CommitInput {
  deploymentId: string
  workload: Workload
  /** The slots to find a node for, in order. */
  slots: Replica[]
  /** Replicas that keep their nodes (spread, distinct nodes). */
  existing: ExistingReplica[]
  round: BidRound
  exclude: string[]
}

export interface CommitOutcome {
  /** Countersigned contracts, one per slot that got a node. */
  contracts: { slot: string; contract: Contract }[]
  /** Nodes that refused a proposal, with the error. */
  refusals: { node: string; slot: string; error: string }[]
  /** The first slot no offer was left for, and why. */
  exhausted: { slot: string; infeasible: InfeasibleReason } | null
}

export interface StandbyInput {
  deploymentId: string
  workload: Workload
  /** Nodes that hold a replica (the standby must be another). */
  used: string[]
  /** The round to choose from (initial placement), or none: the effect asks for bids itself. */
  round: BidRound | null
  /** The node placement chose, tried first. */
  preferred: string | null
}

export interface StandbyOutcome {
  standby: StandbyRef | null
  notes: string[]
}

export interface StartInput {
  deploymentId: string
  slots: { slot: string; node: string; contractId: string }[]
}

export type StartOutcome = { slot: string; node: string; contractId: string; ok: true } | { slot: string; node: string; contractId: string; ok: false; error: string }

export interface RepairInput {
  deploymentId: string
  workload: Workload
  job: RepairJob
  /** The slot to place again (slot jobs). */
  replica: Replica | null
  standby: StandbyRef | null
  existing: ExistingReplica[]
  /** Nodes that hold a replica (a new standby must be another). */
  used: string[]
  /** Nodes to leave out: repeated refusers (the effect adds lost nodes and the slot's failed nodes). */
  exclude: string[]
  why: string
}

export interface RepairOutcome {
  notes: string[]
  refusals: { node: string; slot: string; error: string }[]
  /** The standby given in was used up (promoted, or gone while trying). */
  standbyConsumed: boolean
  /** The slot's new contract, when a node took it. */
  placed: Contract | null
  /** Outcome of the start on the new node. */
  started: { ok: true } | { ok: false; error: string } | null
  infeasible: InfeasibleReason | null
  /** Standby jobs: the standby now reserved (or null when none could be). */
  standby: StandbyRef | null
  /** Move jobs: what happened to the old replica and the state carried. */
  moved?: {
    /** The old replica was quiesced (stopped and its state archived): it no longer runs. */
    oldStopped: boolean
    checkpoint: SlotCheckpoint | null
    /** From the old replica quiesced to the new one started (ms). */
    gapMs: number | null
    /** An SDK actor's handover: the new sandbox was readied (bundle loaded) before the old replica was quiesced. */
    warm?: boolean
  }
}

export interface ReleaseInput {
  deploymentId: string
  why: string
  targets: { slot: string; node: string; contractId: string; role: 'replica' | 'standby' }[]
}

export type ReleaseOutcome = ReleaseInput['targets'][number] & ({ ok: true } | { ok: false; error: string })

/** The effects that are steps (each invoked as a child, its outcome recorded): the crash boundaries. */
export const DEPLOYMENT_STEPS = ['bidRound', 'commit', 'reserveStandby', 'start', 'repair', 'release'] as const

/** Bid rounds that placed nothing while nodes were silent, before the deployment fails (model.ts). */
export const UNANSWERED_ROUNDS_MAX = 5

/** What the machine asks of the world; the orchestrator implements it (../orchestrator/effects.ts). */
export interface DeploymentEffects {
  now(): number
  bidRound(i: BidRoundInput): Promise<BidRound>
  commit(i: CommitInput): Promise<CommitOutcome>
  reserveStandby(i: StandbyInput): Promise<StandbyOutcome>
  start(i: StartInput): Promise<StartOutcome[]>
  repair(i: RepairInput): Promise<RepairOutcome>
  release(i: ReleaseInput): Promise<ReleaseOutcome[]>
  /** Fire and forget: the consumer side's record of a contract ended (a report, a lost standby). */
  contractEnded(contractId: string, why: string): void
  /** Fire and forget: the start answer is a sign of life of `node` (its failure detector starts now). */
  alive(node: string): void
  /** How long a degraded deployment waits before it tries again to place a slot no node took. */
  retryMs: number
}

// ---- events ------------------------------------------------------------------------------------------------

export type DeploymentEvent =
  /** A provider's report, checked by the orchestrator: from the node that holds the slot's current contract. */
  | { type: 'REPORT'; report: ReplicaReport }
  | { type: 'NODE_LOST'; node: string; phi: number; lastHeartbeatAt: number | null; at: number; evidence?: string }
  /** `reason`: why this node stops it by itself (e.g. out of funds); absent for a stop the owner asked for. */
  | { type: 'STOP'; reason?: string }
  /** After a restore: a wait whose timer did not survive the restart ends now. */
  | { type: 'RESUME' }
  /** A running replica's live checkpoint (protected lane, spec/migration.md "Stateful failover"). */
  | { type: 'CHECKPOINTED'; slot: string; contractId: string; checkpoint: SlotCheckpoint }
  /** `noir migrate`: move the replica of `slot` to another node (`to`: that one), `why` shown in status. */
  | { type: 'MIGRATE'; id: string; slot: string; to?: string; why: string; at: number }
  /** This node (the standby orchestrator) took the deployment over from `from` at orchestrator epoch `epoch`. */
  | { type: 'TAKEN_OVER'; from: string; by: string; epoch: number; at: number; token?: string }
  | { type: 'UP' }
  | { type: 'DOWN' }
  /** No traffic at any ingress for `idleMs` (spec/ingress.md "Scale to zero"): a service with scale.min 0 stops its replicas. */
  | { type: 'IDLE'; at: number; idleMs: number }
  /** Traffic arrived for a service at zero (`by`: the ingress that asked): its replicas are placed again. */
  | { type: 'WAKE'; at: number; by?: string }
  /** More connections open through the ingresses than its replicas are meant to carry: run `to` replicas (<= scale.max). */
  | { type: 'SCALE_OUT'; to: number; at: number; active: number }
  /** Fewer connections than its extra replicas are meant for, for a while: run `to` replicas (>= its baseline). */
  | { type: 'SCALE_IN'; to: number; at: number; active: number }
  | { type: 'RESIZED' }

export interface DeploymentInput {
  id: string
  workload: Workload
  at: number
  maxCommitRounds?: number
  idempotencyKey?: string
}

// ---- pure steps -----------------------------------------------------------------------------------------------

const existingOf = (d: DeploymentContext, except?: string): ExistingReplica[] =>
  d.replicas.filter((r) => r.slot !== except && r.node && r.owner && isActive(r)).map((r) => ({ nodeDid: r.node!, ownerDid: r.owner! }))

const usedNodes = (d: DeploymentContext): string[] => d.replicas.map((r) => r.node).filter((n): n is string => n !== null && n !== undefined)

/** Slots the initial placement still has to find a node for. */
const unplaced = (d: DeploymentContext): Replica[] => d.replicas.filter((r) => r.contractId === null || r.state === 'pending')

function takeContract(d: DeploymentContext, rep: Replica, c: Contract, at: number): void {
  const t = c.terms
  rep.epoch = t.epoch
  rep.contract = c
  rep.contractId = t.id
  rep.node = t.provider
  rep.owner = t.providerOwner
  rep.pricePerHour = t.pricePerHour
  rep.attempts++
  rep.state = 'placing'
  rep.placingSince ??= at
  note(d, at, `contract ${t.id.slice(0, 8)} for slot ${rep.slot} (epoch ${t.epoch}) with ${t.provider} at ${formatNlc(contractPricePerHour(t))}/h, countersigned`)
}

function countRefusals(d: DeploymentContext, refusals: CommitOutcome['refusals'], at: number): void {
  for (const r of refusals) {
    d.refusals[r.node] = (d.refusals[r.node] ?? 0) + 1
    note(d, at, `node ${r.node} refused slot ${r.slot}: ${r.error}; trying the next best`)
  }
}

/** Marks a slot running; true when it changed (the caller raises UP). */
function markRunning(d: DeploymentContext, rep: Replica, at: number): boolean {
  if (rep.state !== 'starting' && rep.state !== 'placing') return false
  rep.state = 'running'
  rep.runningSince = at
  const since = rep.placingSince
  rep.placingSince = null
  const fo = d.failovers.find((f) => f.slot === rep.slot && f.runningAt === null)
  if (fo) {
    fo.runningAt = at
    fo.to = rep.node
    fo.ms = at - fo.lostAt
    note(d, at, `slot ${rep.slot} running again on ${rep.node}, ${fo.ms} ms after ${fo.from} was found lost${fo.lastHeartbeatAt ? ` (${at - fo.lastHeartbeatAt} ms after its last heartbeat)` : ''}`)
  } else {
    note(d, at, `slot ${rep.slot} running on ${rep.node}${since !== null ? ` (${at - since} ms after its contract was proposed)` : ''}`)
  }
  return true
}

/**
 * The outcome of a `migrate` job (the new node reserved: the `move` job comes next) or a `move` job (the
 * replica runs on the new node, or where the slot stands if it does not). Returns the health event to raise.
 */
function applyMigration(d: DeploymentContext, rep: Replica, job: Extract<RepairJob, { kind: 'migrate' | 'move' }>, out: RepairOutcome, at: number): 'UP' | 'DOWN' | null {
  const rec = (d.migrations ?? []).find((m) => m.id === job.id)
  const finish = (ok: boolean, error: string | null): void => {
    if (!rec) return
    Object.assign(rec, { doneAt: at, ok, error })
  }
  if (job.kind === 'migrate') {
    if (!out.placed) {
      const why = `no other node fits: ${out.infeasible?.reason ?? 'no node accepted'}`
      note(d, at, `migration of slot ${rep.slot} not done: ${why}; the replica stays on ${rep.node}`)
      finish(false, why)
      return null
    }
    if (rep.state !== 'running' || !rep.node || !rep.contractId) {
      note(d, at, `migration of slot ${rep.slot} dropped: the replica is ${rep.state} now (its reservation on ${out.placed.terms.provider} lapses)`)
      finish(false, `replica ${rep.slot} is not running`)
      return null
    }
    rep.moving = { id: job.id, contract: out.placed, from: { node: rep.node, contractId: rep.contractId }, why: job.why, requestedAt: job.at }
    note(d, at, `migration of slot ${rep.slot}: ${out.placed.terms.provider} reserved (epoch ${out.placed.terms.epoch}); moving`)
    d.queue.unshift({ kind: 'move', slot: rep.slot, why: job.why, id: job.id })
    return null
  }
  const moving = rep.moving
  rep.moving = null
  if (!moving) return null
  const moved = out.moved ?? { oldStopped: false, checkpoint: null, gapMs: null }
  if (moved.checkpoint) rep.checkpoint = moved.checkpoint
  if (rec) {
    rec.checkpoint = moved.checkpoint ? { digest: moved.checkpoint.digest, bytes: moved.checkpoint.bytes } : null
    rec.gapMs = moved.gapMs
    if (moved.warm !== undefined) rec.warm = moved.warm
  }
  if (out.started?.ok) {
    takeContract(d, rep, moving.contract, at)
    rep.state = 'starting'
    const up = markRunning(d, rep, at)
    if (rec) rec.to = rep.node
    note(d, at, `slot ${rep.slot} migrated from ${moving.from.node} to ${rep.node} (${moving.why})${moved.checkpoint ? `, state ${moved.checkpoint.bytes} bytes carried as ${moved.checkpoint.digest.slice(0, 20)}…` : ', stateless: started before the old one stopped'}`)
    finish(true, null)
    return up ? 'UP' : null
  }
  const error = out.started && !out.started.ok ? out.started.error : 'the new replica was not started'
  if (!moved.oldStopped) {
    note(d, at, `migration of slot ${rep.slot} to ${moving.contract.terms.provider} failed (${error}); the replica keeps running on ${moving.from.node}`)
    finish(false, error)
    return null
  }
  // the old replica was quiesced for its checkpoint: the slot is placed again from that checkpoint
  rep.state = 'failed'
  rep.failedOn.push(moving.contract.terms.provider)
  d.reason = `migration of slot ${rep.slot} failed: ${error}`
  note(d, at, `migration of slot ${rep.slot} to ${moving.contract.terms.provider} failed (${error}) after the old replica stopped; placing it again from its checkpoint`)
  enqueue(d, { kind: 'slot', slot: rep.slot, why: 'migration target did not start' })
  finish(false, error)
  return 'DOWN'
}

function phaseOf(value: unknown): DeploymentPhase {
  if (typeof value === 'string') {
    if (value === 'stopping' || value === 'failing') return 'stopping'
    if (value === 'sleeping' || value === 'asleep') return 'idle'
    return value as DeploymentPhase
  }
  const v = value as { placing?: string; live?: { health?: string } }
  if (v.placing === 'bidding' || v.placing === 'awaitingAnswers') return 'bidding'
  if (v.placing === 'committing' || v.placing === 'standby') return 'committing'
  if (v.placing === 'starting') return 'provisioning'
  const h = v.live?.health
  return h === 'running' || h === 'degraded' ? h : 'provisioning'
}

// ---- the machine ------------------------------------------------------------------------------------------------

export function deploymentMachine(fx: DeploymentEffects) {
  return setup({
    types: {
      context: {} as DeploymentContext,
      events: {} as DeploymentEvent,
      input: {} as DeploymentInput,
    },
    actors: {
      bidRound: fromPromise<BidRound, BidRoundInput>(({ input }) => fx.bidRound(input)),
      commit: fromPromise<CommitOutcome, CommitInput>(({ input }) => fx.commit(input)),
      reserveStandby: fromPromise<StandbyOutcome, StandbyInput>(({ input }) => fx.reserveStandby(input)),
      start: fromPromise<StartOutcome[], StartInput>(({ input }) => fx.start(input)),
      repair: fromPromise<RepairOutcome, RepairInput>(({ input }) => fx.repair(input)),
      release: fromPromise<ReleaseOutcome[], ReleaseInput>(({ input }) => fx.release(input)),
    },
    delays: {
      retry: () => fx.retryMs,
      // 0.5 s, 1 s, 2 s, 4 s, 8 s: long enough for a restarted node's connections, short enough to feel none
      rebid: ({ context }) => Math.min(8_000, 500 * 2 ** Math.max(0, (context.unansweredRounds ?? 1) - 1)),
    },
    guards: {
      stopRequested: ({ context }) => context.stopRequested,
      stopRetry: ({ context }) => context.stopRequested && context.stopFailures.length > 0,
      failRequested: ({ context }) => context.reason !== null && context.failNow,
      unanswered: ({ context }) => (context.unansweredRounds ?? 0) > 0 && !context.failNow,
      full: ({ context }) => runningCount(context) >= context.desired,
      everRan: ({ context }) => context.everRan,
      queued: ({ context }) => context.queue.length > 0,
      parked: ({ context }) => context.parked.length > 0,
      jobDone: ({ context }) => context.workload.kind === 'job' && context.succeeded >= context.completions,
      jobFailedOut: ({ context }) => context.workload.kind === 'job' && context.failures > context.retries,
      roundsLeft: ({ context }) => context.commitRounds + 1 < context.maxCommitRounds,
      /** A service that may scale to zero, with nothing in flight (no repair, migration or stop). */
      canSleep: ({ context: d }) => d.workload.kind === 'service' && d.workload.service?.scale?.min === 0 && !d.stopRequested && !d.failNow
        && d.current === null && d.queue.length === 0 && !d.replicas.some((r) => r.moving),
      waking: ({ context }) => (context.wokenAt ?? null) !== null || (context.scalingSince ?? null) !== null,
      canScaleOut: ({ context: d, event }) => event.type === 'SCALE_OUT' && d.workload.kind === 'service' && d.workload.service?.scale !== undefined
        && event.to > d.replicas.length && event.to <= d.workload.service.scale.max && !d.stopRequested && !d.failNow,
      /** Down to `to` (never below the baseline), with no migration in flight and none already retiring. */
      canScaleIn: ({ context: d, event }) => event.type === 'SCALE_IN' && d.workload.kind === 'service' && d.workload.service?.scale !== undefined
        && event.to < d.replicas.length && event.to >= Math.max(1, d.workload.service.scale.min, d.workload.service.replicas)
        && !d.stopRequested && !d.failNow && !d.replicas.some((r) => r.moving || r.retiring),
    },
    actions: {
      noteIdle: assign(({ context, event }) => edit(context, (d) => {
        if (event.type !== 'IDLE') return
        note(d, event.at, `no traffic for ${Math.round(event.idleMs / 1000)} s: scaling to zero (its replicas stop, their capacity is released)`)
      })),
      rememberWake: assign(({ context, event }) => edit(context, (d) => {
        if (event.type === 'WAKE') d.wakeAsked = { at: event.at, by: event.by ?? null }
      })),
      wake: assign(({ context, event }) => edit(context, (d) => {
        const asked = event.type === 'WAKE' ? { at: event.at, by: event.by ?? null } : d.wakeAsked
        if (!asked) return
        d.wakeAsked = null
        d.wokenAt = asked.at
        d.wokenBy = asked.by
        d.reason = null
        d.infeasible = null
        note(d, asked.at, `woken by traffic${asked.by ? ` at ingress ${asked.by}` : ''}: placing ${d.replicas.length} replica(s) again`)
        for (const r of d.replicas) {
          if (r.state !== 'stopped') continue
          r.state = 'pending'
          d.queue.push({ kind: 'slot', slot: r.slot, why: 'woken by traffic' })
        }
      })),
      scaleOut: enqueueActions(({ context, event, enqueue: q }) => {
        if (event.type !== 'SCALE_OUT') return
        q.assign(edit(context, (d) => {
          const from = d.replicas.length
          for (let i = from; i < event.to; i++) {
            d.replicas.push(newReplica(d.id, i))
            d.queue.push({ kind: 'slot', slot: `${d.id}/${i}`, why: 'scaling out' })
          }
          d.desired = event.to
          d.scalingSince = event.at
          note(d, event.at, `${event.active} connection(s) open through the ingresses: scaling out from ${from} to ${event.to} replica(s)`)
        }))
        q.raise({ type: 'RESIZED' })
      }),
      scaleIn: enqueueActions(({ context, event, enqueue: q }) => {
        if (event.type !== 'SCALE_IN') return
        q.assign(edit(context, (d) => {
          const from = d.replicas.length
          // the highest slots go (slot i is replicas[i]): no longer offered to ingresses, then released, last first
          const retire: RepairJob[] = []
          for (let i = from - 1; i >= event.to; i--) {
            const rep = d.replicas[i]!
            rep.retiring = true
            retire.push({ kind: 'retire', slot: rep.slot, why: 'scaling in' })
          }
          d.queue.unshift(...retire)
          d.desired = event.to
          note(d, event.at, `${event.active} connection(s) open through the ingresses: scaling in from ${from} to ${event.to} replica(s)`)
        }))
        q.raise({ type: 'RESIZED' })
      }),
      trimToBaseline: assign(({ context }) => edit(context, (d) => {
        // at zero, the replicas scaled out beyond `replicas` are forgotten: a wake starts the baseline count
        const baseline = d.workload.service?.replicas ?? 1
        if (d.replicas.length <= baseline) return
        d.replicas = d.replicas.slice(0, baseline)
        d.desired = baseline
      })),
      noteWarm: assign(({ context }) => edit(context, (d) => {
        if ((d.scalingSince ?? null) !== null) {
          const at = fx.now()
          note(d, at, `scaled out: ${d.replicas.length} replica(s) running ${at - d.scalingSince!} ms after the decision`)
          d.scalingSince = null
        }
        if (d.wokenAt === undefined || d.wokenAt === null) return
        const at = fx.now()
        const by = d.wokenBy ?? null
        d.coldStarts = [...(d.coldStarts ?? []), { wokenAt: d.wokenAt, runningAt: at, ms: at - d.wokenAt, by }].slice(-20)
        note(d, at, `cold start: every replica running ${at - d.wokenAt} ms after the wake`)
        d.wokenAt = null
        d.wokenBy = null
      })),
      record: assign(({ context }, params: { phase: DeploymentPhase }) => {
        const last = context.history.at(-1)
        if (last?.phase === params.phase && params.phase !== 'bidding') return {}
        return { history: [...context.history, { phase: params.phase, at: fx.now(), ...(context.reason && (params.phase === 'failed' || params.phase === 'degraded') ? { note: context.reason } : {}) }] }
      }),
      markEverRan: assign({ everRan: true }),
      takenOver: assign(({ context, event }) => {
        if (event.type !== 'TAKEN_OVER') return {}
        return edit(context, (d) => {
          d.orchestratorEpoch = event.epoch
          d.takenOverFrom = event.from
          if (event.token !== undefined) d.handoverToken = event.token
          note(d, event.at, `taken over from ${event.from} by its standby orchestrator ${event.by} (orchestrator epoch ${event.epoch})`)
        })
      }),
      noteResumed: assign(({ context }) => edit(context, (d) => note(d, fx.now(), 'taken up again after a restart of the orchestrating node'))),
      requestStop: assign(({ context, event }) => {
        const why = (event as { reason?: string }).reason
        if (!why) return { stopRequested: true }
        return edit({ ...context, stopRequested: true }, (d) => {
          d.reason = why
          note(d, fx.now(), `stopping: ${why}`)
        })
      }),
      clearStop: assign({ stopRequested: false }),
      unpark: assign(({ context }) => ({ queue: [...context.queue, ...context.parked], parked: [] })),

      noteRound: assign(({ context, event }) => {
        const round = (event as unknown as { output: BidRound }).output
        return edit(context, (d) => {
          const at = fx.now()
          note(d, at, `bid round ${d.commitRounds + 1}: asked ${round.asked.length} node(s), ${round.bids.length} bid(s), ${round.declines.length} decline(s)${round.unawaited?.length ? `, ${round.unawaited.length} answer(s) not awaited (the bids in hand decided the placement)` : ''}`)
          const plan = place({ workload: d.workload, count: unplaced(d).length, offers: round.offers, exclude: new Set(repeatRefusers(d)), standby: d.workload.lane === 'protected' })
          if (!plan.ok) {
            d.infeasible = withDeclines(plan.infeasible, round)
            d.reason = d.infeasible.reason
            const unanswered = (d.unansweredRounds ?? 0) + 1
            if (round.silent.length > 0 && unanswered <= UNANSWERED_ROUNDS_MAX) {
              // nodes that did not answer might have taken it: not known to be infeasible yet
              d.unansweredRounds = unanswered
              note(d, at, `no placement yet (${d.infeasible.reason}); ${round.silent.length} node(s) did not answer: bidding again (${unanswered} of ${UNANSWERED_ROUNDS_MAX})`)
              return
            }
            d.failNow = true
            note(d, at, `infeasible: ${d.infeasible.reason}`)
            return
          }
          d.unansweredRounds = 0
          d.round = round
          d.preferredStandby = plan.standby?.offer.nodeDid ?? null
        })
      }),
      markPlacing: assign(({ context }) => edit(context, (d) => {
        const at = fx.now()
        for (const r of unplaced(d)) {
          r.state = 'placing'
          r.placingSince ??= at
        }
      })),
      applyCommit: assign(({ context, event }) => {
        const out = (event as unknown as { output: CommitOutcome }).output
        return edit(context, (d) => {
          const at = fx.now()
          countRefusals(d, out.refusals, at)
          for (const { slot, contract } of out.contracts) {
            const rep = replicaOf(d, slot)
            if (rep) takeContract(d, rep, contract, at)
          }
          if (out.exhausted) {
            d.infeasible = out.exhausted.infeasible
            note(d, at, `slot ${out.exhausted.slot}: no more candidates (${out.exhausted.infeasible.reason})`)
          }
        })
      }),
      commitFailed: assign(({ context }) => edit(context, (d) => {
        d.commitRounds++
        d.reason = 'a node could not reserve; bidding again without it'
        if (d.commitRounds >= d.maxCommitRounds) {
          d.reason = `no node reserved every slot in ${d.maxCommitRounds} round(s)${d.infeasible ? `: ${d.infeasible.reason}` : ''}`
          d.failNow = true
        }
      })),
      applyStandby: assign(({ context, event }) => {
        const out = (event as unknown as { output: StandbyOutcome }).output
        return edit(context, (d) => {
          const at = fx.now()
          for (const n of out.notes) note(d, at, n)
          if (out.standby) d.standby = out.standby
          // no standby yet (the node for it was down, its bid lapsed): sought again once live, then every retry
          else if (d.workload.lane === 'protected') enqueue(d, { kind: 'standby' })
        })
      }),
      standbyLater: assign(({ context }) => edit(context, (d) => {
        if (d.workload.lane === 'protected' && !d.standby) enqueue(d, { kind: 'standby' })
      })),
      markStarting: assign(({ context }) => edit(context, (d) => {
        for (const r of d.replicas) if (r.state === 'placing' && r.contractId) r.state = 'starting'
        d.round = null
      })),
      applyStarts: enqueueActions(({ context, event, enqueue: q }) => {
        const out = (event as unknown as { output: StartOutcome[] }).output
        let up = false
        const next = edit(context, (d) => {
          const at = fx.now()
          for (const s of out) {
            const rep = replicaOf(d, s.slot)
            if (!rep || rep.contractId !== s.contractId) continue
            if (s.ok) {
              fx.alive(s.node)
              up = markRunning(d, rep, at) || up
            } else if (rep.state === 'starting') {
              note(d, at, `start of slot ${rep.slot} on ${s.node} failed: ${s.error}`)
              rep.failedOn.push(s.node)
              rep.state = 'placing'
              enqueue(d, { kind: 'slot', slot: rep.slot, why: `start failed on ${s.node}` })
            }
          }
        })
        q.assign(next)
        if (up) q.raise({ type: 'UP' })
      }),
      takeJob: assign(({ context }) => ({ current: context.queue[0] ?? null, queue: context.queue.slice(1) })),
      applyRepair: enqueueActions(({ context, event, enqueue: q }) => {
        const out = (event as unknown as { output: RepairOutcome }).output
        let up = false
        let down = false
        const next = edit(context, (d) => {
          const at = fx.now()
          const job = d.current
          d.current = null
          for (const n of out.notes) note(d, at, n)
          countRefusals(d, out.refusals, at)
          if (out.standbyConsumed) d.standby = null
          if (!job) return
          if (job.kind === 'standby') {
            if (out.standby) d.standby = out.standby
            else d.parked.push(job) // tried again after the retry delay (a node may have come back)
            return
          }
          const rep = replicaOf(d, job.slot)
          if (!rep) return
          if (job.kind === 'retire') {
            // gone from the deployment whether or not its node confirmed the stop (its lease is not renewed)
            const i = d.replicas.indexOf(rep)
            if (i === d.replicas.length - 1) d.replicas.pop()
            note(d, at, `slot ${rep.slot} retired (scaled in)${rep.node ? ` from ${rep.node}` : ''}`)
            return
          }
          if (job.kind === 'migrate' || job.kind === 'move') {
            const r = applyMigration(d, rep, job, out, at)
            if (r === 'UP') up = true
            else if (r === 'DOWN') down = true
            return
          }
          if (out.placed) {
            takeContract(d, rep, out.placed, at)
            if (out.started?.ok) {
              rep.state = 'starting'
              fx.alive(rep.node!)
              up = markRunning(d, rep, at)
            } else if (out.started) {
              note(d, at, `start of slot ${rep.slot} on ${rep.node} failed: ${out.started.error}`)
              rep.failedOn.push(rep.node!)
              enqueue(d, { kind: 'slot', slot: rep.slot, why: `start failed on ${rep.node}` })
            }
            if (d.workload.lane === 'protected' && !d.standby) enqueue(d, { kind: 'standby' })
            return
          }
          if (out.infeasible) d.infeasible = out.infeasible
          const reason = `slot ${rep.slot} could not be placed again (${job.why}): ${d.infeasible?.reason ?? 'no node accepted'}`
          note(d, at, reason)
          d.reason = reason
          if (!d.everRan) d.failNow = true // it never ran: fail with the reason instead of provisioning forever
          else d.parked.push(job) // it ran before: stay degraded and try again later (capacity may come back)
        })
        q.assign(next)
        if (up) q.raise({ type: 'UP' })
        if (down) q.raise({ type: 'DOWN' })
      }),
      takeCheckpoint: assign(({ context, event }) => {
        if (event.type !== 'CHECKPOINTED') return {}
        const rep = replicaOf(context, event.slot)
        // only the slot's current replica's checkpoint counts (a late one from a replaced copy does not)
        if (!rep || rep.contractId !== event.contractId || rep.state !== 'running') return {}
        return edit(context, (d) => {
          replicaOf(d, event.slot)!.checkpoint = event.checkpoint
        })
      }),
      migrateAsked: assign(({ context, event }) => {
        if (event.type !== 'MIGRATE') return {}
        return edit(context, (d) => {
          const rec: MigrationRecord = {
            id: event.id, slot: event.slot, from: replicaOf(d, event.slot)?.node ?? '', to: null, why: event.why, requestedAt: event.at,
            doneAt: null, ok: null, checkpoint: null, gapMs: null, error: null,
          }
          d.migrations = [...(d.migrations ?? []), rec].slice(-50)
          const rep = replicaOf(d, event.slot)
          const busy = d.replicas.some((r) => r.moving) || [d.current, ...d.queue].some((j) => j?.kind === 'migrate' || j?.kind === 'move')
          const refused = !rep || rep.state !== 'running' ? `replica ${event.slot} is not running` : busy ? 'a migration is already in progress' : null
          if (refused) {
            Object.assign(rec, { doneAt: event.at, ok: false, error: refused })
            return
          }
          note(d, event.at, `migration of slot ${event.slot} asked (${event.why})${event.to ? ` to ${event.to}` : ''}`)
          d.queue.push({ kind: 'migrate', slot: event.slot, why: event.why, id: event.id, at: event.at, ...(event.to ? { to: event.to } : {}) })
        })
      }),
      repairFailed: assign(({ context, event }) => edit(context, (d) => {
        const e = (event as unknown as { error: unknown }).error
        const job = d.current
        d.current = null
        note(d, fx.now(), `internal error while repairing: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`)
        if (job) d.parked.push(job)
      })),
      noteError: assign(({ context, event }) => edit(context, (d) => {
        const e = (event as unknown as { error: unknown }).error
        d.reason = `internal error: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`
        d.failNow = true
        note(d, fx.now(), d.reason)
      })),
      applyRelease: assign(({ context, event }, params: { why: string }) => {
        const out = (event as unknown as { output: ReleaseOutcome[] }).output
        return edit(context, (d) => {
          const at = fx.now()
          d.stopFailures = []
          for (const t of out) {
            if (!t.ok) {
              d.stopFailures.push({ slot: t.slot, node: t.node, contractId: t.contractId, error: t.error, at })
              note(d, at, `${t.role} in slot ${t.slot} on node ${t.node} not confirmed stopped: ${t.error}`)
              continue
            }
            if (t.role === 'standby') {
              if (d.standby?.contractId === t.contractId) d.standby = null
              continue
            }
            const rep = replicaOf(d, t.slot)
            if (rep && rep.contractId === t.contractId && rep.state !== 'succeeded' && rep.state !== 'failed') rep.state = 'stopped'
          }
          for (const r of d.replicas) if (r.state === 'pending' || r.state === 'placing') r.state = 'stopped'
          d.queue = []
          d.parked = []
          note(d, at, d.stopFailures.length === 0 ? params.why : `${params.why}, but ${d.stopFailures.length} replica(s) not confirmed stopped: ${d.stopFailures.map((f) => `${f.slot} on ${f.node}`).join(', ')}`)
        })
      }),
      report: enqueueActions(({ context, event, enqueue: q }) => {
        if (event.type !== 'REPORT') return
        const r = event.report
        let raise: 'UP' | 'DOWN' | null = null
        const next = edit(context, (d) => {
          const rep = replicaOf(d, r.slot)
          if (!rep || rep.contractId !== r.contractId) return
          const at = fx.now()
          if (r.state === 'running') {
            if (markRunning(d, rep, at)) raise = 'UP'
            return
          }
          if (r.state !== 'exited' && r.state !== 'failed') return
          if (rep.state !== 'running' && rep.state !== 'starting') return
          // the end of a replica a migration quiesced is the move's to handle (its checkpoint stopped it)
          if (rep.moving?.from.contractId === r.contractId) return
          rep.lastExitCode = r.code ?? null
          fx.contractEnded(r.contractId, `${r.state}${r.code !== undefined && r.code !== null ? ` ${r.code}` : ''}`)
          const ok = r.state === 'exited' && r.code === 0
          const w = d.workload
          if (w.kind === 'job') {
            if (ok) {
              rep.state = 'succeeded'
              d.succeeded++
              note(d, at, `run in slot ${rep.slot} succeeded on ${r.node}`)
              const active = d.replicas.filter(isActive).length
              if (d.succeeded + active < d.completions) {
                rep.failedOn = []
                enqueue(d, { kind: 'slot', slot: rep.slot, why: 'next completion' })
              }
            } else {
              rep.state = 'failed'
              rep.failedOn.push(r.node)
              d.failures++
              d.reason = `exit ${r.code ?? r.reason ?? r.state} on ${r.node}`
              note(d, at, `run in slot ${rep.slot} failed on ${r.node} (${r.state}${r.code !== undefined && r.code !== null ? ` code ${r.code}` : ''}${r.reason ? `: ${r.reason}` : ''})`)
              if (d.failures <= d.retries) enqueue(d, { kind: 'slot', slot: rep.slot, why: `retry ${d.failures} of ${d.retries}` })
            }
            return
          }
          rep.state = 'failed'
          d.reason = `ended on ${r.node}`
          raise = 'DOWN'
          note(d, at, `replica in slot ${rep.slot} ended on ${r.node} (${r.state}${r.code !== undefined && r.code !== null ? ` code ${r.code}` : ''})`)
          const restart = w.service?.restart ?? 'always'
          if (restart === 'never' || (restart === 'on-failure' && ok)) return
          if (!ok) rep.failedOn.push(r.node)
          enqueue(d, { kind: 'slot', slot: rep.slot, why: 'restart' })
        })
        q.assign(next)
        if (raise) q.raise({ type: raise })
      }),
      nodeLost: enqueueActions(({ context, event, enqueue: q }) => {
        if (event.type !== 'NODE_LOST') return
        let down = false
        const next = edit(context, (d) => {
          const { node, at } = event
          if (d.standby?.node === node) {
            fx.contractEnded(d.standby.contractId, 'node lost')
            note(d, at, `standby node ${node} lost`)
            d.standby = null
            if (d.workload.lane === 'protected') enqueue(d, { kind: 'standby' })
          }
          for (const rep of d.replicas) {
            if (rep.node !== node || (rep.state !== 'running' && rep.state !== 'starting')) continue
            rep.state = 'lost'
            rep.failedOn.push(node)
            d.failovers.push({ slot: rep.slot, from: node, to: null, lostAt: at, lastHeartbeatAt: event.lastHeartbeatAt, runningAt: null, ms: null })
            d.reason = `node ${node} lost`
            const why = event.evidence ?? `phi ${event.phi.toFixed(1)}`
            note(d, at, `node ${node} lost (${why}, silent ${event.lastHeartbeatAt ? at - event.lastHeartbeatAt : '?'} ms); slot ${rep.slot} is placed again`)
            enqueue(d, { kind: 'slot', slot: rep.slot, why: `node ${node} lost` })
            down = true
          }
        })
        q.assign(next)
        if (down) q.raise({ type: 'DOWN' })
      }),
    },
  }).createMachine({
    id: 'deployment',
    context: ({ input }) => {
      const w = input.workload
      const count = instanceCount(w)
      return {
        id: input.id, workload: w, createdAt: input.at, desired: count, completions: w.job?.completions ?? 1, retries: w.job?.retries ?? 0,
        maxCommitRounds: input.maxCommitRounds ?? 5, replicas: Array.from({ length: count }, (_, i) => newReplica(input.id, i)),
        standby: null, succeeded: 0, failures: 0, commitRounds: 0, reason: null, infeasible: null,
        history: [{ phase: 'preparing', at: input.at }],
        events: [{ at: input.at, msg: `deployment ${input.id} created: ${w.kind} ${w.name}, ${count} ${w.kind === 'service' ? 'replica(s)' : 'parallel run(s)'}, lane ${w.lane}` }], failovers: [], refusals: {}, stopFailures: [], round: null,
        preferredStandby: null, queue: [], parked: [], current: null, stopRequested: false, failNow: false, everRan: false,
        orchestratorEpoch: 1, takenOverFrom: null, idempotencyKey: input.idempotencyKey ?? null,
      }
    },
    initial: 'placing',
    on: {
      REPORT: { actions: 'report' },
      NODE_LOST: { actions: 'nodeLost' },
      STOP: { actions: 'requestStop' },
      RESUME: { actions: 'noteResumed' },
      TAKEN_OVER: { actions: 'takenOver' },
      MIGRATE: { actions: 'migrateAsked' },
      CHECKPOINTED: { actions: 'takeCheckpoint' },
    },
    states: {
      placing: {
        initial: 'bidding',
        states: {
          bidding: {
            entry: { type: 'record', params: { phase: 'bidding' } },
            invoke: {
              src: 'bidRound',
              input: ({ context }) => ({ deploymentId: context.id, workload: context.workload, count: unplaced(context).length, exclude: repeatRefusers(context) }),
              onDone: [
                { guard: 'stopRequested', target: '#deployment.stopping' },
                { target: 'judgingRound', actions: 'noteRound' },
              ],
              onError: { target: '#deployment.failing', actions: 'noteError' },
            },
          },
          judgingRound: {
            always: [
              { guard: 'failRequested', target: '#deployment.failing' },
              { guard: 'unanswered', target: 'awaitingAnswers' },
              { target: 'committing' },
            ],
          },
          // some nodes did not answer and nothing could be placed without them: bid again after a pause
          awaitingAnswers: {
            on: { STOP: { target: '#deployment.stopping', actions: 'requestStop' } },
            after: { rebid: { target: 'bidding' } },
          },
          committing: {
            entry: [{ type: 'record', params: { phase: 'committing' } }, 'markPlacing'],
            invoke: {
              src: 'commit',
              input: ({ context }) => ({
                deploymentId: context.id, workload: context.workload, slots: unplaced(context), existing: existingOf(context),
                round: context.round!, exclude: repeatRefusers(context),
              }),
              onDone: { target: 'judgingCommit', actions: 'applyCommit' },
              onError: { target: '#deployment.failing', actions: 'noteError' },
            },
          },
          judgingCommit: {
            always: [
              { guard: 'stopRequested', target: '#deployment.stopping' },
              { guard: ({ context }) => unplaced(context).length === 0 && context.workload.lane === 'protected', target: 'standby' },
              { guard: ({ context }) => unplaced(context).length === 0, target: 'starting' },
              { guard: 'roundsLeft', target: 'bidding', actions: 'commitFailed' },
              { target: '#deployment.failing', actions: 'commitFailed' },
            ],
          },
          standby: {
            invoke: {
              src: 'reserveStandby',
              input: ({ context }) => ({ deploymentId: context.id, workload: context.workload, used: usedNodes(context), round: context.round, preferred: context.preferredStandby }),
              onDone: { target: 'starting', actions: 'applyStandby' },
              onError: { target: 'starting', actions: 'standbyLater' },
            },
          },
          starting: {
            entry: [{ type: 'record', params: { phase: 'provisioning' } }, 'markStarting'],
            invoke: {
              src: 'start',
              input: ({ context }) => ({
                deploymentId: context.id,
                slots: context.replicas.filter((r) => r.state === 'starting').map((r) => ({ slot: r.slot, node: r.node!, contractId: r.contractId! })),
              }),
              onDone: [
                { guard: 'stopRequested', target: '#deployment.stopping', actions: 'applyStarts' },
                { target: '#deployment.live', actions: 'applyStarts' },
              ],
              onError: { target: '#deployment.failing', actions: 'noteError' },
            },
          },
        },
      },
      live: {
        type: 'parallel',
        on: {
          IDLE: { guard: 'canSleep', target: 'sleeping', actions: 'noteIdle' },
          SCALE_OUT: { guard: 'canScaleOut', actions: 'scaleOut' },
          SCALE_IN: { guard: 'canScaleIn', actions: 'scaleIn' },
        },
        always: [
          { guard: 'jobDone', target: 'completed' },
          { guard: 'jobFailedOut', target: 'failing' },
          { guard: 'failRequested', target: 'failing' },
        ],
        states: {
          health: {
            initial: 'judging',
            states: {
              judging: {
                always: [
                  { guard: 'full', target: 'running' },
                  { guard: 'waking', target: 'provisioning' },
                  { guard: 'everRan', target: 'degraded' },
                  { target: 'provisioning' },
                ],
              },
              provisioning: {
                entry: { type: 'record', params: { phase: 'provisioning' } },
                on: { UP: { guard: 'full', target: 'running' } },
              },
              running: {
                entry: [{ type: 'record', params: { phase: 'running' } }, 'markEverRan', 'noteWarm'],
                on: { DOWN: { target: 'degraded' }, RESIZED: { target: 'judging' } },
              },
              degraded: {
                entry: { type: 'record', params: { phase: 'degraded' } },
                on: { UP: { guard: 'full', target: 'running' } },
              },
            },
          },
          repair: {
            initial: 'idle',
            states: {
              idle: {
                always: [
                  { guard: 'stopRequested', target: '#deployment.stopping' },
                  { guard: 'queued', target: 'working', actions: 'takeJob' },
                  { guard: 'parked', target: 'waiting' },
                ],
              },
              working: {
                invoke: {
                  src: 'repair',
                  input: ({ context }) => {
                    const job = context.current!
                    const replica = 'slot' in job ? replicaOf(context, job.slot) ?? null : null
                    return {
                      deploymentId: context.id, workload: context.workload, job, replica, standby: context.standby,
                      existing: existingOf(context, replica?.slot), used: usedNodes(context), exclude: repeatRefusers(context),
                      why: 'why' in job ? job.why : 'standby',
                    }
                  },
                  onDone: { target: 'idle', actions: 'applyRepair' },
                  onError: { target: 'idle', actions: 'repairFailed' },
                },
              },
              waiting: {
                always: [
                  { guard: 'stopRequested', target: '#deployment.stopping' },
                  { guard: 'queued', target: 'idle' },
                ],
                after: { retry: { target: 'idle', actions: 'unpark' } },
                on: { RESUME: { target: 'idle', actions: 'unpark' } },
              },
            },
          },
        },
      },
      // scaled to zero (spec/ingress.md "Scale to zero"): the replicas' contracts end, the deployment stays
      sleeping: {
        on: { WAKE: { actions: 'rememberWake' } },
        invoke: {
          src: 'release',
          input: ({ context }) => releaseInput(context, 'idle'),
          onDone: { target: 'asleep', actions: { type: 'applyRelease', params: { why: 'scaled to zero' } } },
          onError: { target: 'asleep', actions: 'noteError' },
        },
      },
      asleep: {
        entry: [{ type: 'record', params: { phase: 'idle' } }, 'trimToBaseline'],
        always: [
          { guard: 'stopRequested', target: 'stopping' },
          { guard: 'failRequested', target: 'failing' },
          { guard: ({ context }) => (context.wakeAsked ?? null) !== null, target: 'live', actions: 'wake' },
        ],
        on: { WAKE: { target: 'live', actions: 'wake' } },
      },
      stopping: {
        entry: ['clearStop', { type: 'record', params: { phase: 'stopping' } }],
        invoke: {
          src: 'release',
          input: ({ context }) => releaseInput(context, 'stopped'),
          onDone: { target: 'stopped', actions: { type: 'applyRelease', params: { why: 'stopped' } } },
          onError: { target: 'stopped', actions: 'noteError' },
        },
      },
      failing: {
        invoke: {
          src: 'release',
          input: ({ context }) => releaseInput(context, context.reason ?? 'failed'),
          onDone: { target: 'failed', actions: { type: 'applyRelease', params: { why: 'released after the failure' } } },
          onError: { target: 'failed' },
        },
      },
      completed: {
        entry: [{ type: 'record', params: { phase: 'completed' } }, 'clearStop'],
        always: { guard: 'stopRetry', target: 'stopping' },
      },
      failed: {
        entry: [{ type: 'record', params: { phase: 'failed' } }, 'clearStop'],
        always: { guard: 'stopRetry', target: 'stopping' },
      },
      stopped: {
        entry: [{ type: 'record', params: { phase: 'stopped' } }, 'clearStop'],
        always: { guard: 'stopRetry', target: 'stopping' },
      },
    },
  })
}

function releaseInput(d: DeploymentContext, why: string): ReleaseInput {
  const targets: ReleaseInput['targets'] = d.replicas
    .filter((r) => r.node && r.contractId && r.state !== 'stopped')
    .map((r) => ({ slot: r.slot, node: r.node!, contractId: r.contractId!, role: 'replica' as const }))
  if (d.standby) targets.push({ slot: `${d.id}/standby`, node: d.standby.node, contractId: d.standby.contractId, role: 'standby' })
  return { deploymentId: d.id, why, targets }
}

/**
 * Adds what the declining nodes said to an infeasible answer, so the reason covers every node that was
 * asked: the constraint none of them met, and the nearest candidate among bidders and decliners alike.
 */
export function withDeclines(why: InfeasibleReason, round: BidRound): InfeasibleReason {
  if (round.declines.length === 0 && round.silent.length === 0) return why
  const ruledOut = { ...why.ruledOut }
  let nearest = why.nearest
  let nearestKey = nearest ? nearest.failures.length * 10 + nearest.failures.reduce((s, f) => s + f.gap, 0) : Infinity
  for (const d of round.declines) {
    for (const f of d.failures ?? []) ruledOut[f.constraint] = (ruledOut[f.constraint] ?? 0) + 1
    const key = (d.failures?.length ?? 1) * 10 + (d.failures ?? []).reduce((s, f) => s + f.gap, 0)
    if (d.failures?.length && key < nearestKey) {
      nearestKey = key
      nearest = { nodeDid: d.node, failures: d.failures }
    }
  }
  const answered = round.bids.length + round.declines.length
  const noneMet = answered > 0 ? constraintOrder.find((c) => (ruledOut[c] ?? 0) === answered) : undefined
  const near = nearest ? `; nearest candidate ${nearest.nodeDid}: ${nearest.failures.map((f) => `${f.constraint} (${f.detail})`).join(', ')}` : ''
  const silent = round.silent.length > 0 ? `; ${round.silent.length} node(s) did not answer` : ''
  let reason = why.reason
  if (noneMet) reason = `no node meets ${noneMet}${near}${silent}`
  else if (why.constraint === 'no-offers' && round.declines.length > 0) reason = `every node declined${near}${silent}`
  return {
    ...why, reason, ruledOut, ...(nearest ? { nearest } : {}), ...(noneMet ? { constraint: noneMet, noneMet: true } : {}),
    declines: round.declines.map((x) => ({ node: x.node, reasons: x.reasons })), silent: round.silent,
  }
}


export type DeploymentMachine = ReturnType<typeof deploymentMachine>
export type DeploymentSnapshot = SnapshotFrom<DeploymentMachine>

/** The phase `noir status` shows for a snapshot of the machine. */
export function phaseOfSnapshot(s: { value: unknown }): DeploymentPhase {
  return phaseOf(s.value)
}

export function viewOf(s: { value: unknown; context: DeploymentContext }): DeploymentView {
  return toView(s.context, phaseOf(s.value))
}

export { finalPhases, type DeploymentContext, type DeploymentPhase, type DeploymentView } from './model.ts'

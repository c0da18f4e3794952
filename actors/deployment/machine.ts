// The life of one deployment, as an XState machine:
//   preparing -> bidding -> committing -> provisioning -> running <-> degraded -> completed | failed | stopped
// The orchestrator drives it with events; its snapshot (state + context) is what `noir status` shows and
// what is persisted. Context stays plain JSON so the snapshot is the checkpoint.
import { assign, createActor, setup, type SnapshotFrom } from 'xstate'

export type DeploymentPhase = 'preparing' | 'bidding' | 'committing' | 'provisioning' | 'running' | 'degraded' | 'completed' | 'failed' | 'stopped'
export const finalPhases: readonly DeploymentPhase[] = ['completed', 'failed', 'stopped']

export interface DeploymentContext {
  id: string
  kind: 'service' | 'job'
  /** Instances that should run at once (service replicas, job parallelism). */
  desired: number
  /** Job: successful runs needed. */
  completions: number
  /** Job: failed runs tolerated. */
  retries: number
  /** Commit rounds allowed before giving up (each round re-bids without the refusing nodes). */
  maxCommitRounds: number
  running: string[]
  succeeded: number
  failures: number
  commitRounds: number
  reason?: string
  /** Every phase entered, with the time (ms). */
  history: { phase: DeploymentPhase; at: number; note?: string }[]
}

export type DeploymentEvent =
  | { type: 'BID'; at: number }
  | { type: 'BIDS_CLOSED'; at: number; bids: number }
  | { type: 'INFEASIBLE'; at: number; reason: string }
  | { type: 'COMMITTED'; at: number; contracts: number }
  | { type: 'COMMIT_FAILED'; at: number; reason: string }
  | { type: 'REPLICA_RUNNING'; at: number; slot: string }
  | { type: 'REPLICA_DOWN'; at: number; slot: string; reason: string }
  | { type: 'REPLICA_SUCCEEDED'; at: number; slot: string }
  | { type: 'REPLICA_FAILED'; at: number; slot: string; reason: string }
  | { type: 'STOP'; at: number }
  | { type: 'FAIL'; at: number; reason: string }

export interface DeploymentInput {
  id: string
  kind: 'service' | 'job'
  desired: number
  completions?: number
  retries?: number
  maxCommitRounds?: number
  at: number
}

const without = (list: string[], slot: string): string[] => list.filter((s) => s !== slot)
const withSlot = (list: string[], slot: string): string[] => (list.includes(slot) ? list : [...list, slot])

export const deploymentMachine = setup({
  types: {
    context: {} as DeploymentContext,
    events: {} as DeploymentEvent,
    input: {} as DeploymentInput,
  },
  guards: {
    full: ({ context, event }) => event.type === 'REPLICA_RUNNING' && withSlot(context.running, event.slot).length >= context.desired,
    jobDone: ({ context, event }) => event.type === 'REPLICA_SUCCEEDED' && context.succeeded + 1 >= context.completions,
    retriesLeft: ({ context, event }) => event.type === 'REPLICA_FAILED' && context.failures + 1 <= context.retries,
    roundsLeft: ({ context }) => context.commitRounds + 1 < context.maxCommitRounds,
  },
  actions: {
    markRunning: assign({ running: ({ context, event }) => (event.type === 'REPLICA_RUNNING' ? withSlot(context.running, event.slot) : context.running) }),
    markDown: assign({
      running: ({ context, event }) =>
        event.type === 'REPLICA_DOWN' || event.type === 'REPLICA_FAILED' || event.type === 'REPLICA_SUCCEEDED' ? without(context.running, event.slot) : context.running,
    }),
    countSuccess: assign({ succeeded: ({ context }) => context.succeeded + 1 }),
    countFailure: assign({ failures: ({ context }) => context.failures + 1 }),
    countRound: assign({ commitRounds: ({ context }) => context.commitRounds + 1 }),
    noteReason: assign({ reason: ({ context, event }) => ('reason' in event ? event.reason : context.reason) }),
    clearRunning: assign({ running: () => [] }),
    record: assign({
      history: ({ context, event }, params: { phase: DeploymentPhase }) => [
        ...context.history,
        { phase: params.phase, at: 'at' in event ? event.at : Date.now(), ...('reason' in event ? { note: event.reason } : {}) },
      ],
    }),
  },
}).createMachine({
  id: 'deployment',
  context: ({ input }) => ({
    id: input.id,
    kind: input.kind,
    desired: input.desired,
    completions: input.completions ?? 1,
    retries: input.retries ?? 0,
    maxCommitRounds: input.maxCommitRounds ?? 5,
    running: [],
    succeeded: 0,
    failures: 0,
    commitRounds: 0,
    history: [{ phase: 'preparing', at: input.at }],
  }),
  initial: 'preparing',
  on: {
    STOP: { target: '.stopped' },
    FAIL: { target: '.failed', actions: 'noteReason' },
  },
  states: {
    preparing: { on: { BID: 'bidding' } },
    bidding: {
      entry: { type: 'record', params: { phase: 'bidding' } },
      on: {
        BIDS_CLOSED: 'committing',
        INFEASIBLE: { target: 'failed', actions: 'noteReason' },
      },
    },
    committing: {
      entry: { type: 'record', params: { phase: 'committing' } },
      on: {
        COMMITTED: 'provisioning',
        COMMIT_FAILED: [
          { guard: 'roundsLeft', target: 'bidding', actions: ['countRound', 'noteReason'] },
          { target: 'failed', actions: 'noteReason' },
        ],
      },
    },
    provisioning: {
      entry: { type: 'record', params: { phase: 'provisioning' } },
      on: {
        REPLICA_RUNNING: [{ guard: 'full', target: 'running', actions: 'markRunning' }, { actions: 'markRunning' }],
        REPLICA_DOWN: { actions: ['markDown', 'noteReason'] },
        REPLICA_SUCCEEDED: [{ guard: 'jobDone', target: 'completed', actions: ['markDown', 'countSuccess'] }, { actions: ['markDown', 'countSuccess'] }],
        REPLICA_FAILED: [
          { guard: 'retriesLeft', actions: ['markDown', 'countFailure', 'noteReason'] },
          { target: 'failed', actions: ['markDown', 'countFailure', 'noteReason'] },
        ],
      },
    },
    running: {
      entry: { type: 'record', params: { phase: 'running' } },
      on: {
        REPLICA_RUNNING: { actions: 'markRunning' },
        REPLICA_DOWN: { target: 'degraded', actions: ['markDown', 'noteReason'] },
        REPLICA_SUCCEEDED: [{ guard: 'jobDone', target: 'completed', actions: ['markDown', 'countSuccess'] }, { actions: ['markDown', 'countSuccess'] }],
        REPLICA_FAILED: [
          { guard: 'retriesLeft', target: 'degraded', actions: ['markDown', 'countFailure', 'noteReason'] },
          { target: 'failed', actions: ['markDown', 'countFailure', 'noteReason'] },
        ],
      },
    },
    degraded: {
      entry: { type: 'record', params: { phase: 'degraded' } },
      on: {
        REPLICA_RUNNING: [{ guard: 'full', target: 'running', actions: 'markRunning' }, { actions: 'markRunning' }],
        REPLICA_DOWN: { actions: ['markDown', 'noteReason'] },
        REPLICA_SUCCEEDED: [{ guard: 'jobDone', target: 'completed', actions: ['markDown', 'countSuccess'] }, { actions: ['markDown', 'countSuccess'] }],
        REPLICA_FAILED: [
          { guard: 'retriesLeft', actions: ['markDown', 'countFailure', 'noteReason'] },
          { target: 'failed', actions: ['markDown', 'countFailure', 'noteReason'] },
        ],
      },
    },
    completed: { type: 'final', entry: ['clearRunning', { type: 'record', params: { phase: 'completed' } }] },
    failed: { type: 'final', entry: ['clearRunning', { type: 'record', params: { phase: 'failed' } }] },
    stopped: { type: 'final', entry: ['clearRunning', { type: 'record', params: { phase: 'stopped' } }] },
  },
})

export type DeploymentSnapshot = SnapshotFrom<typeof deploymentMachine>

/** One deployment's machine, with the phase history kept in context and a typed `phase`. */
export class DeploymentStateMachine {
  readonly #actor
  constructor(input: DeploymentInput, persisted?: unknown) {
    this.#actor = createActor(deploymentMachine, persisted ? { input, snapshot: persisted as DeploymentSnapshot } : { input })
    this.#actor.start()
  }

  get phase(): DeploymentPhase {
    return this.#actor.getSnapshot().value as DeploymentPhase
  }

  get context(): DeploymentContext {
    return this.#actor.getSnapshot().context
  }

  get done(): boolean {
    return finalPhases.includes(this.phase)
  }

  /** Sends an event; returns whether it changed anything (an event the phase ignores returns false). */
  send(event: DeploymentEvent): boolean {
    const before = this.#actor.getSnapshot()
    if (!before.can(event)) return false
    this.#actor.send(event)
    return true
  }

  can(event: DeploymentEvent): boolean {
    return this.#actor.getSnapshot().can(event)
  }

  persisted(): unknown {
    return this.#actor.getPersistedSnapshot()
  }

  stop(): void {
    this.#actor.stop()
  }
}

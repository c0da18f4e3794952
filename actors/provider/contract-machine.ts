// The life of one contract on the provider side, as an XState v5 machine (one actor per contract, hosted
// by the market actor at `<did>/market/<contractId>`, market-actor.ts):
//
//   proposed --PROPOSE--> reserving --(reserved, countersigned)--> reserved --START--> starting --> running
//                             |                                   |  |                   |
//                             +--(refused: nothing written)       |  +--(TTL)--> expiring --> expired
//                                                                 +--(standby role)--> standby
//   reserved | standby | running --STOP | FENCE (lower epoch) | PROMOTED (standby)--> stopping --> ended | superseded
//   stopping --(the runner did not stop it)--> back where it was, with the failure
//   starting --(commit or start failed)--> refused   starting --(a higher epoch came first)--> superseded
//   running --STATUS (the instance ended)--> finishing --> ended
//   running --STATUS (any other state)--> recording --> running
//   reserved | standby | running --(no RENEW for the lease)--> stopping --> lease-expired
//
// Steps (reserve + countersign, commit + start, stop + release, ...) are invoked `fromPromise` children
// whose implementations come from the Provider's ports (ContractSteps, contract-steps.ts); each writes the
// contract's record to the ContractStore, which stays the durable truth. The context is plain JSON: the
// stored record (or the proposal before it exists) and what the machine needs between steps.
//
// One step at a time: what arrives while a step is in flight (a stop during the start, a status during a
// stop's write, a second start) is postponed, as gen_statem postpones, and taken again once the step
// settled; a request that started a step is answered when the step settles (deferred replies).
import { assign, enqueueActions, fromPromise, setup } from 'xstate'
import { defineActor, type ActorDefinition, type MessageContext } from '../../core/index.ts'
import type { Contract, ContractTerms } from '../contracts/contract.ts'
import type { ContractStatus, StoredContract } from '../contracts/store.ts'
import { ContractNotFoundError, InvalidTermsError, LeaseExpiredError, OrchestrationError, ReservationFailedError } from '../errors.ts'
import type { Workload } from '../workload/workload.ts'
import type { InstanceStatus, LogEntry } from './ports.ts'

/** What the provider tells a consumer's orchestrator when an instance changes state. */
export interface ReplicaReport {
  contractId: string
  deploymentId: string
  slot: string
  epoch: number
  node: string
  state: InstanceStatus['state']
  code?: number | null
  reason?: string
  at: number
}

/** Behaviors of a contract actor: local only (the market actor routes to them; spec/orchestration.md). */
export const ContractBehavior = {
  propose: '/noir/contract/propose',
  start: '/noir/contract/start',
  stop: '/noir/contract/stop',
  logs: '/noir/contract/logs',
  fence: '/noir/contract/fence',
  /** A replica of the standby's deployment was proposed to this node: the standby gives its hold back. */
  promoted: '/noir/contract/promoted',
  /** A status of the contract's instance, from the runner. */
  instance: '/noir/contract/instance',
  /** The consumer renewed the lease (the market checked who sent it): a tell. */
  renew: '/noir/contract/renew',
} as const

/** A request to a contract; `from` is the DID the market verified as the sender. */
export type ContractRequest =
  | { type: 'PROPOSE'; contract: Contract; from: string }
  /** `restore`: start from this state archive (a migration or a failover from a checkpoint; spec/migration.md). */
  | { type: 'START'; from: string; restore?: { digest: string; from: string[] } }
  | { type: 'STOP'; from: string }
  | { type: 'LOGS'; from: string; since: number; limit: number }
  /** `outranked`: the market found this copy below the fence though its epoch is not lower (another contract named at that epoch, or made by an orchestrator the sender took over from). */
  | { type: 'FENCE'; from: string; epoch: number; outranked?: boolean }
  | { type: 'PROMOTED' }

/** Where a request's answer goes (the ask's MessageContext, or anything with the same two methods). */
export type Reply = Pick<MessageContext, 'respond' | 'fail'>

export type ContractEvent = (ContractRequest & { reply: Reply }) | { type: 'STATUS'; status: InstanceStatus } | { type: 'RENEW' }

export const requestBehavior: Record<ContractRequest['type'], string> = {
  PROPOSE: ContractBehavior.propose, START: ContractBehavior.start, STOP: ContractBehavior.stop, LOGS: ContractBehavior.logs,
  FENCE: ContractBehavior.fence, PROMOTED: ContractBehavior.promoted,
}

/** How a contract ends when it is stopped: by its consumer, a fence, the promotion of a standby, or its lease running out. */
export interface Ending {
  as: 'ended' | 'superseded' | 'lease-expired'
  note: string
}

export interface ContractContext {
  /** The contract as stored (spec/contracts.md "Storage"); null until the reservation is written. */
  record: StoredContract | null
  /** The consumer's proposal, until the reservation countersigned it. */
  proposal: { contract: Contract; workload: Workload } | null
  /** When a reservation not yet started lapses (ms); null once committed or ended. */
  reservedUntil: number | null
  /** The stop in progress. */
  ending: Ending | null
  /** The instance status being recorded (`recording`) or that ended the work (`finishing`). */
  change: InstanceStatus | null
  /** The last failure of a step, `Name: message` (a stop the runner refused, a start that failed...). */
  failure: string | null
  /** The lease (ms): without a renewal for this long the work is stopped and the hold released. */
  leaseMs: number
  /**
   * When the lease was last renewed, on the provider's own monotonic clock (`ContractSteps.leaseClock`), never
   * a time from the consumer's message: skew between the two clocks does not shorten or stretch a lease. A
   * contract taken up after a restart of the node starts with a full lease.
   */
  renewedAt: number
}

/**
 * `leaseUsedMs`: taken up after a restart of the node, the part of its lease already gone: the time the node was
 * down (spec/contracts.md "Leases"); the lease runs out at once when that is more than the lease.
 */
export type ContractInput = { record: StoredContract; leaseUsedMs?: number } | { proposal: { contract: Contract; workload: Workload } }

/** What a step reports: the record it wrote, and why it failed when it did (the record says what is left). */
export interface StepOutcome {
  record: StoredContract
  error?: Error
}

/** The steps, implemented from the Provider's ports (contract-steps.ts); a unit test scripts them. */
/** The steps that are crash boundaries (each before and after). */
export const CONTRACT_STEPS = ['reserve', 'start', 'stop', 'finish', 'expire'] as const

export interface ContractSteps {
  now(): number
  /** The monotonic clock leases are measured on (ms; `performance.now()` in a daemon). */
  leaseClock(): number
  /** The lease of a contract whose terms name none (made before leases). */
  defaultLeaseMs: number
  /** How long a reservation waits for `start` before it expires. */
  reservationTtlMs: number
  /**
   * Phase one: the slot's epoch is checked, the consumer's standby for the deployment gives its hold back (a
   * replica), the capacity is reserved, the epoch raised, the contract countersigned (a standby commits its
   * hold at once) and written. Rejects with the typed refusal; nothing is written then.
   */
  reserve(i: { contract: Contract; workload: Workload }): Promise<StoredContract>
  /** Phase two: commit and start the runner (the instance is followed), written `active`; or what it wrote instead and why. */
  start(record: StoredContract): Promise<StepOutcome>
  /** Stops the instance (if any) and releases the hold, written as `as`; if the runner failed, the note it wrote and StopFailedError. */
  stop(i: { record: StoredContract } & Ending): Promise<StepOutcome>
  /** The instance ended by itself: the hold released, written `ended`. */
  finish(i: { record: StoredContract; status: InstanceStatus }): Promise<StoredContract>
  /** The reservation was never started: released, written `expired`. */
  expire(record: StoredContract): Promise<StoredContract>
  /** Writes an instance state change. */
  record(i: { record: StoredContract; status: InstanceStatus }): Promise<StoredContract>
  logs(instanceId: string, o: { since: number; limit: number }): Promise<{ lines: LogEntry[]; ended: boolean }>
  /** Fire and forget: a report to the consumer's orchestrator. */
  report(consumer: string, r: ReplicaReport): void
  /** After a restart: follow the instance again (its statuses come to this actor) and ask the runner to re-attach it. */
  resume(instanceId: string, contractId: string): void
  /** The instance's statuses no longer concern anyone. */
  unfollow(instanceId: string): void
  log(msg: string, fields?: Record<string, unknown>): void
}

export const liveStatuses: readonly ContractStatus[] = ['reserved', 'standby', 'active']
export const isLive = (s: ContractStatus): boolean => liveStatuses.includes(s)
export const endsInstance = (s: InstanceStatus['state']): boolean => s === 'exited' || s === 'failed' || s === 'stopped'
const errorText = (err: unknown): string => (err instanceof Error ? `${err.name}: ${err.message}` : String(err))
const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)))

const termsOf = (c: ContractContext): ContractTerms => (c.record?.contract ?? c.proposal!.contract).terms
/** After a stop that failed, the lease's next try waits this long (not a tight loop of failing stops). */
const LEASE_RETRY_MS = 1000

function reservedUntil(r: StoredContract, ttlMs: number): number | null {
  return r.status === 'reserved' ? r.updatedAt + ttlMs : null
}

export function reportOf(t: ContractTerms, st: InstanceStatus): ReplicaReport {
  return {
    contractId: t.id, deploymentId: t.deploymentId, slot: t.slot, epoch: t.epoch, node: t.provider, state: st.state,
    ...(st.code !== undefined ? { code: st.code } : {}), ...(st.reason ? { reason: st.reason } : {}), at: st.at,
  }
}

/**
 * The answer a contract gives from its record alone: when it has no step to take (a final state, or no actor
 * because it ended before), and for what needs no step (logs, a start of a running contract). Also checks
 * that a request comes from the contract's consumer, and ContractNotFoundError when there is no record.
 */
export async function answerFromRecord(
  id: string, record: StoredContract | null | undefined, req: ContractRequest,
  logs: (instanceId: string, o: { since: number; limit: number }) => Promise<{ lines: LogEntry[]; ended: boolean }>,
): Promise<unknown> {
  if (!record) throw new ContractNotFoundError(`no contract ${id} on this node`)
  const t = record.contract.terms
  if ('from' in req && req.from !== t.consumer) throw new OrchestrationError(`only the consumer of ${id} may do that`)
  switch (req.type) {
    case 'PROPOSE':
      if (req.contract?.consumerSig === record.contract.consumerSig && isLive(record.status)) return record.contract
      throw new InvalidTermsError(`contract ${id} was proposed before; it is ${record.status}`)
    case 'START':
      if (record.status === 'active' && record.instanceId) return { instanceId: record.instanceId }
      if (record.status === 'expired') throw new ReservationFailedError(`reservation for ${id} expired before the start`)
      if (record.status === 'lease-expired') throw new LeaseExpiredError(`the lease of contract ${id} ran out: ${record.note ?? 'no renewal'}`)
      throw new InvalidTermsError(`contract ${id} is ${record.status}, not reserved`)
    case 'STOP':
      return { stopped: true }
    case 'LOGS':
      if (!record.instanceId) return { lines: [], ended: record.status !== 'reserved' }
      return logs(record.instanceId, { since: req.since, limit: req.limit })
    case 'FENCE':
      return { stopped: false }
    case 'PROMOTED':
      return { ended: record.status !== 'standby' }
  }
}

/** A held reply and how to answer it from the record the step wrote. */
interface Held {
  reply: Reply
  answer(record: StoredContract): unknown
}

/**
 * The machine of one contract. Build one per actor: it keeps the replies waiting for the step in flight
 * and the events postponed until it settles (not JSON, so not in the context).
 */
export function contractMachine(steps: ContractSteps) {
  const held: Held[] = []
  const postponed: ContractEvent[] = []
  const hold = (reply: Reply, answer: Held['answer']): void => void held.push({ reply, answer })
  const settleHeld = (record: StoredContract | null, error?: Error): void => {
    for (const h of held.splice(0)) {
      if (error || !record) h.reply.fail(error ?? new ContractNotFoundError('the contract was not reserved'))
      else h.reply.respond(h.answer(record))
    }
  }
  const answer = (c: ContractContext, e: ContractEvent): void => {
    if (e.type === 'STATUS' || e.type === 'RENEW') return
    answerFromRecord(termsOf(c).id, c.record, e, (i, o) => steps.logs(i, o)).then((v) => e.reply.respond(v ?? null), (err: unknown) => e.reply.fail(asError(err)))
  }
  const reqOf = (e: ContractEvent): ContractRequest & { reply: Reply } => e as ContractRequest & { reply: Reply }
  /** Events a busy state keeps for later. */
  const later = {
    PROPOSE: { actions: 'postpone' }, START: { actions: 'postpone' }, STOP: { actions: 'postpone' }, LOGS: { actions: 'postpone' },
    FENCE: { actions: 'postpone' }, PROMOTED: { actions: 'postpone' }, STATUS: { actions: 'postpone' },
  } as const
  const stranger = { guard: 'stranger', actions: 'answer' } as const
  /** The lease ran out: the work stops and the hold is released (written `lease-expired`). */
  const leaseOut = { target: 'stopping', actions: 'beginLeaseEnd' } as const
  const stopByConsumer = {
    target: 'stopping',
    actions: [{ type: 'holdEnd', params: { answer: { stopped: true } } }, { type: 'beginEnd', params: { as: 'ended', note: 'stopped by the consumer' } }],
  } as const

  return setup({
    types: {
      context: {} as ContractContext,
      events: {} as ContractEvent,
      input: {} as ContractInput,
    },
    actors: {
      reserve: fromPromise<StoredContract, { contract: Contract; workload: Workload }>(({ input }) => steps.reserve(input)),
      start: fromPromise<StepOutcome, StoredContract>(({ input }) => steps.start(input)),
      stop: fromPromise<StepOutcome, { record: StoredContract } & Ending>(({ input }) => steps.stop(input)),
      finish: fromPromise<StoredContract, { record: StoredContract; status: InstanceStatus }>(({ input }) => steps.finish(input)),
      expire: fromPromise<StoredContract, StoredContract>(({ input }) => steps.expire(input)),
      record: fromPromise<StoredContract, { record: StoredContract; status: InstanceStatus }>(({ input }) => steps.record(input)),
    },
    delays: {
      reservation: ({ context }) => Math.max(0, (context.reservedUntil ?? 0) - steps.now()),
      lease: ({ context }) => Math.max(context.failure ? LEASE_RETRY_MS : 0, context.renewedAt + context.leaseMs - steps.leaseClock()),
    },
    guards: {
      /** A request from anyone but the contract's consumer (answered with OrchestrationError). */
      stranger: ({ context, event }) => 'from' in event && event.from !== termsOf(context).consumer,
      sameProposal: ({ context, event }) => event.type === 'PROPOSE' && event.contract?.consumerSig === (context.record?.contract ?? context.proposal!.contract).consumerSig,
      lowerEpoch: ({ context, event }) => event.type === 'FENCE' && (termsOf(context).epoch < event.epoch || event.outranked === true),
      endsInstance: ({ event }) => event.type === 'STATUS' && endsInstance(event.status.state),
      isStandbyRecord: ({ event }) => (event as unknown as { output: StoredContract }).output.status === 'standby',
      stepFailed: ({ event }) => (event as unknown as { output: StepOutcome }).output.error !== undefined,
      endingSuperseded: ({ context }) => context.ending?.as === 'superseded',
      endingLeaseExpired: ({ context }) => context.ending?.as === 'lease-expired',
      leaseExpired: ({ context }) => context.record?.status === 'lease-expired',
      noRecord: ({ context }) => context.record === null,
      active: ({ context }) => context.record?.status === 'active',
      activeWithInstance: ({ context }) => context.record?.status === 'active' && Boolean(context.record.instanceId),
      standby: ({ context }) => context.record?.status === 'standby',
      reserved: ({ context }) => context.record?.status === 'reserved',
      superseded: ({ context }) => context.record?.status === 'superseded',
      refused: ({ context }) => context.record?.status === 'refused',
      expired: ({ context }) => context.record?.status === 'expired',
    },
    actions: {
      postpone: ({ event }) => void postponed.push(event),
      /** Takes the postponed events again, in order (a stable state's entry). */
      replay: enqueueActions(({ enqueue }) => {
        for (const e of postponed.splice(0)) enqueue.raise(e)
      }),
      /** A final state answers what waited for it from the final record. */
      answerPostponed: ({ context }) => {
        for (const e of postponed.splice(0)) answer(context, e)
      },
      answer: ({ context, event }) => answer(context, event),
      unfollow: ({ context }) => {
        if (context.record?.instanceId) steps.unfollow(context.record.instanceId)
      },
      resume: ({ context }) => steps.resume(context.record!.instanceId!, context.record!.contract.terms.id),
      otherProposal: ({ context, event }) => reqOf(event).reply.fail(new InvalidTermsError(`contract ${termsOf(context).id} is being proposed with other terms`)),
      holdProposal: ({ event }) => hold(reqOf(event).reply, (r) => r.contract),
      holdStart: ({ event }) => hold(reqOf(event).reply, (r) => ({ instanceId: r.instanceId })),
      /** The state archive a start restores travels in the record (written with it when the start settles). */
      takeRestore: assign(({ context, event }) => (event.type === 'START' && event.restore && context.record ? { record: { ...context.record, restore: event.restore } } : {})),
      /** The request that asks for a stop gets `answer` once it is done. */
      holdEnd: ({ event }, params: { answer: unknown }) => hold(reqOf(event).reply, () => params.answer),
      beginEnd: assign((_, params: Ending) => ({ ending: { as: params.as, note: params.note } })),
      renew: assign(() => ({ renewedAt: steps.leaseClock() })),
      beginLeaseEnd: assign(({ context }) => ({
        ending: { as: 'lease-expired' as const, note: `lease expired: no renewal from the consumer for ${Math.round(steps.leaseClock() - context.renewedAt)} ms (lease ${context.leaseMs} ms)` },
      })),
      beginFence: assign(({ event }) => (event.type === 'FENCE' ? { ending: { as: 'superseded' as const, note: `fenced: slot is at epoch ${event.epoch}` } } : {})),
      /** The reservation settled: the replies waiting for it get the countersigned contract. */
      answerReserved: ({ event }) => settleHeld((event as unknown as { output: StoredContract }).output),
      /** A start or stop settled: the replies waiting for it get its answer, or why it failed. */
      answerOutcome: ({ event }) => {
        const out = (event as unknown as { output: StepOutcome }).output
        settleHeld(out.record, out.error)
      },
      /** A step threw (a refused proposal; a store write that failed): the replies waiting for it learn why. */
      answerError: ({ context, event }) => {
        const error = asError((event as unknown as { error: unknown }).error)
        if (context.record) steps.log('contract step failed', { contractId: termsOf(context).id, error: error.name, message: error.message })
        settleHeld(null, error)
      },
      takeReserved: assign(({ event }) => {
        const record = (event as unknown as { output: StoredContract }).output
        return { record, proposal: null, reservedUntil: reservedUntil(record, steps.reservationTtlMs), failure: null }
      }),
      takeOutcome: assign(({ context, event }) => {
        const out = (event as unknown as { output: StepOutcome }).output
        return {
          record: out.record, reservedUntil: reservedUntil(out.record, steps.reservationTtlMs),
          failure: out.error ? errorText(out.error) : null, ending: out.error ? null : context.ending,
        }
      }),
      takeRecord: assign(({ event }) => {
        const record = (event as unknown as { output: StoredContract }).output
        return { record, reservedUntil: reservedUntil(record, steps.reservationTtlMs) }
      }),
      /** The record stays as it was; the failure is noted. */
      noteError: assign(({ event }) => ({ failure: errorText((event as unknown as { error: unknown }).error), ending: null })),
      noteChange: assign(({ event }) => (event.type === 'STATUS' ? { change: event.status } : {})),
      report: ({ context }) => {
        if (context.change) steps.report(termsOf(context).consumer, reportOf(termsOf(context), context.change))
      },
      clearChange: assign({ change: null }),
    },
  }).createMachine({
    id: 'contract',
    context: ({ input }) => {
      const terms = ('record' in input ? input.record.contract : input.proposal.contract).terms
      const used = 'record' in input && typeof input.leaseUsedMs === 'number' && input.leaseUsedMs > 0 ? input.leaseUsedMs : 0
      const lease = { leaseMs: terms.leaseMs ?? steps.defaultLeaseMs, renewedAt: steps.leaseClock() - used }
      return 'record' in input
        ? { record: input.record, proposal: null, reservedUntil: reservedUntil(input.record, steps.reservationTtlMs), ending: null, change: null, failure: null, ...lease }
        : { record: null, proposal: input.proposal, reservedUntil: null, ending: null, change: null, failure: null, ...lease }
    },
    initial: 'restoring',
    // What a state does not take itself is answered from the record (a start of a standby, logs, ...).
    on: {
      PROPOSE: { actions: 'answer' },
      START: { actions: 'answer' },
      STOP: { actions: 'answer' },
      LOGS: { actions: 'answer' },
      FENCE: { actions: 'answer' },
      PROMOTED: { actions: 'answer' },
      // A renewal while a step is in flight is noted; the lease's timer runs in the stable states.
      RENEW: { actions: 'renew' },
    },
    states: {
      /** Where a contract spawned from its record (after a restart) stands. */
      restoring: {
        always: [
          { guard: 'noRecord', target: 'proposed' },
          { guard: 'activeWithInstance', target: 'resuming' },
          { guard: 'active', target: 'running' },
          { guard: 'standby', target: 'standby' },
          { guard: 'reserved', target: 'reserved' },
          { guard: 'superseded', target: 'superseded' },
          { guard: 'refused', target: 'refused' },
          { guard: 'expired', target: 'expired' },
          { guard: 'leaseExpired', target: 'leaseExpired' },
          { target: 'ended' },
        ],
      },
      resuming: {
        entry: 'resume',
        always: 'running',
      },
      proposed: {
        on: { ...later, PROPOSE: [stranger, { target: 'reserving', actions: 'holdProposal' }] },
      },
      reserving: {
        on: { ...later, PROPOSE: [stranger, { guard: 'sameProposal', actions: 'holdProposal' }, { actions: 'otherProposal' }] },
        invoke: {
          src: 'reserve',
          input: ({ context }) => context.proposal!,
          onDone: [
            { guard: 'isStandbyRecord', target: 'standby', actions: ['takeReserved', 'answerReserved'] },
            { target: 'reserved', actions: ['takeReserved', 'answerReserved'] },
          ],
          onError: { target: 'refused', actions: ['noteError', 'answerError'] },
        },
      },
      reserved: {
        entry: 'replay',
        after: { reservation: 'expiring', lease: leaseOut },
        on: {
          RENEW: { target: 'reserved', reenter: true, actions: 'renew' },
          START: [stranger, { target: 'starting', actions: ['holdStart', 'takeRestore'] }],
          STOP: [stranger, stopByConsumer],
          FENCE: [stranger, { guard: 'lowerEpoch', target: 'stopping', actions: [{ type: 'holdEnd', params: { answer: { stopped: true } } }, 'beginFence'] }, { actions: 'answer' }],
        },
      },
      standby: {
        entry: 'replay',
        after: { lease: leaseOut },
        on: {
          RENEW: { target: 'standby', reenter: true, actions: 'renew' },
          STOP: [stranger, stopByConsumer],
          FENCE: [stranger, { guard: 'lowerEpoch', target: 'stopping', actions: [{ type: 'holdEnd', params: { answer: { stopped: true } } }, 'beginFence'] }, { actions: 'answer' }],
          PROMOTED: { target: 'stopping', actions: [{ type: 'holdEnd', params: { answer: { ended: true } } }, { type: 'beginEnd', params: { as: 'ended', note: 'promoted to replica' } }] },
        },
      },
      starting: {
        on: later,
        invoke: {
          src: 'start',
          input: ({ context }) => context.record!,
          onDone: [
            { guard: 'stepFailed', target: 'judging', actions: ['takeOutcome', 'answerOutcome'] },
            { target: 'running', actions: ['takeOutcome', 'answerOutcome'] },
          ],
          onError: { target: 'judging', actions: ['noteError', 'answerError'] },
        },
      },
      running: {
        entry: 'replay',
        after: { lease: leaseOut },
        on: {
          RENEW: { target: 'running', reenter: true, actions: 'renew' },
          START: [stranger, { actions: 'answer' }],
          STOP: [stranger, stopByConsumer],
          FENCE: [stranger, { guard: 'lowerEpoch', target: 'stopping', actions: [{ type: 'holdEnd', params: { answer: { stopped: true } } }, 'beginFence'] }, { actions: 'answer' }],
          STATUS: [
            { guard: 'endsInstance', target: 'finishing', actions: 'noteChange' },
            { target: 'recording', actions: 'noteChange' },
          ],
        },
      },
      recording: {
        on: later,
        invoke: {
          src: 'record',
          input: ({ context }) => ({ record: context.record!, status: context.change! }),
          onDone: { target: 'running', actions: ['takeRecord', 'report', 'clearChange'] },
          onError: { target: 'running', actions: ['noteError', 'answerError', 'report', 'clearChange'] },
        },
      },
      finishing: {
        on: later,
        invoke: {
          src: 'finish',
          input: ({ context }) => ({ record: context.record!, status: context.change! }),
          onDone: { target: 'ended', actions: ['takeRecord', 'report'] },
          onError: { target: 'ended', actions: ['noteError', 'answerError', 'report'] },
        },
      },
      stopping: {
        // The instance's own `stopped` is this stop's doing, not news for the consumer.
        on: { ...later, STATUS: {} },
        invoke: {
          src: 'stop',
          input: ({ context }) => ({ record: context.record!, ...context.ending! }),
          onDone: [
            { guard: 'stepFailed', target: 'judging', actions: ['takeOutcome', 'answerOutcome'] },
            { guard: 'endingSuperseded', target: 'superseded', actions: ['takeOutcome', 'answerOutcome'] },
            { guard: 'endingLeaseExpired', target: 'leaseExpired', actions: ['takeOutcome', 'answerOutcome'] },
            { target: 'ended', actions: ['takeOutcome', 'answerOutcome'] },
          ],
          onError: { target: 'judging', actions: ['noteError', 'answerError'] },
        },
      },
      expiring: {
        on: later,
        invoke: {
          src: 'expire',
          input: ({ context }) => context.record!,
          onDone: { target: 'expired', actions: 'takeRecord' },
          onError: { target: 'expired', actions: ['noteError', 'answerError'] },
        },
      },
      /** After a step that did not end the contract the way it meant to: where its record says it is. */
      judging: {
        always: [
          { guard: 'active', target: 'running' },
          { guard: 'standby', target: 'standby' },
          { guard: 'reserved', target: 'reserved' },
          { guard: 'superseded', target: 'superseded' },
          { guard: 'expired', target: 'expired' },
          { guard: 'refused', target: 'refused' },
          { guard: 'leaseExpired', target: 'leaseExpired' },
          { target: 'ended' },
        ],
      },
      ended: { type: 'final', entry: ['unfollow', 'answerPostponed'] },
      superseded: { type: 'final', entry: ['unfollow', 'answerPostponed'] },
      refused: { type: 'final', entry: ['unfollow', 'answerPostponed'] },
      expired: { type: 'final', entry: ['unfollow', 'answerPostponed'] },
      leaseExpired: { type: 'final', entry: ['unfollow', 'answerPostponed'] },
    },
  })
}

export type ContractMachine = ReturnType<typeof contractMachine>

/**
 * The contract actor: the machine hosted on an ActorSystem. Its behaviors are local only (the market actor
 * routes to them after it verified the sender); a crashed contract actor is not restarted from its spawn
 * input: the market spawns it again from its record on the next message for it.
 */
export function contractActor(steps: ContractSteps): ActorDefinition {
  type Body<T> = Omit<T, 'type' | 'reply'>
  return defineActor(() => contractMachine(steps)).with({
    name: 'noir-contract',
    restart: 'temporary',
    behaviors: {
      [ContractBehavior.propose]: { deferred: true, event: (b: Body<Extract<ContractRequest, { type: 'PROPOSE' }>>, msg: MessageContext) => ({ type: 'PROPOSE' as const, contract: b.contract, from: b.from, reply: msg }) },
      [ContractBehavior.start]: { deferred: true, event: (b: { from: string; restore?: { digest: string; from: string[] } }, msg: MessageContext) => ({ type: 'START' as const, from: b.from, ...(b.restore ? { restore: b.restore } : {}), reply: msg }) },
      [ContractBehavior.stop]: { deferred: true, event: (b: { from: string }, msg: MessageContext) => ({ type: 'STOP' as const, from: b.from, reply: msg }) },
      [ContractBehavior.logs]: { deferred: true, event: (b: { from: string; since: number; limit: number }, msg: MessageContext) => ({ type: 'LOGS' as const, from: b.from, since: b.since, limit: b.limit, reply: msg }) },
      [ContractBehavior.fence]: { deferred: true, event: (b: { from: string; epoch: number; outranked?: boolean }, msg: MessageContext) => ({ type: 'FENCE' as const, from: b.from, epoch: b.epoch, outranked: b.outranked === true, reply: msg }) },
      [ContractBehavior.promoted]: { deferred: true, event: (_b: unknown, msg: MessageContext) => ({ type: 'PROMOTED' as const, reply: msg }) },
      [ContractBehavior.instance]: { event: (b: { status: InstanceStatus }) => ({ type: 'STATUS' as const, status: b.status }) },
      [ContractBehavior.renew]: { event: () => ({ type: 'RENEW' as const }) },
    },
  })
}

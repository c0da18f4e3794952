// The market actor on a node's ActorSystem, the provider side of the market:
//   <did>/market                 bids, proposals, and the door to the contracts: routes each request to its contract
//   <did>/market/<contractId>    one contract actor each (contract-machine.ts): owns the contract's life
// A small XState machine whose data events are handled by actions given at definition time; answers are
// deferred (sent when the bid, or the contract actor's step, settles), so the mailbox stays the single way in.
// A contract without an actor is one that ended (its actor finished) or one this node takes up again: a live
// record gets its actor spawned from the record, a final one is answered from it (answerFromRecord).
// The market is open (behaviors are public, as a marketplace must be): what binds is the signature on each
// bid and contract, and every operation on a contract checks that the sender is that contract's consumer.
import { setup } from 'xstate'
import {
  ActorNotFoundError, ActorStoppedError, NameTakenError, checkName, defineActor, registerErrorClass,
  type ActorContext, type ActorDefinition, type ActorRef, type MessageContext,
} from '../../core/index.ts'
import { parseAddress } from '../../identity/address.ts'
import type { SignedBid, SignedDecline } from '../bidding/messages.ts'
import type { Contract } from '../contracts/contract.ts'
import type { ContractStore, StoredContract } from '../contracts/store.ts'
import * as errors from '../errors.ts'
import { CheckpointUnavailableError, ContractNotFoundError, InvalidTermsError, OrchestrationError, UnknownSlotError } from '../errors.ts'
import { MarketBehavior } from '../orchestrator/protocol.ts'
import { ARTIFACT_DIGEST, type Workload } from '../workload/workload.ts'
import { ContractBehavior, answerFromRecord, isLive, requestBehavior, type ContractRequest } from './contract-machine.ts'
import { MAX_EPOCH, epochKey, validEpoch } from './contract-steps.ts'
import type { InstanceStatus, LogEntry } from './ports.ts'
import { HandedOverError } from '../errors.ts'
import type { Handover, OrchestratorAuthority } from './orchestrator-authority.ts'
import { LeaseDesk, type LeaseState } from './leases.ts'

for (const value of Object.values(errors)) {
  // Each class's `name` equals its class name, so a remote caller gets the same class back.
  if (typeof value === 'function' && value.prototype instanceof Error) registerErrorClass(value as never)
}

export type BidAnswer = { bid: SignedBid } | { decline: SignedDecline }

/** What the market actor is given by the Provider. */
export interface MarketDeps {
  /** Answers a signed bid request (the same answer for the same request, however it arrived). */
  bid(body: unknown): Promise<BidAnswer>
  /** Checks a proposal against this node and its own bids; throws the typed refusal. */
  checkProposal(body: unknown, from: string): { contract: Contract; workload: Workload }
  contracts: ContractStore
  /** The definition of a contract actor (contract-machine.ts `contractActor`). */
  contractActor: ActorDefinition
  logs(instanceId: string, o: { since: number; limit: number }): Promise<{ lines: LogEntry[]; ended: boolean }>
  log(msg: string, fields?: Record<string, unknown>): void
  /** Who acts for a consumer's deployment: the consumer, or its standby orchestrator after a handover. */
  authority: OrchestratorAuthority
  /** The lease a contract's actor holds (leases.ts). */
  lease(contractId: string): LeaseState | undefined
  /** Quiesces a contract's instance and archives its state (a migration); absent: this node cannot. */
  checkpoint?(instanceId: string, o: { live: boolean }): Promise<{ digest: string; bytes: number }>
  /** Readies a reserved contract's instance ahead of its start (a migration's handover); absent: never warm. */
  prewarm?(o: { contractId: string; slot: string; workload: Workload; reservationId: string; consumer?: string }): Promise<{ warm: boolean }>
}

/** How long the market waits for a contract actor's answer (a stop waits for the runner's grace and more). */
const RELAY_TIMEOUT_MS = 10 * 60_000

type MarketEvent =
  | { type: 'bid'; body: unknown; msg: MessageContext }
  | { type: 'propose'; body: unknown; from: string; msg: MessageContext }
  | { type: 'request'; contractId: unknown; request: ContractRequest; msg: MessageContext }
  | { type: 'fence'; fence: unknown; from: string; msg: MessageContext }
  | { type: 'adopt'; record: StoredContract; leaseUsedMs?: number }
  | { type: 'instance'; contractId: string; status: InstanceStatus }
  | { type: 'promote'; contractId: string; msg: MessageContext }
  | { type: 'handover'; body: unknown; from: string; msg: MessageContext }
  | { type: 'renew'; body: unknown; from: string; msg: MessageContext }
  | { type: 'contractsOf'; body: unknown; from: string; msg: MessageContext }
  | { type: 'checkpoint'; body: unknown; from: string; msg: MessageContext }
  | { type: 'prewarm'; body: unknown; from: string; msg: MessageContext }

const senderDid = (msg: MessageContext): string => parseAddress(msg.from).did
const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)))
const errorText = (err: unknown): string => (err instanceof Error ? `${err.name}: ${err.message}` : String(err))
const answer = (msg: MessageContext, p: Promise<unknown>): void => {
  p.then((v) => msg.respond(v ?? null), (err: unknown) => msg.fail(asError(err)))
}

/** A contract id names its actor: it must be an actor name (a UUID is). */
export function isContractName(id: unknown): id is string {
  try {
    checkName(id as string)
    return true
  } catch {
    return false
  }
}

function marketMachine(ctx: ActorContext, deps: MarketDeps) {
  const pathOf = (id: string): string => `${ctx.self}/${id}`
  const spawn = (id: string, input: unknown): ActorRef => {
    try {
      return ctx.spawnChild(deps.contractActor, { name: id, input })
    } catch (err) {
      const ref = err instanceof NameTakenError ? ctx.lookup(pathOf(id)) : undefined
      if (ref) return ref
      throw err
    }
  }

  /** The contract's actor (spawned from its record if it is live, or for a new proposal), or its final record. */
  async function target(id: string, proposal?: { contract: Contract; workload: Workload }): Promise<{ ref: ActorRef } | { record: StoredContract | undefined }> {
    const ref = ctx.lookup(pathOf(id))
    if (ref) return { ref }
    const record = await deps.contracts.get(id, 'provider')
    const now = ctx.lookup(pathOf(id)) // spawned while the record was read
    if (now) return { ref: now }
    if (record && record.side === 'provider' && isLive(record.status)) return { ref: spawn(id, { record }) }
    if (!record && proposal) return { ref: spawn(id, { proposal }) }
    return { record }
  }

  /** Renewals are told to each contract's actor (spawned from its record if it has none). */
  const leases = new LeaseDesk({
    contracts: deps.contracts,
    authority: deps.authority,
    lease: (id) => deps.lease(id),
    renew: (record) => {
      const id = record.contract.terms.id
      target(id).then(
        (t) => ('ref' in t ? ctx.tell(t.ref, ContractBehavior.renew, {}) : undefined),
      ).catch((err: unknown) => deps.log('lease renewal not delivered', { contractId: id, error: errorText(err) }))
    },
  })

  /** Asks the contract's actor; a contract with no actor left is answered from its record. */
  async function route(id: string, req: ContractRequest, proposal?: { contract: Contract; workload: Workload }): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      const t = await target(id, proposal)
      if (!('ref' in t)) return answerFromRecord(id, t.record, req, deps.logs)
      try {
        return await ctx.ask(t.ref, requestBehavior[req.type], req, { timeoutMs: RELAY_TIMEOUT_MS })
      } catch (err) {
        // It finished between the lookup and the delivery: its record has the answer now.
        if (attempt === 0 && (err instanceof ActorStoppedError || err instanceof ActorNotFoundError)) continue
        throw err
      }
    }
  }

  /**
   * The request as its contract judges it: a standby orchestrator that took the contract's deployment over
   * acts as the consumer; the consumer itself, once its deployment was handed over, is refused
   * (HandedOverError). Anyone else goes on as they are (the contract refuses a stranger).
   */
  async function authorized(id: string, req: ContractRequest): Promise<ContractRequest> {
    if (!('from' in req) || req.type === 'PROPOSE') return req
    const record = await deps.contracts.get(id, 'provider')
    const t = record?.contract.terms
    if (!t) return req
    const acts = await deps.authority.acts(t.consumer, t.deploymentId, req.from)
    if (req.from === t.consumer) {
      if (!acts) throw new HandedOverError(`deployment ${t.deploymentId} of contract ${id} is orchestrated by its standby now`)
      return req
    }
    return acts ? { ...req, from: t.consumer } : req
  }

  /**
   * A migration's checkpoint (spec/migration.md): the consumer (or the standby orchestrator acting for it)
   * asks that a running contract's instance be quiesced and its state archived as an artifact. Anyone else,
   * a contract that is not running here, or a node that cannot checkpoint is answered with a typed error.
   * The instance stops (its contract ends through its actor, as an instance that stopped); asked again, the
   * same archive is answered.
   */
  async function checkpoint(body: unknown, from: string): Promise<{ digest: string; bytes: number }> {
    const b = body as { contractId?: unknown; live?: unknown } | null
    const id = b?.contractId
    if (!isContractName(id)) throw new ContractNotFoundError(`no contract ${String(id).slice(0, 200)} on this node`)
    const record = await deps.contracts.get(id, 'provider')
    if (!record || record.side !== 'provider') throw new ContractNotFoundError(`no contract ${id} on this node`)
    const t = record.contract.terms
    if (!(await deps.authority.acts(t.consumer, t.deploymentId, from))) throw new OrchestrationError(`only the consumer of ${id} may do that`)
    if (!deps.checkpoint) throw new CheckpointUnavailableError('this node cannot checkpoint instances')
    if (!record.instanceId) throw new CheckpointUnavailableError(`contract ${id} has no instance here (it is ${record.status})`)
    return deps.checkpoint(record.instanceId, { live: b?.live === true })
  }

  /**
   * A migration's handover (spec/migration.md): the consumer (or the standby orchestrator acting for it) asks
   * that a contract reserved here be readied ahead of its start: an SDK actor's sandbox is spawned under the
   * contract's limits with its bundle loaded, its actor not started, and the start that follows adopts it.
   * Only for a contract still `reserved` (anything else: `{ warm: false }`, nothing done); anyone else than
   * the consumer is refused. Asked again: the same answer. Never started: ended when its reservation goes.
   */
  async function prewarm(body: unknown, from: string): Promise<{ warm: boolean }> {
    const id = (body as { contractId?: unknown } | null)?.contractId
    if (!isContractName(id)) throw new ContractNotFoundError(`no contract ${String(id).slice(0, 200)} on this node`)
    const record = await deps.contracts.get(id, 'provider')
    if (!record || record.side !== 'provider') throw new ContractNotFoundError(`no contract ${id} on this node`)
    const t = record.contract.terms
    if (!(await deps.authority.acts(t.consumer, t.deploymentId, from))) throw new OrchestrationError(`only the consumer of ${id} may do that`)
    if (!deps.prewarm || record.status !== 'reserved' || !record.workload || !record.reservationId) return { warm: false }
    return deps.prewarm({ contractId: id, slot: t.slot, workload: record.workload, reservationId: record.reservationId, consumer: t.consumer })
  }

  /**
   * A fence from the consumer: every copy of `slot` below it stops. Only the slot's consumer can move its
   * epoch, and only for a slot this node holds a contract of theirs for: anything else is answered with
   * UnknownSlotError and changes nothing (so no peer can poison an epoch or grow the store).
   *
   * Copies are ordered by (orchestrator epoch, slot epoch) (spec/contracts.md "Fences"): a fence that names its
   * slot's current contract (`contractId`) also stops another copy at the same epoch (a placement made twice),
   * and a fence from a standby orchestrator that carries its `handover` (the consumer's capability and the
   * orchestrator epoch it took the deployment over at) first hands the deployment over here, if this node
   * had not heard of it, and then stops every copy the older orchestrator made of that slot whatever its
   * epoch, except the contract it names: after a partition both may have raised the slot to the same epoch.
   */
  async function fence(body: unknown, from: string): Promise<{ stopped: string[]; failed: { contractId: string; error: string }[] }> {
    const f = body as { slot?: unknown; epoch?: unknown; contractId?: unknown; handover?: unknown } | null
    if (typeof f?.slot !== 'string' || f.slot.length === 0 || f.slot.length > 256) throw new InvalidTermsError('fence: slot (a string of 1-256 characters) required')
    if (!validEpoch(f.epoch)) throw new InvalidTermsError(`fence: epoch must be a whole number from 1 to ${MAX_EPOCH}`)
    if (f.contractId !== undefined && !isContractName(f.contractId)) throw new InvalidTermsError('fence: contractId, when given, is a contract id')
    const slot = f.slot
    const epoch = f.epoch
    const named = f.contractId as string | undefined
    const all = await deps.contracts.list()
    if (f.handover !== undefined) await handoverFromFence(f.handover, slot, from, all)
    // the consumer's contracts, or those of a deployment `from` took over as its standby orchestrator
    const held: StoredContract[] = []
    for (const s of all) {
      if (s.side === 'provider' && s.contract.terms.slot === slot && await deps.authority.acts(s.contract.terms.consumer, s.contract.terms.deploymentId, from)) held.push(s)
    }
    if (held.length === 0) throw new UnknownSlotError(`this node holds no contract of ${from} for slot ${slot}`)
    for (const consumer of new Set([from, ...held.map((s) => s.contract.terms.consumer)])) await deps.contracts.raiseEpoch(epochKey(consumer, slot), epoch)
    const stopped: string[] = []
    const failed: { contractId: string; error: string }[] = []
    for (const s of held) {
      const t = s.contract.terms
      if (!isLive(s.status) || t.id === named) continue
      // made by the orchestrator `from` took the deployment over from: below any fence of `from` that names the current copy
      const olderOrchestrator = t.consumer !== from
      const outranked = named !== undefined && (t.epoch <= epoch || olderOrchestrator)
      if (t.epoch >= epoch && !outranked) continue
      try {
        const r = (await route(t.id, { type: 'FENCE', from: t.consumer, epoch, outranked })) as { stopped?: boolean } | null
        if (r?.stopped) stopped.push(t.id)
      } catch (err) {
        // The next fence (repeated every 2 s by the consumer) tries again; the answer says which failed.
        failed.push({ contractId: t.id, error: errorText(err) })
      }
    }
    return { stopped, failed }
  }

  /**
   * The handover a standby orchestrator's fence carries, applied here when this node holds a contract of that
   * deployment and had not heard of the takeover (it was cut off, or the old orchestrator placed here
   * after it). Checked as a direct handover is (orchestrator-authority.ts): a chain rooted at the consumer naming
   * the sender, an orchestrator epoch above the one held. A node that holds nothing of the deployment records
   * nothing (the store does not grow for strangers).
   */
  async function handoverFromFence(x: unknown, slot: string, from: string, all: StoredContract[]): Promise<void> {
    const h = x as Partial<Handover> | null
    if (!h || typeof h !== 'object' || typeof h.consumer !== 'string' || typeof h.deploymentId !== 'string') throw new InvalidTermsError('fence: handover must be { consumer, deploymentId, epoch, token }')
    if (!slot.startsWith(`${h.deploymentId}/`)) throw new InvalidTermsError('fence: the handover names another deployment than the slot\'s')
    const holds = all.some((s) => s.side === 'provider' && s.contract.terms.consumer === h.consumer && s.contract.terms.deploymentId === h.deploymentId)
    if (!holds || (await deps.authority.acts(h.consumer, h.deploymentId, from))) return
    await deps.authority.handover(h as Handover, from)
  }

  return setup({
    types: { events: {} as MarketEvent },
    actions: {
      bid: ({ event }) => {
        if (event.type === 'bid') answer(event.msg, deps.bid(event.body))
      },
      propose: ({ event }) => {
        if (event.type !== 'propose') return
        let p: { contract: Contract; workload: Workload }
        try {
          p = deps.checkProposal(event.body, event.from)
        } catch (err) {
          event.msg.fail(asError(err))
          return
        }
        answer(event.msg, route(p.contract.terms.id, { type: 'PROPOSE', contract: p.contract, from: event.from }, p))
      },
      request: ({ event }) => {
        if (event.type !== 'request') return
        const id = event.contractId
        if (!isContractName(id)) return event.msg.fail(new ContractNotFoundError(`no contract ${String(id).slice(0, 200)} on this node`))
        answer(event.msg, authorized(id, event.request).then((req) => route(id, req)))
      },
      fence: ({ event }) => {
        if (event.type === 'fence') answer(event.msg, fence(event.fence, event.from))
      },
      checkpoint: ({ event }) => {
        if (event.type === 'checkpoint') answer(event.msg, checkpoint(event.body, event.from))
      },
      prewarm: ({ event }) => {
        if (event.type === 'prewarm') answer(event.msg, prewarm(event.body, event.from))
      },
      renew: ({ event }) => {
        if (event.type === 'renew') answer(event.msg, leases.renew(event.body, event.from))
      },
      contractsOf: ({ event }) => {
        if (event.type === 'contractsOf') answer(event.msg, leases.contractsOf(event.body, event.from))
      },
      handover: ({ event }) => {
        if (event.type === 'handover') answer(event.msg, deps.authority.handover(event.body as Handover, event.from))
      },
      promote: ({ event }) => {
        if (event.type === 'promote') answer(event.msg, route(event.contractId, { type: 'PROMOTED' }))
      },
      adopt: ({ event }) => {
        if (event.type !== 'adopt') return
        const id = event.record?.contract?.terms?.id
        if (isContractName(id) && !ctx.lookup(pathOf(id))) spawn(id, { record: event.record, ...(event.leaseUsedMs ? { leaseUsedMs: event.leaseUsedMs } : {}) })
      },
      instance: ({ event }) => {
        if (event.type !== 'instance') return
        const { contractId, status } = event
        const ref = ctx.lookup(pathOf(contractId))
        if (ref) return ctx.tell(ref, ContractBehavior.instance, { status })
        // No actor: a live contract is taken up from its record (its status matters), an ended one no longer cares.
        target(contractId).then(
          (t) => ('ref' in t ? ctx.tell(t.ref, ContractBehavior.instance, { status }) : undefined),
        ).catch((err: unknown) => deps.log('instance status not delivered', { contractId, state: status.state, error: errorText(err) }))
      },
    },
  }).createMachine({
    id: 'market',
    on: {
      bid: { actions: 'bid' },
      propose: { actions: 'propose' },
      request: { actions: 'request' },
      fence: { actions: 'fence' },
      checkpoint: { actions: 'checkpoint' },
      prewarm: { actions: 'prewarm' },
      promote: { actions: 'promote' },
      handover: { actions: 'handover' },
      renew: { actions: 'renew' },
      contractsOf: { actions: 'contractsOf' },
      adopt: { actions: 'adopt' },
      instance: { actions: 'instance' },
    },
  })
}

/** A start's `restore` (a migration or a failover from a checkpoint): a digest and at most 4 DIDs to fetch it from; anything else is ignored. */
function restoreOf(b: { restore?: unknown } | null): { restore?: { digest: string; from: string[] } } {
  const r = b?.restore as { digest?: unknown; from?: unknown } | undefined
  if (!r || typeof r.digest !== 'string' || !ARTIFACT_DIGEST.test(r.digest)) return {}
  const from = Array.isArray(r.from) ? r.from.filter((x): x is string => typeof x === 'string' && x.startsWith('did:key:') && x.length < 200).slice(0, 4) : []
  return { restore: { digest: r.digest, from } }
}

export function marketActor(deps: MarketDeps): ActorDefinition {
  type ById = { contractId?: unknown; since?: number; limit?: number; restore?: unknown } | null
  const request = (req: (b: ById, from: string) => ContractRequest) => ({
    public: true,
    deferred: true,
    event: (body: ById, msg: MessageContext): MarketEvent => ({ type: 'request', contractId: body?.contractId, request: req(body, senderDid(msg)), msg }),
  })
  return defineActor((ctx: ActorContext) => marketMachine(ctx, deps)).with({
    name: 'noir-market',
    mailboxCapacity: 10_000,
    behaviors: {
      [MarketBehavior.bid]: { public: true, deferred: true, event: (body: unknown, msg: MessageContext): MarketEvent => ({ type: 'bid', body, msg }) },
      [MarketBehavior.propose]: { public: true, deferred: true, event: (body: unknown, msg: MessageContext): MarketEvent => ({ type: 'propose', body, from: senderDid(msg), msg }) },
      [MarketBehavior.start]: request((b, from) => ({ type: 'START', from, ...restoreOf(b) })),
      // a migration: quiesce a contract's instance and archive its state (consumer only, checked in `checkpoint`)
      [MarketBehavior.checkpoint]: { public: true, deferred: true, event: (body: unknown, msg: MessageContext): MarketEvent => ({ type: 'checkpoint', body, from: senderDid(msg), msg }) },
      // a migration's handover: ready a reserved contract's instance ahead of its start (consumer only, checked in `prewarm`)
      [MarketBehavior.prewarm]: { public: true, deferred: true, event: (body: unknown, msg: MessageContext): MarketEvent => ({ type: 'prewarm', body, from: senderDid(msg), msg }) },
      [MarketBehavior.stop]: request((_b, from) => ({ type: 'STOP', from })),
      [MarketBehavior.logs]: request((b, from) => ({ type: 'LOGS', from, since: b?.since ?? 0, limit: Math.min(b?.limit ?? 500, 2000) })),
      [MarketBehavior.fence]: { public: true, deferred: true, event: (body: unknown, msg: MessageContext): MarketEvent => ({ type: 'fence', fence: body, from: senderDid(msg), msg }) },
      // a standby orchestrator takes a consumer's deployment over (checked in orchestrator-authority.ts)
      [MarketBehavior.handover]: { public: true, deferred: true, event: (body: unknown, msg: MessageContext): MarketEvent => ({ type: 'handover', body, from: senderDid(msg), msg }) },
      // the consumer's batched lease renewal, and a restarted orchestrator's question (leases.ts)
      [MarketBehavior.renew]: { public: true, deferred: true, event: (body: unknown, msg: MessageContext): MarketEvent => ({ type: 'renew', body, from: senderDid(msg), msg }) },
      [MarketBehavior.contractsOfConsumer]: { public: true, deferred: true, event: (body: unknown, msg: MessageContext): MarketEvent => ({ type: 'contractsOf', body, from: senderDid(msg), msg }) },
      // not public: only this node's pubsub layer tells it, with the signer it verified
      [MarketBehavior.fenceHeard]: {
        deferred: true,
        event: (body: { fence: unknown; from: string }, msg: MessageContext): MarketEvent => ({ type: 'fence', fence: body?.fence, from: String(body?.from), msg }),
      },
      // not public: the node's own provider
      [MarketBehavior.adopt]: { event: (body: { record: StoredContract; leaseUsedMs?: number } | null): MarketEvent => ({ type: 'adopt', record: body?.record as StoredContract, ...(typeof body?.leaseUsedMs === 'number' ? { leaseUsedMs: body.leaseUsedMs } : {}) }) },
      [MarketBehavior.instance]: { event: (body: { contractId: string; status: InstanceStatus } | null): MarketEvent => ({ type: 'instance', contractId: String(body?.contractId), status: body?.status as InstanceStatus }) },
      [MarketBehavior.promote]: { deferred: true, event: (body: { contractId: string } | null, msg: MessageContext): MarketEvent => ({ type: 'promote', contractId: String(body?.contractId), msg }) },
    },
  })
}

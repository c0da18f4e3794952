// The provider side of the market, one per node: answers bid requests with signed bids (or signed declines
// with reasons), reserves and countersigns proposed contracts (two-phase: the reservation expires unless the
// consumer starts the work), runs the work, reports its status to the consumer, and obeys fences (a contract
// whose slot was placed again with a higher epoch is stopped). Transport-free: the actor wiring calls it.
import type { NodeKey } from '../../identity/keys.ts'
import { signBid, signDecline, verifyBidRequest, type BidBody, type SignedBid, type SignedDecline } from '../bidding/messages.ts'
import { countersign, verifyProposal, workloadDigest, type Contract } from '../contracts/contract.ts'
import type { ContractStore, StoredContract } from '../contracts/store.ts'
import { ContractNotFoundError, HandedOverError, InvalidTermsError, OrchestrationError, ReservationFailedError, StaleEpochError, StopFailedError, UnknownSlotError, WorkloadStartError } from '../errors.ts'
import { constraintFailures, type ConstraintFailure } from '../placement/constraints.ts'
import { quote, type PricePolicy } from '../placement/price.ts'
import type { NodeOffer } from '../placement/offer.ts'
import { workloadFromWire, type Workload } from '../workload/workload.ts'
import type { CapacityPort, InstanceStatus, LogEntry, NodeFacts, WorkloadRunner } from './ports.ts'
import { OrchestratorAuthority, type Handover } from './orchestrator-authority.ts'
import { silentLog, type Log } from '../../p2p/log.ts'

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

export interface ProviderInit {
  key: NodeKey
  facts: NodeFacts
  capacity: CapacityPort
  runner: WorkloadRunner
  contracts: ContractStore
  price: PricePolicy
  /** Sends a report to the consumer (its orchestrator actor). Failures are the caller's to log. */
  report(consumerDid: string, r: ReplicaReport): void
  /** How long a reservation waits for `start` before it expires. */
  reservationTtlMs?: number
  now?: () => number
  /** Where the provider reports what went wrong on its own (warnings). Default: nowhere. */
  log?: Log
}

export type BidAnswer = { bid: SignedBid } | { decline: SignedDecline }

const sameResources = (a: object, b: object): boolean => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort())

export class Provider {
  readonly #i: ProviderInit
  readonly #answers = new Map<string, { answer: BidAnswer; at: number }>()
  readonly #bids = new Map<string, BidBody>()
  readonly #byInstance = new Map<string, string>()
  /** Per contract: the tail of its operations (each reads, changes and writes its stored record). */
  readonly #locks = new Map<string, Promise<void>>()
  readonly #now: () => number
  /** Who acts for a consumer's deployment (the consumer, or its standby after a handover). */
  readonly #authority: OrchestratorAuthority
  readonly #log: Log
  #unsubscribe: (() => void) | undefined
  #stopped = false

  constructor(init: ProviderInit) {
    this.#i = init
    this.#now = init.now ?? Date.now
    this.#authority = new OrchestratorAuthority(init.contracts, this.#now)
    this.#log = init.log ?? silentLog
  }

  /** A standby orchestrator takes a consumer's deployment over (spec/orchestration.md "Standby orchestrator"). */
  handover(body: Handover, fromDid: string): Promise<{ epoch: number }> {
    return this.#authority.handover(body, fromDid)
  }

  get did(): string {
    return this.#i.key.did
  }

  /** Listens to the runner; after a restart, takes up the instances of this node's active contracts again. */
  async start(): Promise<void> {
    this.#unsubscribe = this.#i.runner.onStatus((s) => {
      this.#onInstance(s).catch((err: Error) => this.#log.warn('instance status not recorded', { instanceId: s.instanceId, state: s.state, error: err.name, message: err.message }))
    })
    for (const s of await this.#i.contracts.list()) {
      if (s.side !== 'provider' || s.status !== 'active' || !s.instanceId) continue
      this.#byInstance.set(s.instanceId, s.contract.terms.id)
      this.#i.runner.resume?.(s.instanceId)
    }
  }

  stop(): void {
    this.#stopped = true
    this.#unsubscribe?.()
  }

  /** What this node would say about a workload: eligible with a price, or the reasons it is not. */
  async evaluate(w: Workload): Promise<{ ok: true; offer: NodeOffer } | { ok: false; reasons: string[]; failures: ConstraintFailure[] }> {
    const f = this.#i.facts
    const offer: NodeOffer = {
      nodeDid: f.did, ownerDid: f.owner, arch: f.arch, region: f.region, labels: f.labels,
      runtimes: await this.#i.runner.runtimes(), free: await this.#i.capacity.free(),
      pricePerHour: quote(this.#i.price, w.resources, w.lane), latencyMs: 0, trust: 0.5,
    }
    // Latency and trust are the orchestrator's to judge; everything else the node knows about itself.
    const failures = constraintFailures(w, offer).filter((x) => x.constraint !== 'maxLatencyMs' && x.constraint !== 'minTrust')
    const missing = this.#i.runner.missing?.(w)
    if (missing !== undefined && !failures.some((x) => x.constraint === 'runtime')) failures.push({ constraint: 'runtime', detail: missing, gap: 1 })
    if (failures.length > 0) return { ok: false, reasons: failures.map((x) => `${x.constraint}: ${x.detail}`), failures }
    return { ok: true, offer }
  }

  /** Answers a signed bid request (the same answer for the same request, however it arrived). */
  async bid(signedRequest: unknown): Promise<BidAnswer> {
    const req = verifyBidRequest(signedRequest, this.#now())
    const cached = this.#answers.get(req.id)
    if (cached) return cached.answer
    this.#gc()
    let answer: BidAnswer
    if (req.exclude.includes(this.did)) {
      answer = { decline: signDecline(this.#i.key, req.id, ['excluded by the orchestrator'], this.#now()) }
    } else {
      let w: Workload
      try {
        w = workloadFromWire(req.workload)
      } catch (err) {
        throw new InvalidTermsError(`bid request: workload invalid: ${(err as Error).message}`)
      }
      const e = await this.evaluate(w)
      if (!e.ok) answer = { decline: signDecline(this.#i.key, req.id, e.failures, this.#now()) }
      else {
        const bid = signBid(this.#i.key, {
          requestId: req.id, deploymentId: req.deploymentId, owner: e.offer.ownerDid, arch: e.offer.arch, region: e.offer.region,
          labels: e.offer.labels, runtimes: e.offer.runtimes, free: e.offer.free, pricePerHour: e.offer.pricePerHour, now: this.#now(),
        })
        this.#bids.set(bid.body.id, bid.body)
        answer = { bid }
      }
    }
    this.#answers.set(req.id, { answer, at: this.#now() })
    return answer
  }

  /**
   * Phase one: checks the consumer's signature and that the terms match this node's own bid, fences the slot
   * by epoch, reserves the capacity (expiring), countersigns and keeps the contract.
   */
  async propose(body: { contract: Contract; workload: unknown }, fromDid: string): Promise<Contract> {
    const terms = verifyProposal(body.contract)
    if (terms.provider !== this.did) throw new InvalidTermsError(`contract names provider ${terms.provider}`)
    if (terms.consumer !== fromDid) throw new InvalidTermsError(`contract consumer ${terms.consumer} is not the sender ${fromDid}`)
    if (terms.endsAt < this.#now()) throw new InvalidTermsError('contract already ended')
    await this.#authority.checkProposal(terms.consumer, terms.deploymentId)
    let workload: Workload
    try {
      workload = workloadFromWire(body.workload)
    } catch (err) {
      throw new InvalidTermsError(`contract: workload invalid: ${(err as Error).message}`)
    }
    if (workloadDigest(workload) !== terms.workloadDigest) throw new InvalidTermsError('workload does not match the contract digest')
    const bid = this.#bids.get(terms.bidId)
    if (!bid) throw new InvalidTermsError(`contract accepts bid ${terms.bidId}, which this node did not make (or it expired)`)
    if (bid.expiresAt < this.#now()) throw new InvalidTermsError(`bid ${terms.bidId} expired`)
    if (bid.deploymentId !== terms.deploymentId || bid.pricePerHour !== terms.pricePerHour) throw new InvalidTermsError('contract terms differ from the bid (deployment or price)')
    if (!sameResources(terms.resources, workload.resources)) throw new InvalidTermsError('contract resources differ from the workload')

    if (!validEpoch(terms.epoch)) throw new InvalidTermsError(`contract epoch must be a whole number from 1 to ${MAX_EPOCH}`)
    // Epochs are kept per consumer and slot: nobody can fence a slot that belongs to someone else. Nothing is
    // written yet: a proposal that fails below leaves no record behind (the store grows only with contracts).
    const slotKey = epochKey(terms.consumer, terms.slot)
    const current = await this.#i.contracts.epoch(slotKey)
    if (current > terms.epoch) throw new StaleEpochError(`slot ${terms.slot} is at epoch ${current}, contract has ${terms.epoch}`, { held: current, epoch: terms.epoch })

    // Promotion of a standby: the hold made for this deployment's standby is given back first.
    if (terms.role === 'replica') {
      for (const s of await this.#i.contracts.list()) {
        if (s.side === 'provider' && s.status === 'standby' && s.contract.terms.deploymentId === terms.deploymentId && await this.#authority.acts(s.contract.terms.consumer, terms.deploymentId, fromDid)) {
          if (s.reservationId) await this.#release(s, 'standby promoted')
          await this.#put(s, { status: 'ended', note: 'promoted to replica' })
        }
      }
    }
    let reservationId: string
    try {
      reservationId = (await this.#i.capacity.reserve({ id: terms.id, resources: workload.resources, ttlMs: this.#i.reservationTtlMs ?? 30_000, ports: workload.ports.length })).reservationId
    } catch (err) {
      const e = err as Error
      throw new ReservationFailedError(`node ${this.did} could not reserve: ${e.name}: ${e.message}`, { cause: e.name })
    }
    const held = await this.#i.contracts.raiseEpoch(slotKey, terms.epoch)
    if (held > terms.epoch) {
      // A newer proposal for the same slot won the race while this one reserved.
      await this.#i.capacity.release(reservationId).catch(() => undefined)
      throw new StaleEpochError(`slot ${terms.slot} is at epoch ${held}, contract has ${terms.epoch}`, { held, epoch: terms.epoch })
    }
    const signed = countersign(this.#i.key, body.contract)
    const stored: StoredContract = { contract: signed, side: 'provider', status: terms.role === 'standby' ? 'standby' : 'reserved', updatedAt: this.#now(), workload, reservationId }
    if (terms.role === 'standby') await this.#i.capacity.commit(reservationId)
    await this.#i.contracts.put(stored)
    return signed
  }

  /** Phase two: the consumer confirms; the reservation is committed and the work starts. */
  async startWork(body: { contractId: string }, fromDid: string): Promise<{ instanceId: string }> {
    return this.#locked(String(body.contractId), () => this.#startWork(body, fromDid))
  }

  async #startWork(body: { contractId: string }, fromDid: string): Promise<{ instanceId: string }> {
    const s = await this.#mine(body.contractId, fromDid)
    if (s.status === 'active' && s.instanceId) return { instanceId: s.instanceId }
    if (s.status !== 'reserved') throw new InvalidTermsError(`contract ${body.contractId} is ${s.status}, not reserved`)
    if (s.contract.terms.epoch < (await this.#i.contracts.epoch(epochKey(s.contract.terms.consumer, s.contract.terms.slot)))) throw new StaleEpochError(`contract ${body.contractId} was superseded`)
    try {
      await this.#i.capacity.commit(s.reservationId!)
    } catch (err) {
      await this.#put(s, { status: 'refused', note: `reservation lost: ${(err as Error).message}` })
      throw new ReservationFailedError(`reservation for ${body.contractId} is gone (expired?): ${(err as Error).message}`)
    }
    let instanceId: string
    try {
      ;({ instanceId } = await this.#i.runner.start({ contractId: body.contractId, slot: s.contract.terms.slot, workload: s.workload!, reservationId: s.reservationId! }))
    } catch (err) {
      // Nothing runs, so nothing stays held: the reservation goes back at once and the consumer learns why.
      const e = err as Error
      const why = `start failed: ${e.name}: ${e.message}`
      await this.#release(s, why)
      await this.#put(s, { status: 'refused', note: why })
      throw new WorkloadStartError(`node ${this.did} could not start contract ${body.contractId}: ${e.name}: ${e.message}`, { cause: e.name })
    }
    this.#byInstance.set(instanceId, body.contractId)
    await this.#put(s, { status: 'active', instanceId, instanceState: 'running' })
    return { instanceId }
  }

  /** Stops the instance and answers `{ stopped: true }` once the runner confirmed; StopFailedError otherwise. */
  async stopWork(body: { contractId: string }, fromDid: string): Promise<{ stopped: boolean }> {
    return this.#locked(String(body.contractId), async () => {
      const s = await this.#mine(body.contractId, fromDid)
      await this.#end(s, 'ended', 'stopped by the consumer')
      return { stopped: true }
    })
  }

  async logs(body: { contractId: string; since?: number; limit?: number }, fromDid: string): Promise<{ lines: LogEntry[]; ended: boolean }> {
    const s = await this.#mine(body.contractId, fromDid)
    if (!s.instanceId) return { lines: [], ended: s.status !== 'reserved' }
    return this.#i.runner.logs(s.instanceId, { since: body.since ?? 0, limit: Math.min(body.limit ?? 500, 2000) })
  }

  /**
   * A fence from the consumer: every copy of `slot` with a lower epoch stops. Only the slot's consumer can
   * move its epoch, and only for a slot this node holds a contract of theirs for: anything else is answered
   * with UnknownSlotError and changes nothing (so no peer can poison an epoch or grow the store).
   */
  async fence(body: { slot: string; epoch: number }, fromDid: string): Promise<{ stopped: string[]; failed: { contractId: string; error: string }[] }> {
    if (typeof body?.slot !== 'string' || body.slot.length === 0 || body.slot.length > 256) throw new InvalidTermsError('fence: slot (a string of 1-256 characters) required')
    if (!validEpoch(body.epoch)) throw new InvalidTermsError(`fence: epoch must be a whole number from 1 to ${MAX_EPOCH}`)
    const held: StoredContract[] = []
    for (const s of await this.#i.contracts.list()) {
      if (s.side === 'provider' && s.contract.terms.slot === body.slot && await this.#authority.acts(s.contract.terms.consumer, s.contract.terms.deploymentId, fromDid)) held.push(s)
    }
    if (held.length === 0) throw new UnknownSlotError(`this node holds no contract of ${fromDid} for slot ${body.slot}`)
    await this.#i.contracts.raiseEpoch(epochKey(fromDid, body.slot), body.epoch)
    const stopped: string[] = []
    const failed: { contractId: string; error: string }[] = []
    for (const s of held) {
      const t = s.contract.terms
      if (t.epoch >= body.epoch) continue
      if (s.status === 'active' || s.status === 'reserved' || s.status === 'standby') {
        try {
          await this.#locked(t.id, async () => {
            const fresh = (await this.#i.contracts.get(t.id, 'provider')) ?? s
            await this.#end(fresh, 'superseded', `fenced: slot ${t.slot} is at epoch ${body.epoch}`)
          })
          stopped.push(t.id)
        } catch (err) {
          // The next fence (repeated every 2 s by the consumer) tries again; the answer says which failed.
          failed.push({ contractId: t.id, error: `${(err as Error).name}: ${(err as Error).message}` })
        }
      }
    }
    return { stopped, failed }
  }

  async #mine(contractId: string, fromDid: string): Promise<StoredContract> {
    const s = await this.#i.contracts.get(String(contractId), 'provider')
    if (!s || s.side !== 'provider') throw new ContractNotFoundError(`no contract ${contractId} on this node`)
    const t = s.contract.terms
    if (!(await this.#authority.acts(t.consumer, t.deploymentId, fromDid))) {
      if (t.consumer === fromDid) throw new HandedOverError(`deployment ${t.deploymentId} of contract ${contractId} is orchestrated by its standby now`)
      throw new OrchestrationError(`only the consumer of ${contractId} may do that`)
    }
    return s
  }

  /**
   * Stops the contract's instance and frees its hold. The contract is marked `status` only once the runner
   * confirmed the stop; when it could not, the contract keeps its status with a note, the instance stays
   * followed, and StopFailedError says why.
   */
  async #end(s: StoredContract, status: 'ended' | 'superseded', note: string): Promise<void> {
    const t = s.contract.terms
    if (s.instanceId) {
      // Not followed while it stops: its `stopped` status is this stop, not a failure to report.
      const followed = this.#byInstance.delete(s.instanceId)
      try {
        await this.#i.runner.stop(s.instanceId)
      } catch (err) {
        const e = err as Error
        if (followed) this.#byInstance.set(s.instanceId, t.id)
        await this.#put(s, { note: `stop failed: ${e.name}: ${e.message}` })
        this.#log.warn('instance did not stop', { contractId: t.id, instanceId: s.instanceId, error: e.name, message: e.message })
        throw new StopFailedError(`node ${this.did} could not stop instance ${s.instanceId} of contract ${t.id}: ${e.name}: ${e.message}`, { contractId: t.id, instanceId: s.instanceId, cause: e.name })
      }
    }
    if (s.reservationId) await this.#release(s, note)
    await this.#put(s, { status, note, instanceState: s.instanceId ? 'stopped' : s.instanceState })
  }

  /** Frees a contract's hold; a failure leaves capacity held, so it is logged with the reason (not fatal). */
  async #release(s: StoredContract, why: string): Promise<void> {
    try {
      await this.#i.capacity.release(s.reservationId!)
    } catch (err) {
      const e = err as Error
      this.#log.warn('reservation not released', { contractId: s.contract.terms.id, reservationId: s.reservationId, why, error: e.name, message: e.message })
    }
  }

  async #put(s: StoredContract, patch: Partial<StoredContract>): Promise<void> {
    Object.assign(s, patch, { updatedAt: this.#now() })
    await this.#i.contracts.put(s)
  }

  /**
   * Runs `fn` after every earlier operation on the same contract: a status change that arrives while the
   * start is still recording the instance must not overwrite it with the record it read before.
   */
  async #locked<T>(contractId: string, fn: () => Promise<T>): Promise<T> {
    const run = (this.#locks.get(contractId) ?? Promise.resolve()).then(fn)
    const tail = run.then(() => undefined, () => undefined)
    this.#locks.set(contractId, tail)
    void tail.then(() => {
      if (this.#locks.get(contractId) === tail) this.#locks.delete(contractId)
    })
    return run
  }

  async #onInstance(st: InstanceStatus): Promise<void> {
    if (this.#stopped) return
    const id = this.#byInstance.get(st.instanceId)
    if (!id) return
    await this.#locked(id, () => this.#instanceChanged(id, st))
  }

  async #instanceChanged(id: string, st: InstanceStatus): Promise<void> {
    if (this.#stopped || this.#byInstance.get(st.instanceId) !== id) return
    const s = await this.#i.contracts.get(id, 'provider')
    if (!s) return
    const t = s.contract.terms
    const ended = st.state === 'exited' || st.state === 'failed' || st.state === 'stopped'
    if (ended) {
      this.#byInstance.delete(st.instanceId)
      if (s.reservationId) await this.#release(s, `instance ${st.state}`)
    }
    await this.#put(s, { instanceState: st.state, ...(st.code !== undefined ? { exitCode: st.code } : {}), ...(ended && s.status === 'active' ? { status: 'ended' as const, note: st.reason ?? st.state } : {}) })
    if (s.status === 'superseded') return
    this.#i.report(await this.#authority.reportTo(t.consumer, t.deploymentId), {
      contractId: t.id, deploymentId: t.deploymentId, slot: t.slot, epoch: t.epoch, node: this.did, state: st.state,
      ...(st.code !== undefined ? { code: st.code } : {}), ...(st.reason ? { reason: st.reason } : {}), at: st.at,
    })
  }

  #gc(): void {
    const cutoff = this.#now() - 120_000
    for (const [k, v] of this.#answers) if (v.at < cutoff) this.#answers.delete(k)
    for (const [k, b] of this.#bids) if (b.expiresAt < cutoff) this.#bids.delete(k)
  }
}

/** The highest epoch a slot may reach: far beyond any real number of re-placements, far below 2^53. */
export const MAX_EPOCH = 2 ** 31 - 1
const validEpoch = (e: unknown): e is number => Number.isSafeInteger(e) && (e as number) >= 1 && (e as number) <= MAX_EPOCH
/** Where a slot's epoch is kept: per consumer, so one consumer's slot names never touch another's. */
const epochKey = (consumer: string, slot: string): string => `${consumer} ${slot}`

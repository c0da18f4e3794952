// The provider side of the market, one per node: answers bid requests with signed bids (or signed declines
// with reasons) and hosts the market actor (market-actor.ts, `<did>/market`), which keeps one contract actor
// per contract (contract-machine.ts, `<did>/market/<contractId>`): it reserves and countersigns a proposal
// (two-phase: the reservation expires unless the consumer starts the work), runs the work, reports its
// status to the consumer, and obeys fences (a contract whose slot was placed again with a higher epoch is
// stopped). This class wires the node's ports into those actors, keeps the bids it made (a proposal must
// accept one) and follows the runner's instances to their contracts. Its contract methods are a facade:
// each is an ask to the market actor, so an in-process caller goes through the same mailbox as a remote one.
import { withFailpoints } from '../../core/failpoints.ts'
import { ActorSystem, type ActorRef } from '../../core/index.ts'
import type { NodeKey } from '../../identity/keys.ts'
import { signBid, signDecline, verifyBidRequest, type BidBody } from '../bidding/messages.ts'
import { verifyProposal, workloadDigest, type Contract, type ContractTerms } from '../contracts/contract.ts'
import type { ContractStore, StoredContract } from '../contracts/store.ts'
import { InvalidTermsError, OrchestrationError } from '../errors.ts'
import { MARKET_ACTOR, MarketBehavior, type MarketBehaviorPath } from '../orchestrator/protocol.ts'
import { constraintFailures, type ConstraintFailure } from '../placement/constraints.ts'
import { quote, type PricePolicy } from '../placement/price.ts'
import type { NodeOffer } from '../placement/offer.ts'
import { workloadFromWire, type Workload } from '../workload/workload.ts'
import { CONTRACT_STEPS, contractActor, isLive, type ContractContext, type ReplicaReport } from './contract-machine.ts'
import { leaseViews, type ContractLeaseView, type LeaseState, type RenewAnswer } from './leases.ts'
import { MAX_EPOCH, contractSteps, validEpoch } from './contract-steps.ts'
import { isContractName, marketActor, type BidAnswer } from './market-actor.ts'
import type { CapacityPort, InstanceStatus, LogEntry, NodeFacts, WorkloadRunner } from './ports.ts'
import { OrchestratorAuthority, type Handover } from './orchestrator-authority.ts'
import { silentLog, type Log } from '../../p2p/log.ts'

export type { ReplicaReport } from './contract-machine.ts'
export type { BidAnswer } from './market-actor.ts'
export { MAX_EPOCH } from './contract-steps.ts'

export interface ProviderInit {
  key: NodeKey
  facts: NodeFacts
  capacity: CapacityPort
  runner: WorkloadRunner
  contracts: ContractStore
  price: PricePolicy
  /** Sends a report to the consumer (its orchestrator actor). Failures are the caller's to log. */
  report(consumerDid: string, r: ReplicaReport): void
  /** An instance was stopped by a stop of its contract, at `at` (the runner reports nothing after): metering's end. */
  instanceStopped?(contractId: string, at: number): void
  /** How long a reservation waits for `start` before it expires. Default 30 s. */
  reservationTtlMs?: number
  /** The leases this node accepts (spec/contracts.md "Leases"): a proposal outside [min, max] is refused. */
  lease?: Partial<LeaseBounds>
  /** The monotonic clock leases are measured on. Default `performance.now()`. */
  leaseClock?: () => number
  /** The ActorSystem that hosts the market and contract actors (default: a local one of its own). */
  system?: ActorSystem
  now?: () => number
  log?: Log
}

/** The leases a provider accepts, and the one a contract made before leases gets. */
export interface LeaseBounds {
  minMs: number
  maxMs: number
  defaultMs: number
}
export const DEFAULT_LEASE_BOUNDS: LeaseBounds = { minMs: 1000, maxMs: 600_000, defaultMs: 30_000 }

/** How long a facade call waits for the market's answer (a stop waits for the runner's grace). */
const FACADE_TIMEOUT_MS = 10 * 60_000

/**
 * How often the provider notes the wall-clock time in its store: after a restart, the time since the last note is
 * how long the node was down, and it counts against the leases of the contracts it takes up (spec/contracts.md
 * "Leases"). A lease's own clock is monotonic and starts again with the process, so without this a restarted
 * node would give every contract a full new lease, and a copy whose consumer had moved on would run a whole
 * lease beside its replacement (chaos seed 6).
 */
const ALIVE_NOTE_MS = 1000
const ALIVE_NOTE = 'provider alive-at'

const sameResources = (a: object, b: object): boolean => JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort())

export class Provider {
  readonly #i: ProviderInit
  readonly #answers = new Map<string, { answer: BidAnswer; at: number }>()
  readonly #bids = new Map<string, BidBody>()
  /** Instance id -> contract id: where the runner's statuses go (kept by the contract actors' steps). */
  readonly #instances = new Map<string, string>()
  readonly #now: () => number
  readonly #leaseClock: () => number
  readonly #lease: LeaseBounds
  readonly #system: ActorSystem
  readonly #ownSystem: boolean
  #market: ActorRef | undefined
  /** Who acts for a consumer's deployment (the consumer, or its standby orchestrator after a handover). */
  readonly #authority: OrchestratorAuthority
  #unsubscribe: (() => void) | undefined
  #aliveTimer: NodeJS.Timeout | undefined
  #stopped = false

  constructor(init: ProviderInit) {
    this.#i = init
    this.#now = init.now ?? Date.now
    this.#leaseClock = init.leaseClock ?? (() => performance.now())
    this.#lease = { ...DEFAULT_LEASE_BOUNDS, ...(init.lease ?? {}) }
    this.#ownSystem = init.system === undefined
    this.#system = init.system ?? new ActorSystem({ key: init.key })
    this.#authority = new OrchestratorAuthority(init.contracts, this.#now)
  }

  get did(): string {
    return this.#i.key.did
  }

  /** The ActorSystem hosting the market and contract actors. */
  get system(): ActorSystem {
    return this.#system
  }

  /**
   * Spawns the market actor and listens to the runner; then takes up this node's live contracts (after a
   * restart): each gets its actor from its record, an active one follows its instance again (the runner
   * re-attaches it), a reservation whose time passed expires.
   */
  async start(): Promise<void> {
    const i = this.#i
    this.#unsubscribe = i.runner.onStatus((s) => this.#onInstance(s))
    const steps = withFailpoints(contractSteps({
      key: i.key, capacity: i.capacity, runner: i.runner, contracts: i.contracts, reservationTtlMs: i.reservationTtlMs ?? 30_000, now: this.#now,
      leaseClock: this.#leaseClock, defaultLeaseMs: this.#lease.defaultMs,
      // reports go to whoever orchestrates the deployment now (its standby, after a handover)
      report: (consumer, r) => {
        if (this.#stopped) return
        this.#authority.reportTo(consumer, r.deploymentId).then((to) => i.report(to, r), () => i.report(consumer, r))
      },
      checkOrchestrator: (consumer, deploymentId) => this.#authority.checkProposal(consumer, deploymentId),
      instanceStopped: (contractId, at) => i.instanceStopped?.(contractId, at),
      handOverStandby: (t) => this.#handOverStandby(t),
      follow: (instanceId, contractId) => void this.#instances.set(instanceId, contractId),
      unfollow: (instanceId) => void this.#instances.delete(instanceId),
      log: (msg, fields) => this.#log(msg, fields),
    }), 'provider', CONTRACT_STEPS) // each step can crash the process before or after it (spec/failpoints.md)
    this.#market = this.#system.spawn(marketActor({
      bid: (b) => this.#bid(b),
      checkProposal: (b, from) => this.#checkProposal(b, from),
      contracts: i.contracts,
      contractActor: contractActor(steps),
      logs: (instanceId, o) => i.runner.logs(instanceId, o),
      log: (msg, fields) => this.#log(msg, fields),
      authority: this.#authority,
      lease: (id) => this.#leaseOf(id),
      ...(i.runner.checkpoint ? { checkpoint: (instanceId: string, o: { live: boolean }) => i.runner.checkpoint!(instanceId, o) } : {}),
      ...(i.runner.prewarm ? { prewarm: (o: Parameters<NonNullable<WorkloadRunner['prewarm']>>[0]) => i.runner.prewarm!(o) } : {}),
    }), { name: MARKET_ACTOR })
    const records = await i.contracts.list()
    const downMs = await this.#downMs()
    if (downMs > 0) this.#log('taking contracts up after a restart: the time down counts against their leases', { downMs })
    for (const s of records) {
      if (s.side === 'provider' && isLive(s.status)) await this.#system.ask(this.#market, MarketBehavior.adopt, { record: s, leaseUsedMs: downMs })
    }
    await this.#stopUnheldInstances(records)
    await this.#noteAlive()
    this.#aliveTimer = setInterval(() => void this.#noteAlive(), ALIVE_NOTE_MS)
    this.#aliveTimer.unref()
  }

  /** How long ago this node last noted it was alive (0 on a first start, or when the clock went back). */
  async #downMs(): Promise<number> {
    const at = Number(await this.#i.contracts.note(ALIVE_NOTE).catch(() => undefined))
    return Number.isSafeInteger(at) && at > 0 ? Math.max(0, this.#now() - at) : 0
  }

  #noteAlive(): Promise<void> {
    return this.#i.contracts.putNote(ALIVE_NOTE, String(this.#now())).catch((err: Error) => this.#log('alive note not written', { error: err.name, message: err.message }))
  }

  /**
   * After a restart: an instance no live contract holds (the node died between starting it and recording the
   * start, or after its contract ended but before it was stopped) is stopped, its hold released. Nobody would
   * ever stop it otherwise: no consumer names it, no lease covers it (found by the chaos suite, seeds 8 and 10).
   */
  async #stopUnheldInstances(records: StoredContract[]): Promise<void> {
    const runner = this.#i.runner
    if (!runner.liveInstances) return
    const held = new Set(records.filter((r) => r.side === 'provider' && isLive(r.status) && r.instanceId).map((r) => r.instanceId!))
    for (const inst of await runner.liveInstances()) {
      if (held.has(inst.instanceId)) continue
      const status = records.find((r) => r.side === 'provider' && r.contract.terms.id === inst.contractId)?.status ?? 'unknown'
      this.#log('instance no live contract holds: stopped', { instanceId: inst.instanceId, contractId: inst.contractId, contract: status })
      await runner.stop(inst.instanceId).catch((err: Error) => this.#log('unheld instance not stopped', { instanceId: inst.instanceId, error: err.name, message: err.message }))
    }
  }

  /** Stops the market actor and its contract actors (the instances keep running; a restart takes them up). */
  async stop(): Promise<void> {
    this.#stopped = true
    clearInterval(this.#aliveTimer)
    if (this.#aliveTimer) await this.#noteAlive() // a graceful stop: the time down counts from here
    this.#unsubscribe?.()
    if (this.#market && this.#system.running) await this.#system.stopActor(this.#market).catch((err: Error) => this.#log('market actor not stopped', { error: err.name }))
    if (this.#ownSystem) await this.#system.stop()
  }

  // ---- the facade: asks to the market actor, as `fromDid` -----------------------------------------------------

  bid(signedRequest: unknown): Promise<BidAnswer> {
    return this.#ask(MarketBehavior.bid, signedRequest, this.did)
  }

  /** Phase one: reserve and countersign (the contract's actor is spawned). */
  propose(body: { contract: Contract; workload: unknown }, fromDid: string): Promise<Contract> {
    return this.#ask(MarketBehavior.propose, body, fromDid)
  }

  /** Phase two: the consumer confirms; the reservation is committed and the work starts. */
  startWork(body: { contractId: string }, fromDid: string): Promise<{ instanceId: string }> {
    return this.#ask(MarketBehavior.start, body, fromDid)
  }

  /** Stops the instance and answers `{ stopped: true }` once the runner confirmed; StopFailedError otherwise. */
  stopWork(body: { contractId: string }, fromDid: string): Promise<{ stopped: boolean }> {
    return this.#ask(MarketBehavior.stop, body, fromDid)
  }

  logs(body: { contractId: string; since?: number; limit?: number }, fromDid: string): Promise<{ lines: LogEntry[]; ended: boolean }> {
    return this.#ask(MarketBehavior.logs, body, fromDid)
  }

  /** Who orchestrates a consumer's deployment now: the consumer, or its standby after a handover. */
  orchestratorOf(consumer: string, deploymentId: string): Promise<string> {
    return this.#authority.reportTo(consumer, deploymentId)
  }

  /** A standby orchestrator takes a consumer's deployment over (spec/orchestration.md "Standby orchestrator"). */
  handover(body: Handover, fromDid: string): Promise<{ epoch: number }> {
    return this.#ask(MarketBehavior.handover, body, fromDid)
  }

  /** A fence from the consumer: every copy of `slot` below it stops (market-actor.ts). */
  fence(body: { slot: string; epoch: number; contractId?: string; handover?: Handover }, fromDid: string): Promise<{ stopped: string[]; failed: { contractId: string; error: string }[] }> {
    return this.#ask(MarketBehavior.fence, body, fromDid)
  }

  #ask<T>(behavior: MarketBehaviorPath, body: unknown, from: string): Promise<T> {
    if (!this.#market) return Promise.reject(new OrchestrationError('the provider is not started'))
    return this.#system.ask<T>(this.#market, behavior, body, { from, timeoutMs: FACADE_TIMEOUT_MS })
  }

  /** What this node would say about a workload: eligible with a price, or the reasons it is not. */
  async evaluate(w: Workload): Promise<{ ok: true; offer: NodeOffer } | { ok: false; reasons: string[]; failures: ConstraintFailure[] }> {
    const f = this.#i.facts
    const offer: NodeOffer = {
      nodeDid: f.did, ownerDid: f.owner, arch: f.arch, region: f.region, labels: f.labels,
      runtimes: await this.#i.runner.runtimes(), free: await this.#i.capacity.free(),
      pricePerHour: String(quote(this.#i.price, w.resources, w.lane)), latencyMs: 0, trust: 0.5,
      // its own claim: the orchestrator believes it only when the certificate verifies for a root it trusts
      ...(f.coreCert ? { core: true } : {}),
    }
    // Latency and trust are the orchestrator's to judge; everything else the node knows about itself.
    const failures = constraintFailures(w, offer).filter((x) => x.constraint !== 'maxLatencyMs' && x.constraint !== 'minTrust')
    const missing = this.#i.runner.missing?.(w)
    if (missing !== undefined && !failures.some((x) => x.constraint === 'runtime')) failures.push({ constraint: 'runtime', detail: missing, gap: 1 })
    if (failures.length > 0) return { ok: false, reasons: failures.map((x) => `${x.constraint}: ${x.detail}`), failures }
    return { ok: true, offer }
  }

  /** Answers a signed bid request (the same answer for the same request, however it arrived). */
  async #bid(signedRequest: unknown): Promise<BidAnswer> {
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
          ...(this.#i.facts.ownerCert ? { ownerCert: this.#i.facts.ownerCert } : {}), ...(this.#i.facts.coreCert ? { coreCert: this.#i.facts.coreCert } : {}),
        })
        this.#bids.set(bid.body.id, bid.body)
        answer = { bid }
      }
    }
    this.#answers.set(req.id, { answer, at: this.#now() })
    return answer
  }

  /**
   * Checks a proposal before its contract actor is spawned: the consumer's signature, that the terms name this
   * node and the sender, and that they match this node's own bid (the slot's epoch is the actor's first step).
   */
  #checkProposal(body: unknown, fromDid: string): { contract: Contract; workload: Workload } {
    const b = body as { contract?: unknown; workload?: unknown } | null
    const terms = verifyProposal(b?.contract)
    if (terms.provider !== this.did) throw new InvalidTermsError(`contract names provider ${terms.provider}`)
    if (terms.consumer !== fromDid) throw new InvalidTermsError(`contract consumer ${terms.consumer} is not the sender ${fromDid}`)
    if (terms.endsAt < this.#now()) throw new InvalidTermsError('contract already ended')
    if (!isContractName(terms.id)) throw new InvalidTermsError('contract id must be 1-128 of A-Z a-z 0-9 . _ ~ : @ + - (a UUID)')
    let workload: Workload
    try {
      workload = workloadFromWire(b?.workload)
    } catch (err) {
      throw new InvalidTermsError(`contract: workload invalid: ${(err as Error).message}`)
    }
    if (workloadDigest(workload) !== terms.workloadDigest) throw new InvalidTermsError('workload does not match the contract digest')
    const bid = this.#bids.get(terms.bidId)
    if (!bid) throw new InvalidTermsError(`contract accepts bid ${terms.bidId}, which this node did not make (or it expired)`)
    if (bid.expiresAt < this.#now()) throw new InvalidTermsError(`bid ${terms.bidId} expired`)
    // both prices are canonical digit strings (checked on the way in): equal strings are equal amounts
    if (bid.deploymentId !== terms.deploymentId || bid.pricePerHour !== terms.pricePerHour) throw new InvalidTermsError('contract terms differ from the bid (deployment or price)')
    if (!sameResources(terms.resources, workload.resources)) throw new InvalidTermsError('contract resources differ from the workload')
    if (!validEpoch(terms.epoch)) throw new InvalidTermsError(`contract epoch must be a whole number from 1 to ${MAX_EPOCH}`)
    const lease = terms.leaseMs ?? this.#lease.defaultMs
    if (lease < this.#lease.minMs || lease > this.#lease.maxMs) throw new InvalidTermsError(`contract lease ${lease} ms is outside what this node accepts (${this.#lease.minMs}-${this.#lease.maxMs} ms)`)
    return { contract: b!.contract as Contract, workload }
  }

  /** Promotion of a standby: the consumer's standby holds for the deployment are given back (each by its actor). */
  async #handOverStandby(t: ContractTerms): Promise<void> {
    for (const s of await this.#i.contracts.list()) {
      const st = s.contract.terms
      // the consumer's standby, or one of a deployment the proposing orchestrator took over as standby
      if (s.side !== 'provider' || s.status !== 'standby' || st.deploymentId !== t.deploymentId) continue
      if (st.consumer !== t.consumer && !(await this.#authority.acts(st.consumer, st.deploymentId, t.consumer))) continue
      await this.#system.ask(this.#market!, MarketBehavior.promote, { contractId: st.id }, { timeoutMs: FACADE_TIMEOUT_MS })
        .catch((err: Error) => this.#log('standby hold not given back', { contractId: st.id, error: err.name, message: err.message }))
    }
  }

  /** A runner status goes to its contract's actor (through the market, which takes the contract up if needed). */
  #onInstance(s: InstanceStatus): void {
    const contractId = this.#instances.get(s.instanceId)
    if (this.#stopped || !contractId || !this.#market) return
    try {
      this.#system.tell(this.#market, MarketBehavior.instance, { contractId, status: s })
    } catch (err) {
      this.#log('instance status not delivered', { instanceId: s.instanceId, state: s.state, error: (err as Error).name, message: (err as Error).message })
    }
  }

  /** The live contracts this node holds, each with its lease (`noir node contracts`). */
  leases(): Promise<ContractLeaseView[]> {
    return leaseViews(this.#i.contracts, (id) => this.#leaseOf(id))
  }

  /** Renews leases as `fromDid` (the consumer's batch, leases.ts). */
  renew(body: { contracts: string[] }, fromDid: string): Promise<RenewAnswer> {
    return this.#ask(MarketBehavior.renew, body, fromDid)
  }

  /** The live contracts `fromDid` acts for (what a restarted orchestrator reconciles). */
  contractsOf(body: { consumer?: string }, fromDid: string): Promise<{ contracts: ContractLeaseView[] }> {
    return this.#ask(MarketBehavior.contractsOfConsumer, body, fromDid)
  }

  /** The lease a contract's actor holds, read from its snapshot. */
  #leaseOf(contractId: string): LeaseState | undefined {
    const ref = this.#system.lookup(`${MARKET_ACTOR}/${contractId}`)
    const c = ref ? (this.#system.snapshotOf(ref) as { context?: Partial<ContractContext> } | undefined)?.context : undefined
    if (typeof c?.leaseMs !== 'number' || typeof c.renewedAt !== 'number') return undefined
    return { leaseMs: c.leaseMs, renewedAgoMs: this.#leaseClock() - c.renewedAt }
  }

  #log(msg: string, fields?: Record<string, unknown>): void {
    (this.#i.log ?? silentLog).warn(msg, fields)
  }

  #gc(): void {
    const cutoff = this.#now() - 120_000
    for (const [k, v] of this.#answers) if (v.at < cutoff) this.#answers.delete(k)
    for (const [k, b] of this.#bids) if (b.expiresAt < cutoff) this.#bids.delete(k)
  }
}

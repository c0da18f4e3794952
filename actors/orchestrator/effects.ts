// What a deployment actor does to the world (DeploymentEffects): bid rounds over the mesh, proposals and
// countersigned contracts, starts, repairs (standby first, then new rounds) and releases. Each step first
// waits until the deployment's latest snapshot is on disk (`durable`): nothing leaves the node before the
// step that sends it is recorded, so a restart re-runs the step instead of forgetting it.
import type { NodeKey } from '../../identity/keys.ts'
import { checkBid, checkDecline, signBidRequest, verifyBidSignature, type BidBody, type SignedBid, type SignedBidRequest } from '../bidding/messages.ts'
import { proposeContract, verifyContract, workloadDigest, type Contract } from '../contracts/contract.ts'
import type { ContractStore } from '../contracts/store.ts'
import type {
  BidRoundInput, CommitInput, CommitOutcome, DeploymentEffects, ReleaseInput, ReleaseOutcome, RepairInput, RepairOutcome,
  StandbyInput, StandbyOutcome, StartInput, StartOutcome,
} from '../deployment/machine.ts'
import { withDeclines } from '../deployment/machine.ts'
import type { BidRound, Replica, StandbyRef } from '../deployment/model.ts'
import { InvalidSignatureError, InvalidTermsError, StopFailedError } from '../errors.ts'
import type { NodeOffer, TrustView } from '../placement/offer.ts'
import { certifiedCore, certifiedOwner } from '../placement/node-certificate.ts'
import { place, type ExistingReplica, type InfeasibleReason, type PlacementPick } from '../placement/place.ts'
import type { Workload } from '../workload/workload.ts'
import type { CapacityIndex } from '../placement/capacity-index.ts'
import { chooseCandidates, neededBids } from '../placement/sample.ts'
import { isEligible } from '../placement/place.ts'
import { placeVerified, type VerifiedPlacement } from '../placement/verified-place.ts'
import { placeVerifiedAsync } from '../placement/pipelined-place.ts'
import { verifyBidOnWorker } from '../bidding/bid-verifier.ts'
import type { SignatureWorker } from '../../identity/signature-worker.ts'
import { placementSettled, type PendingNode } from '../placement/settled.ts'
import { MarketBehavior, Topics, type MarketBehaviorPath } from './protocol.ts'
import type { LeaseTarget } from './lease-renewer.ts'
import type { UsageDesk } from '../usage/desk.ts'
import { InsufficientFundsError } from '../errors.ts'
import type { Handover } from '../provider/orchestrator-authority.ts'

/** How an orchestrator reaches the market: what OrchestratorPorts and EffectPorts share. */
export interface MarketPorts {
  key: NodeKey
  /** Asks the market actor of node `did` (this node's own included). */
  askMarket(did: string, behavior: MarketBehaviorPath, body: unknown, timeoutMs: number): Promise<unknown>
  /** Signed broadcast (bid requests, fences). */
  publish(topic: string, body: unknown): Promise<void>
  /** Nodes to ask directly besides the broadcast: connected peers. */
  candidates(): string[]
  /** Round trip measured by the mesh, when known. */
  latencyMs(did: string): number | undefined
  contracts: ContractStore
  /** The trust book's view (spec/trust.md): offers carry its trust, quarantined nodes' bids are dropped. Absent: 0.5 for all. */
  trust?: TrustView
}

export interface EffectPorts extends MarketPorts {
  now(): number
  log(level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>): void
  /** Resolves once the deployment's latest snapshot is durable (write-ahead). */
  durable(deploymentId: string): Promise<void>
  /** Nodes the failure detector holds lost. */
  lost(): ReadonlySet<string>
  /** A start answer is a sign of life. */
  alive(node: string): void
  /** False once the orchestrator stops: repairs give up between rounds. */
  running(): boolean
  /** Candidates from the signed heartbeats: bid rounds ask a sample of them before any broadcast (optional). */
  index?: CapacityIndex
  /** A contract was countersigned by the step in flight: its lease is renewed before any snapshot names it. */
  proposed?(t: LeaseTarget): void
  /** A step that proposes contracts settled (its outcome goes into the deployment's snapshot now). */
  stepSettled?(deploymentId: string): void
  /** Escrow and metering (consumer side): a countersigned replica contract holds its first window before it starts. */
  usage?: UsageDesk
  /** The handover a deployment's fences carry (this node took it over as standby orchestrator), if any. */
  handoverOf?(deploymentId: string): Handover | undefined
  /**
   * The signature thread (spec/orchestration.md "Bids verified on the signature thread"): the picks' bid
   * signatures are verified there while this thread serves other deployments. Absent: verified inline.
   */
  signatures?: SignatureWorker<unknown>
}

export interface EffectTimings {
  bidWindowMs: number
  commitTimeoutMs: number
  stopTimeoutMs: number
  replaceRetryMs: number
  /** Pause between repair rounds that found no node. Default 1000 ms. */
  roundPauseMs: number
  /** The lease written in each contract (ms); none: the provider's default. */
  leaseMs?: number
  /** Scaling in: how long a retiring replica keeps serving what it has after ingresses stop being offered it. Default 2500 ms. */
  drainMs?: number
}

/**
 * Whether a replica's state moves with it: an SDK actor (its snapshot lives in its state directory), a
 * workload with a `stateDir`, or a microVM with a state disk (its disk and its saved memory).
 */
export const carriesState = (w: Workload): boolean => w.runtime.type === 'actor' || w.stateDir !== undefined || (w.runtime.type === 'microvm' && w.runtime.stateDisk !== undefined)

const errorText = (err: unknown): string => (err instanceof Error ? `${err.name}: ${err.message}` : String(err))

/**
 * Open bid rounds by request id: answers to a broadcast arrive as tells to the orchestrator actor. A bid is
 * taken after its cheap checks (shape, sent by the node it names, fresh, a price) with its signature kept
 * beside it: the signature is verified only if the bid is acted on (`verifySignature`, spec/orchestration.md
 * "Bids verified when acted on"). A decline is verified when it arrives (declines are rare and explain an
 * infeasible placement to people).
 */
export class OpenRounds {
  readonly #rounds = new Map<string, BidRound>()

  open(round: BidRound): void {
    this.#rounds.set(round.requestId, round)
    if (this.#rounds.size > 64) this.#rounds.delete(this.#rounds.keys().next().value!)
  }

  close(requestId: string): void {
    this.#rounds.delete(requestId)
  }

  /** A bid or decline answering a round; throws a typed error for a forged or relayed one. */
  arrived(body: unknown, fromDid: string, now: number): void {
    const b = body as { bid?: unknown; decline?: unknown }
    if (b?.bid) {
      const bid = checkBid(b.bid, { now })
      if (bid.node !== fromDid) throw new InvalidTermsError('bid relayed by another node')
      const round = this.#rounds.get(bid.requestId)
      if (round && !round.bids.some((x) => x.node === bid.node)) {
        round.bids.push(bid)
        // keyed by the node (authenticated as the sender above), never by the bid id the node chose
        ;(round.sigs ??= {})[bid.node] = (b.bid as SignedBid).sig
      }
    } else if (b?.decline) {
      // the sender is authenticated by the transport; a decline binds nothing, so its signature is not checked
      const d = checkDecline(b.decline, fromDid)
      const round = this.#rounds.get(d.requestId)
      if (round && !round.declines.some((x) => x.node === d.node)) round.declines.push(d)
    } else {
      throw new InvalidTermsError('a bid answer carries { bid } or { decline }')
    }
  }
}

export class OrchestrationEffects implements DeploymentEffects {
  readonly #p: EffectPorts
  readonly #t: EffectTimings
  readonly rounds = new OpenRounds()
  /** Bids whose signature verified (by object: a round read back from a snapshot is verified again). */
  readonly #verified = new WeakSet<BidBody>()
  /** Bid signatures verified so far (one per bid acted on, not one per answer). */
  bidSignaturesChecked = 0

  constructor(ports: EffectPorts, timings: EffectTimings) {
    this.#p = ports
    this.#t = timings
  }

  get retryMs(): number {
    return this.#t.replaceRetryMs
  }

  now(): number {
    return this.#p.now()
  }

  alive(node: string): void {
    this.#p.alive(node)
  }

  contractEnded(contractId: string, why: string): void {
    this.#setStatus(contractId, 'ended', why).catch((err: unknown) => this.#p.log('warn', 'contract not marked ended', { contractId, error: errorText(err) }))
  }

  async bidRound(i: BidRoundInput): Promise<BidRound> {
    await this.#p.durable(i.deploymentId)
    return this.collect(i.deploymentId, i.workload, i.count, i.exclude, { settle: true })
  }

  commit(i: CommitInput): Promise<CommitOutcome> {
    return this.#tracked(i.deploymentId, () => this.#commit(i))
  }

  /** Runs a step that proposes contracts, and says when it settled (lease-renewer.ts renews what it made meanwhile). */
  async #tracked<T>(deploymentId: string, step: () => Promise<T>): Promise<T> {
    try {
      return await step()
    } finally {
      this.#p.stepSettled?.(deploymentId)
    }
  }

  async #commit(i: CommitInput): Promise<CommitOutcome> {
    await this.#p.durable(i.deploymentId)
    const out: CommitOutcome = { contracts: [], refusals: [], exhausted: null }
    const exclude = new Set(i.exclude)
    const existing = [...i.existing]
    for (const rep of i.slots) {
      let got: { contract: Contract } | { infeasible: InfeasibleReason }
      try {
        got = await this.#commitOne(i.deploymentId, i.workload, rep, i.round, exclude, existing, out.refusals)
      } catch (err) {
        // no funds for a hold: the contracts this commit made are released too, and nothing starts
        if (err instanceof InsufficientFundsError) for (const c of out.contracts) await this.#releaseUnstarted(c.contract, 'insufficient funds')
        throw err
      }
      if ('infeasible' in got) {
        out.exhausted = { slot: rep.slot, infeasible: got.infeasible }
        break
      }
      out.contracts.push({ slot: rep.slot, contract: got.contract })
      existing.push({ nodeDid: got.contract.terms.provider, ownerDid: got.contract.terms.providerOwner })
    }
    return out
  }

  reserveStandby(i: StandbyInput): Promise<StandbyOutcome> {
    return this.#tracked(i.deploymentId, () => this.#reserveStandby(i))
  }

  async #reserveStandby(i: StandbyInput): Promise<StandbyOutcome> {
    await this.#p.durable(i.deploymentId)
    const notes: string[] = []
    const used = new Set([...i.used, ...this.#p.lost()])
    let round = i.round
    let preferred = i.preferred
    if (!round) {
      round = await this.collect(i.deploymentId, i.workload, 1, [...used])
      const res = place({ workload: i.workload, count: 1, offers: round.offers, exclude: used })
      if (!res.ok) {
        const asked = round.asked.length === 0 ? 'no node to ask' : `asked ${round.asked.length}`
        const silent = round.silent.map((x) => `${x.node}: ${x.reason}`).join('; ')
        return { standby: null, notes: [`no standby capacity: ${res.infeasible.reason} (${asked}${silent ? `; silent: ${silent}` : ''})`] }
      }
      preferred = res.picks[0]!.offer.nodeDid
    }
    const order = [...(preferred ? [preferred] : []), ...round.offers.map((o) => o.nodeDid).filter((n) => n !== preferred)]
    for (const node of order) {
      if (used.has(node)) continue
      const offer = round.offers.find((o) => o.nodeDid === node)
      const bid = round.bids.find((b) => b.node === node)
      if (!offer || !bid) continue
      try {
        const c = await this.#propose(i.deploymentId, i.workload, { slot: `${i.deploymentId}/standby`, epoch: 0 }, { offer, score: 0 }, round, bid, 'standby')
        notes.push(`standby capacity reserved on ${c.terms.provider}`)
        return { standby: { node: c.terms.provider, contractId: c.terms.id }, notes }
      } catch (err) {
        notes.push(`standby on ${node} refused: ${errorText(err)}`)
      }
    }
    return { standby: null, notes }
  }

  async start(i: StartInput): Promise<StartOutcome[]> {
    await this.#p.durable(i.deploymentId)
    return Promise.all(i.slots.map(async (s): Promise<StartOutcome> => {
      try {
        await this.#p.askMarket(s.node, MarketBehavior.start, { contractId: s.contractId }, this.#t.commitTimeoutMs)
        // a start answered ok: the replica runs (or has already ended) from now, as this node sees it
        this.#p.usage?.observe({ contractId: s.contractId, deploymentId: i.deploymentId, running: this.#p.now() })
        await this.#setStatus(s.contractId, 'active')
        return { ...s, ok: true }
      } catch (err) {
        return { ...s, ok: false, error: errorText(err) }
      }
    }))
  }

  repair(i: RepairInput): Promise<RepairOutcome> {
    return this.#tracked(i.deploymentId, () => this.#repair(i))
  }

  async #repair(i: RepairInput): Promise<RepairOutcome> {
    await this.#p.durable(i.deploymentId)
    const out: RepairOutcome = { notes: [], refusals: [], standbyConsumed: false, placed: null, started: null, infeasible: null, standby: null }
    if (i.job.kind === 'standby') {
      if (i.standby) return out
      const r = await this.#reserveStandby({ deploymentId: i.deploymentId, workload: i.workload, used: i.used, round: null, preferred: null })
      out.notes.push(...r.notes)
      out.standby = r.standby
      return out
    }
    if (i.job.kind === 'migrate') return this.#reserveTarget(i, i.job, out)
    if (i.job.kind === 'move') return this.#move(i, out)
    if (i.job.kind === 'retire') return this.#retire(i, out)
    const rep = i.replica
    if (!rep || rep.state === 'running' || rep.state === 'starting' || rep.state === 'stopped') return out
    const oldNode = rep.node
    if (rep.contractId) {
      await this.#setStatus(rep.contractId, 'ended', i.why)
      // lost with its node: its escrow hold is released now, not at its timeout (spec/ledger.md "Escrow")
      if (rep.state === 'lost') {
        const window = await this.#p.usage?.releaseLost(rep.contractId).catch((err: unknown) => this.#p.log('warn', 'lost contract hold not released', { contractId: rep.contractId, error: errorText(err) }))
        if (typeof window === 'number') out.notes.push(`released the hold of window ${window} of lost contract ${rep.contractId.slice(0, 8)}`)
      }
    }
    // Standby first (protected lane): its capacity is held for exactly this.
    const standby = i.standby
    if (standby && standby.node !== oldNode && !this.#p.lost().has(standby.node)) {
      out.standbyConsumed = true
      const placed = await this.#promote(i, rep, standby, out)
      if (placed) return this.#startPlaced(rep, placed, out)
    }
    for (let round = 0; round < 5 && this.#p.running(); round++) {
      const exclude = new Set<string>([...this.#p.lost(), ...rep.failedOn, ...i.exclude])
      const bids = await this.collect(i.deploymentId, i.workload, 1, [...exclude])
      out.notes.push(`re-placing slot ${rep.slot} (${i.why}): ${bids.bids.length} bid(s)`)
      const got = await this.#commitOne(i.deploymentId, i.workload, rep, bids, exclude, [...i.existing], out.refusals)
      if ('contract' in got) return this.#startPlaced(rep, got.contract, out)
      out.infeasible = got.infeasible
      await new Promise((r) => setTimeout(r, this.#t.roundPauseMs).unref())
    }
    return out
  }

  /** Scaling in: the slot's contract is released (its replica stops there); a node that does not confirm is noted. */
  async #retire(i: RepairInput, out: RepairOutcome): Promise<RepairOutcome> {
    const rep = i.replica
    if (!rep?.node || !rep.contractId || rep.state === 'stopped' || rep.state === 'lost') return out
    // drained first: ingresses ask for the replica set at least once a second, and stop choosing it
    await new Promise((r) => setTimeout(r, this.#t.drainMs ?? 2500).unref())
    const [r] = await this.release({ deploymentId: i.deploymentId, why: 'scaled in', targets: [{ slot: rep.slot, node: rep.node, contractId: rep.contractId, role: 'replica' }] })
    if (r && !r.ok) out.notes.push(`slot ${rep.slot} on ${rep.node} did not confirm its stop: ${r.error}`)
    return out
  }

  async release(i: ReleaseInput): Promise<ReleaseOutcome[]> {
    await this.#p.durable(i.deploymentId)
    return Promise.all(i.targets.map(async (t): Promise<ReleaseOutcome> => {
      try {
        const answer = (await this.#p.askMarket(t.node, MarketBehavior.stop, { contractId: t.contractId }, this.#t.stopTimeoutMs)) as { stopped?: unknown } | null
        if (answer?.stopped !== true) throw new StopFailedError(`node answered ${JSON.stringify(answer)} instead of { stopped: true }`)
      } catch (err) {
        return { ...t, ok: false, error: errorText(err) }
      }
      this.#p.usage?.observe({ contractId: t.contractId, deploymentId: i.deploymentId, ended: this.#p.now() })
      await this.#setStatus(t.contractId, 'ended', i.why)
      return { ...t, ok: true }
    }))
  }

  /**
   * Fences a slot at an epoch, naming its current contract (spec/contracts.md "Fences"): a broadcast, and a
   * direct fence to the nodes named. Best effort. A deployment taken over from another orchestrator: the
   * fence carries the handover, so a provider that never heard of the takeover learns it here.
   */
  async fence(f: { slot: string; epoch: number; deploymentId: string; contractId?: string }, nodes: string[] = []): Promise<void> {
    // The broadcast is repeated every fenceRepeatMs, a stale copy's report gets a direct fence, and a node
    // refuses lower epochs anyway; a failure here is logged, not fatal.
    const handover = this.#p.handoverOf?.(f.deploymentId)
    const { slot, epoch } = f
    const body = { slot, epoch, ...(f.contractId ? { contractId: f.contractId } : {}), ...(handover ? { handover } : {}) }
    await this.#p.publish(Topics.fences, body).catch((err: unknown) => this.#p.log('warn', 'fence broadcast failed', { slot, epoch, error: errorText(err) }))
    for (const n of nodes) {
      await this.#p.askMarket(n, MarketBehavior.fence, body, 3000)
        .catch((err: unknown) => this.#p.log('warn', 'direct fence not confirmed', { node: n, slot, epoch, error: errorText(err) }))
    }
  }

  /**
   * The bids for `count` slots (spec/orchestration.md "Placement at scale"): with a capacity index, a sample
   * of the nodes it holds is asked directly (this node too), a bigger sample when too few bids were feasible,
   * and the broadcast round only as the last resort; without one (or with `broadcast`), the broadcast round.
   */
  async collect(deploymentId: string, w: Workload, count: number, exclude: string[], o: { only?: string[]; broadcast?: boolean; verifyAll?: boolean; settle?: boolean } = {}): Promise<BidRound> {
    const req: SignedBidRequest = signBidRequest(this.#p.key, { deploymentId, workload: w, count, exclude, ttlMs: this.#t.bidWindowMs + 10_000, now: this.#p.now() })
    const round: BidRound = { requestId: req.body.id, asked: [], bids: [], declines: [], silent: [], rttMs: {}, offers: [] }
    this.rounds.open(round)
    try {
      const index = this.#p.index
      if (o.only) {
        await this.#ask(round, req, o.only)
      } else if (!index || o.broadcast) {
        await this.#broadcastRound(round, req, exclude)
      } else {
        const standby = w.lane === 'protected'
        const needed = neededBids(count, standby)
        const lost = this.#p.lost()
        for (let r = 0; ; r++) {
          const choice = chooseCandidates(index, w, count, [...exclude, ...lost, ...round.asked], { round: r, standby })
          if (choice.plan.kind === 'broadcast') {
            await this.#broadcastRound(round, req, exclude)
            break
          }
          await this.#ask(round, req, r === 0 ? [this.#p.key.did, ...choice.dids].filter((n) => !exclude.includes(n)) : choice.dids, o.settle ? (pending) => placementSettled({
            workload: w, count, standby, offers: this.#offers(round), pending, exclude: new Set(exclude), index,
            latencyMs: (did) => (did === this.#p.key.did ? 0 : this.#p.latencyMs(did)), ...(this.#p.trust ? { trust: this.#p.trust } : {}),
          }) : undefined)
          if (this.#offers(round).filter((x) => isEligible(w, x)).length >= needed) break
        }
      }
    } finally {
      this.rounds.close(round.requestId)
    }
    if (o.verifyAll) {
      // a dry run shows every bid to people: each one is verified, a bad one reported as no answer
      for (const b of [...round.bids]) {
        try {
          this.verifySignature(round, b)
        } catch (err) {
          round.bids = round.bids.filter((x) => x !== b)
          round.silent.push({ node: b.node, reason: errorText(err) })
        }
      }
    }
    round.silent = round.silent.filter((s) => !round.bids.some((b) => b.node === s.node) && !round.declines.some((x) => x.node === s.node))
    round.offers = this.#offers(round)
    return round
  }

  /** The broadcast round: a signed broadcast, and a direct ask of each connected node not asked yet. */
  async #broadcastRound(round: BidRound, req: SignedBidRequest, exclude: string[]): Promise<void> {
    const lost = this.#p.lost()
    const asked = new Set(round.asked)
    const targets = [...new Set([this.#p.key.did, ...this.#p.candidates()])].filter((n) => !exclude.includes(n) && !lost.has(n) && !asked.has(n))
    this.#p.publish(Topics.bidRequests, req).catch((err: unknown) => this.#p.log('warn', 'bid request broadcast failed', { error: errorText(err) }))
    await this.#ask(round, req, targets)
  }

  /**
   * Asks each node directly for a bid (answers to a broadcast arrive as tells to the inbox meanwhile), and
   * waits for every answer or time-out; with `settled`, only until it says the answers in hand decide the
   * placement (asked after each answer with the nodes still out and how long each has been awaited). The
   * answers still out then change nothing: the round no longer takes them (`unawaited`).
   */
  async #ask(round: BidRound, req: SignedBidRequest, nodes: string[], settled?: (pending: PendingNode[]) => boolean): Promise<void> {
    round.asked.push(...nodes)
    if (nodes.length === 0) return
    const out = new Map<string, number>()
    let open = true
    await new Promise<void>((resolve) => {
      const answered = (node: string): void => {
        if (!open) return
        out.delete(node)
        const now = performance.now()
        if (out.size > 0 && !this.#settled(settled, [...out].map(([did, t0]) => ({ did, waitedMs: now - t0 })))) return
        open = false
        if (out.size > 0) round.unawaited = [...(round.unawaited ?? []), ...out.keys()]
        resolve()
      }
      for (const node of nodes) {
        const t0 = performance.now()
        out.set(node, t0)
        this.#p.askMarket(node, MarketBehavior.bid, req, this.#t.bidWindowMs).then((answer) => {
          if (!open) return
          round.rttMs[node] = performance.now() - t0
          this.rounds.arrived(answer, node, this.#p.now())
        }).catch((err: unknown) => {
          if (open) round.silent.push({ node, reason: errorText(err) })
        }).finally(() => answered(node))
      }
    })
  }

  /** Whether the answers in hand decide the placement; a check that throws decides nothing (the round waits on). */
  #settled(settled: ((pending: PendingNode[]) => boolean) | undefined, pending: PendingNode[]): boolean {
    if (!settled) return false
    try {
      return settled(pending)
    } catch (err) {
      this.#p.log('warn', 'bid round: could not judge whether the bids in hand decide the placement', { error: errorText(err) })
      return false
    }
  }

  /**
   * Verifies the signature of `bid` (a bid of `round`) before it is acted on; throws InvalidSignatureError.
   * A bid is verified once; one with no signature kept (a round from an older snapshot) is refused.
   */
  verifySignature(round: BidRound, bid: BidBody): void {
    if (this.#verified.has(bid)) return
    const sig = round.sigs?.[bid.node]
    if (sig === undefined) throw new InvalidSignatureError(`bid: no signature kept for ${bid.node}`)
    this.bidSignaturesChecked++
    verifyBidSignature(bid, sig)
    this.#verified.add(bid)
  }

  /**
   * verifySignature on the signature thread: `done(error)` once, with undefined when the bid verified (it is
   * then remembered as verified), else an InvalidSignatureError. Inline (before it returns) when verified
   * already, with no signature kept, or when the worker has no thread.
   */
  #verifyOnThread(worker: SignatureWorker<unknown>, round: BidRound, bid: BidBody, done: (error: Error | undefined) => void): void {
    if (this.#verified.has(bid)) return done(undefined)
    const sig = round.sigs?.[bid.node]
    if (sig === undefined) return done(new InvalidSignatureError(`bid: no signature kept for ${bid.node}`))
    this.bidSignaturesChecked++
    verifyBidOnWorker(worker, bid, sig, (error) => {
      if (error === undefined) this.#verified.add(bid)
      done(error)
    })
  }

  /** One slot placed over verified picks: on the signature thread when there is one, else inline (placeVerified). */
  async #placeOne(w: Workload, round: BidRound, exclude: Set<string>, existing: ExistingReplica[]): Promise<VerifiedPlacement> {
    const req = { workload: w, count: 1, offers: round.offers, exclude, existing }
    const bidOf = (offer: NodeOffer): BidBody => round.bids.find((b) => b.node === offer.nodeDid)!
    const worker = this.#p.signatures
    if (worker) return placeVerifiedAsync(req, (offer, done) => this.#verifyOnThread(worker, round, bidOf(offer), done))
    return placeVerified(req, (offer) => this.verifySignature(round, bidOf(offer)))
  }

  #offers(round: BidRound): NodeOffer[] {
    const trust = this.#p.trust
    const revoked = trust?.certificateRevoked ? (c: Parameters<NonNullable<typeof trust.certificateRevoked>>[0]) => trust.certificateRevoked!(c) : undefined
    // a quarantined node gets no paid work: its bid is not an offer (spec/trust.md "Quarantine")
    return round.bids.filter((b) => !trust?.quarantined(b.node)).map((b) => ({
      nodeDid: b.node, ownerDid: certifiedOwner(b, Date.now(), revoked), core: certifiedCore(b, trust?.coreRoots ?? [], Date.now(), revoked), arch: b.arch, region: b.region, labels: b.labels, runtimes: b.runtimes, free: b.free,
      pricePerHour: b.pricePerHour,
      latencyMs: b.node === this.#p.key.did ? 0 : Math.min(this.#p.latencyMs(b.node) ?? Infinity, round.rttMs[b.node] ?? Infinity, 10_000),
      trust: trust ? trust.trustOf(b.node) : 0.5,
    }))
  }

  /** Proposes one slot to the best offer left; a node that refuses is excluded and the next best tried. */
  async #commitOne(
    deploymentId: string, w: Workload, rep: Replica, round: BidRound, exclude: Set<string>, existing: ExistingReplica[], refusals: CommitOutcome['refusals'],
  ): Promise<{ contract: Contract } | { infeasible: InfeasibleReason }> {
    for (;;) {
      // the pick's bid signature is verified before it is proposed to; a bad one is dropped and the next best taken
      const v = await this.#placeOne(w, round, new Set([...exclude, ...rep.failedOn]), existing)
      for (const r of v.refused) {
        exclude.add(r.node) // for the slots after this one too
        refusals.push({ node: r.node, slot: rep.slot, error: errorText(r.error) })
        this.#p.log('warn', 'bid signature refused', { node: r.node, deploymentId, error: errorText(r.error) })
      }
      const res = v.result
      if (!res.ok) return { infeasible: withDeclines(res.infeasible, round) }
      const pick = res.picks[0]!
      const bid = round.bids.find((b) => b.node === pick.offer.nodeDid)!
      try {
        return { contract: await this.#propose(deploymentId, w, rep, pick, round, bid, 'replica') }
      } catch (err) {
        if (err instanceof InsufficientFundsError) throw err
        exclude.add(pick.offer.nodeDid)
        refusals.push({ node: pick.offer.nodeDid, slot: rep.slot, error: errorText(err) })
      }
    }
  }

  async #propose(deploymentId: string, w: Workload, rep: { slot: string; epoch: number }, pick: PlacementPick, round: BidRound, bid: BidBody, role: 'replica' | 'standby'): Promise<Contract> {
    // nothing is proposed on a bid whose signature was not verified (a no-op when placeVerified did it); a
    // standby's bid is verified here, on the signature thread when there is one
    const worker = this.#p.signatures
    if (worker) await new Promise<void>((resolve, reject) => this.#verifyOnThread(worker, round, bid, (error) => (error ? reject(error) : resolve())))
    this.verifySignature(round, bid)
    const proposal = proposeContract(this.#p.key, {
      deploymentId, workloadName: w.name, kind: w.kind, slot: rep.slot, epoch: role === 'replica' ? rep.epoch + 1 : 1,
      provider: pick.offer.nodeDid, providerOwner: pick.offer.ownerDid, bidId: bid.id, resources: w.resources, pricePerHour: bid.pricePerHour,
      lane: w.lane, role, durationSeconds: w.leaseSeconds, workloadDigest: workloadDigest(w), now: this.#p.now(),
      ...(this.#t.leaseMs !== undefined ? { leaseMs: this.#t.leaseMs } : {}),
    })
    const signed = (await this.#p.askMarket(pick.offer.nodeDid, MarketBehavior.propose, { contract: proposal, workload: w }, this.#t.commitTimeoutMs)) as Contract
    const terms = verifyContract(signed)
    if (terms.id !== proposal.terms.id || terms.provider !== pick.offer.nodeDid) throw new InvalidTermsError('countersigned contract differs from the proposal')
    this.#p.proposed?.({ contractId: terms.id, node: terms.provider, deploymentId })
    await this.#p.contracts.put({ contract: signed, side: 'consumer', status: role === 'standby' ? 'standby' : 'reserved', updatedAt: this.#p.now() })
    if (role === 'replica' && this.#p.usage) {
      // the first prepaid window is held before the start is asked for: without the funds, the contract is
      // released and never started (spec/ledger.md "Escrow")
      try {
        await this.#p.usage.hold(terms, 0)
      } catch (err) {
        await this.#releaseUnstarted(signed, `no escrow hold: ${errorText(err)}`)
        if (err instanceof InsufficientFundsError) throw err
        throw new InsufficientFundsError(`contract ${terms.id}: the first window could not be held (${errorText(err)})`)
      }
    }
    // the index takes it off the node's free capacity until the node's heartbeats show it
    this.#p.index?.note(terms.provider, w.resources)
    return signed
  }

  /** A countersigned contract that will not start: the provider releases its reservation, its hold (if any) is voided. */
  async #releaseUnstarted(c: Contract, why: string): Promise<void> {
    await this.#p.askMarket(c.terms.provider, MarketBehavior.stop, { contractId: c.terms.id }, this.#t.stopTimeoutMs)
      .catch((err: unknown) => this.#p.log('warn', 'unstarted contract not released (its reservation expires on its own)', { contractId: c.terms.id, error: errorText(err) }))
    await this.#p.usage?.release(c.terms.id, 0).catch((err: unknown) => this.#p.log('warn', 'escrow hold not voided (it times out)', { contractId: c.terms.id, error: errorText(err) }))
    await this.#setStatus(c.terms.id, 'ended', why)
  }

  async #promote(i: RepairInput, rep: Replica, standby: StandbyRef, out: RepairOutcome): Promise<Contract | null> {
    const round = await this.collect(i.deploymentId, i.workload, 1, [], { only: [standby.node] })
    const bid = round.bids.find((b) => b.node === standby.node)
    const offer = round.offers.find((o) => o.nodeDid === standby.node)
    if (!bid || !offer) {
      out.notes.push(`standby ${standby.node} did not bid for slot ${rep.slot}`)
      return null
    }
    try {
      const c = await this.#propose(i.deploymentId, i.workload, rep, { offer, score: 0 }, round, bid, 'replica')
      await this.#setStatus(standby.contractId, 'ended', 'promoted')
      out.notes.push(`standby ${standby.node} promoted for slot ${rep.slot}`)
      return c
    } catch (err) {
      out.notes.push(`standby ${standby.node} could not take slot ${rep.slot}: ${errorText(err)}`)
      return null
    }
  }

  /**
   * A migration's first step: a node other than the replica's own (or the one named) is reserved by the same
   * placement rules; nothing runs there yet and the replica is not touched (spec/migration.md).
   */
  async #reserveTarget(i: RepairInput, job: Extract<RepairInput['job'], { kind: 'migrate' }>, out: RepairOutcome): Promise<RepairOutcome> {
    const rep = i.replica
    if (!rep || rep.state !== 'running' || !rep.node) return out
    const exclude = new Set<string>([...this.#p.lost(), rep.node, ...i.exclude])
    const bids = await this.collect(i.deploymentId, i.workload, 1, [...exclude], job.to ? { only: [job.to] } : {})
    out.notes.push(`migration of slot ${rep.slot}: ${bids.bids.length} bid(s)${job.to ? ` from ${job.to}` : ''}`)
    const got = await this.#commitOne(i.deploymentId, i.workload, rep, bids, exclude, [...i.existing], out.refusals)
    if ('contract' in got) out.placed = got.contract
    else out.infeasible = got.infeasible
    return out
  }

  /**
   * A migration's second step (spec/migration.md): a stateful replica (an SDK actor, a workload with a
   * `stateDir`) is quiesced and its state archived on its node, the new one started from that archive (an
   * SDK actor's new sandbox readied first, its bundle loaded, so its start only takes the snapshot); a
   * stateless one is started first (make-before-break). The slot is fenced at the new epoch once the new
   * replica runs, and the old contract released. Each part is idempotent (the provider answers a repeated
   * checkpoint with the same archive, a repeated start with its instance), so a restart re-runs it.
   */
  async #move(i: RepairInput, out: RepairOutcome): Promise<RepairOutcome> {
    const rep = i.replica
    const moving = rep?.moving
    if (!rep || !moving) return out
    const c = moving.contract
    const stateful = carriesState(i.workload)
    out.moved = { oldStopped: false, checkpoint: null, gapMs: null }
    let quiesced: number | null = null
    if (stateful && i.workload.runtime.type === 'actor') {
      // make-before-break (spec/migration.md "Handover"): the new sandbox is spawned and its bundle loaded
      // before the old one is quiesced; the start below then only hands it the snapshot. Not readied (an old
      // provider, an error): the start is a cold one, as before.
      try {
        const r = (await this.#p.askMarket(c.terms.provider, MarketBehavior.prewarm, { contractId: c.terms.id }, this.#t.commitTimeoutMs + 60_000)) as { warm?: unknown } | null
        out.moved.warm = r?.warm === true
      } catch (err) {
        out.moved.warm = false
        out.notes.push(`new replica of slot ${rep.slot} on ${c.terms.provider} not readied ahead (a cold start follows): ${errorText(err)}`)
      }
    }
    if (stateful) {
      try {
        const r = (await this.#p.askMarket(moving.from.node, MarketBehavior.checkpoint, { contractId: moving.from.contractId }, this.#t.stopTimeoutMs + 60_000)) as { digest?: unknown; bytes?: unknown } | null
        if (typeof r?.digest !== 'string' || typeof r.bytes !== 'number') throw new InvalidTermsError(`checkpoint answered ${JSON.stringify(r).slice(0, 200)}`)
        quiesced = performance.now()
        out.moved.oldStopped = true
        out.moved.checkpoint = { digest: r.digest, bytes: r.bytes, from: moving.from.node, at: this.#p.now() }
      } catch (err) {
        out.notes.push(`checkpoint of slot ${rep.slot} on ${moving.from.node} failed: ${errorText(err)}`)
        await this.#releaseUnstarted(c, 'migration abandoned: no checkpoint')
        out.started = { ok: false, error: `no checkpoint from ${moving.from.node}: ${errorText(err)}` }
        return out
      }
    }
    const restore = out.moved.checkpoint ?? null
    try {
      await this.#p.askMarket(c.terms.provider, MarketBehavior.start, { contractId: c.terms.id, ...(restore ? { restore: { digest: restore.digest, from: [restore.from] } } : {}) }, this.#t.commitTimeoutMs + 60_000)
      await this.#setStatus(c.terms.id, 'active')
      out.started = { ok: true }
      if (quiesced !== null) out.moved.gapMs = Math.round(performance.now() - quiesced)
    } catch (err) {
      out.started = { ok: false, error: errorText(err) }
      await this.#releaseUnstarted(c, `migration target did not start: ${errorText(err)}`)
      return out
    }
    // only one replica owns the slot from now on: the fence stops any copy below the new epoch
    void this.fence({ slot: rep.slot, epoch: c.terms.epoch, deploymentId: c.terms.deploymentId, contractId: c.terms.id })
    try {
      const answer = (await this.#p.askMarket(moving.from.node, MarketBehavior.stop, { contractId: moving.from.contractId }, this.#t.stopTimeoutMs)) as { stopped?: unknown } | null
      if (answer?.stopped !== true) throw new StopFailedError(`node answered ${JSON.stringify(answer)} instead of { stopped: true }`)
    } catch (err) {
      out.notes.push(`old replica of slot ${rep.slot} on ${moving.from.node} not confirmed stopped (the fence stops it): ${errorText(err)}`)
    }
    this.#p.usage?.observe({ contractId: moving.from.contractId, deploymentId: i.deploymentId, ended: this.#p.now() })
    await this.#setStatus(moving.from.contractId, 'ended', `migrated to ${c.terms.provider}`)
    return out
  }

  async #startPlaced(rep: Replica, c: Contract, out: RepairOutcome): Promise<RepairOutcome> {
    out.placed = c
    void this.fence({ slot: rep.slot, epoch: c.terms.epoch, deploymentId: c.terms.deploymentId, contractId: c.terms.id })
    // a slot with a checkpoint (a migration that did not finish, a protected replica's last one) starts from it
    const k = rep.checkpoint
    try {
      await this.#p.askMarket(c.terms.provider, MarketBehavior.start, { contractId: c.terms.id, ...(k ? { restore: { digest: k.digest, from: [k.from] } } : {}) }, this.#t.commitTimeoutMs + (k ? 60_000 : 0))
      await this.#setStatus(c.terms.id, 'active')
      out.started = { ok: true }
    } catch (err) {
      out.started = { ok: false, error: errorText(err) }
    }
    return out
  }

  async #setStatus(contractId: string, status: 'active' | 'ended', note?: string): Promise<void> {
    const s = await this.#p.contracts.get(contractId, 'consumer')
    if (!s || s.status === 'ended') return
    s.status = status
    s.updatedAt = this.#p.now()
    if (note) s.note = note
    await this.#p.contracts.put(s)
    // from now on this node pays for none of it: usage past this point is judged as not observed
    if (status === 'ended') this.#p.usage?.observe({ contractId, deploymentId: s.contract.terms.deploymentId, ended: s.updatedAt })
  }
}

// The orchestrator: turns a workload into running replicas and keeps them running. Per deployment it drives a
// DeploymentStateMachine (XState): broadcast a signed bid request (and ask known nodes directly), verify the
// signed bids, filter and score them (placement/place.ts), propose contracts one slot at a time (a node that
// cannot reserve is skipped and the next best tried), start the work, then watch the nodes' heartbeats with
// a phi-accrual detector and place lost or failed replicas again under a higher contract epoch (a fence).
// Transport-free: the actor wiring (./actor.ts) and the daemon service feed it and give it ports.
import { randomBytes } from 'node:crypto'
import type { NodeKey } from '../../identity/keys.ts'
import { signBidRequest, verifyBid, verifyDecline, type BidBody, type DeclineBody, type SignedBidRequest } from '../bidding/messages.ts'
import { proposeContract, verifyContract, workloadDigest, type Contract } from '../contracts/contract.ts'
import type { ContractStore } from '../contracts/store.ts'
import { DeploymentStateMachine, type DeploymentContext, type DeploymentPhase } from '../deployment/machine.ts'
import { DeploymentNotFoundError, InfeasibleError, InvalidTermsError, OrchestrationError, StopFailedError } from '../errors.ts'
import { PhiAccrualDetector } from '../failure/phi-accrual.ts'
import { LoopStalls } from '../failure/loop-stalls.ts'
import type { NodeOffer } from '../placement/offer.ts'
import { place, type InfeasibleReason, type PlacementPick } from '../placement/place.ts'
import { constraintOrder } from '../placement/constraints.ts'
import type { LogEntry } from '../provider/ports.ts'
import type { ReplicaReport } from '../provider/provider.ts'
import { instanceCount, type Lane, type Workload } from '../workload/workload.ts'
import { MarketBehavior, Topics, type MarketBehaviorPath } from './protocol.ts'

export interface OrchestratorPorts {
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
  /** Where deployments are kept across restarts of this node (optional). */
  deployments?: DeploymentStore
  now?: () => number
  log?: (level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>) => void
}

/** A deployment as persisted: everything but the live objects, and the machine's persisted snapshot. */
export interface DeploymentRecord {
  v: 1
  id: string
  workload: Workload
  replicas: ReplicaView[]
  standby: { node: string; contractId: string } | null
  createdAt: number
  events: DeploymentEventLine[]
  infeasible: InfeasibleReason | null
  failovers: DeploymentView['failovers']
  nextRun: number
  machine: unknown
  /** Replicas whose node did not confirm the last stop (absent in records saved before it existed). */
  stopFailures?: StopFailure[]
}

export interface DeploymentStore {
  save(record: DeploymentRecord): Promise<void>
  loadAll(): Promise<DeploymentRecord[]>
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
  /** How often the detector is checked. Default 100 ms. */
  checkIntervalMs?: number
  /** How often fences of live deployments are broadcast again (so a healed partition learns them). Default 2 s. */
  fenceRepeatMs?: number
  /** How long a degraded deployment waits before it tries again to place a slot no node took. Default 30 s. */
  replaceRetryMs?: number
  /**
   * The grace a provider gives an instance on stop before it kills it (SIGTERM to SIGKILL). Default 2000 ms
   * (the appliance's). A stop ask waits this long plus `stopMarginMs` for the node to confirm.
   */
  stopGraceMs?: number
  /** Time beyond the grace for the kill, the removal and the round trip. Default 10 s. */
  stopMarginMs?: number
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

export type ReplicaState = 'pending' | 'placing' | 'starting' | 'running' | 'succeeded' | 'failed' | 'lost' | 'stopped'

export interface ReplicaView {
  index: number
  slot: string
  epoch: number
  node: string | null
  owner: string | null
  contractId: string | null
  state: ReplicaState
  pricePerHour: number | null
  /** Placements of this slot so far (1 = first). */
  attempts: number
  /** Nodes where this slot failed or was lost. */
  failedOn: string[]
  runningSince: number | null
  lastExitCode: number | null
}

export interface DeploymentEventLine {
  at: number
  msg: string
}

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
  standby: { node: string; contractId: string } | null
  history: DeploymentContext['history']
  events: DeploymentEventLine[]
  /** Each failover: when the node was found lost and when the replacement ran. */
  failovers: { slot: string; from: string; to: string | null; lostAt: number; lastHeartbeatAt: number | null; runningAt: number | null; ms: number | null }[]
  /** After a stop: the replicas whose node did not confirm they stopped (empty when every one did). */
  stopFailures: StopFailure[]
}

interface Replica extends ReplicaView {
  contract?: Contract
  placingSince?: number
}

interface Deployment {
  id: string
  workload: Workload
  machine: DeploymentStateMachine
  replicas: Replica[]
  standby: { node: string; contractId: string } | null
  createdAt: number
  events: DeploymentEventLine[]
  infeasible: InfeasibleReason | null
  failovers: DeploymentView['failovers']
  /** Job: next slot index for a new run. */
  nextRun: number
  /** Nodes that refused a contract for this deployment, and how often (twice: left out of later rounds). */
  refusals: Map<string, number>
  stopFailures: StopFailure[]
  busy: Promise<void>
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
}

export interface DryRunResult {
  round: BidRound
  placement: { ok: true; nodes: string[]; standby: string | null } | { ok: false; infeasible: InfeasibleReason }
}

const shortId = (): string => randomBytes(4).toString('hex')

export class Orchestrator {
  readonly #p: OrchestratorPorts
  readonly #o: Required<Omit<OrchestratorOptions, 'phiThreshold'>> & { phiThreshold: Record<Lane, number> }
  readonly #deployments = new Map<string, Deployment>()
  readonly #detectors = new Map<string, PhiAccrualDetector>()
  /** Our own event loop's stalls: a peer is not convicted for the time we could not read its beats. */
  #stalls: LoopStalls | undefined
  /** Convictions withheld because the silence was our own stall. */
  #forgiven = 0
  readonly #lostNodes = new Set<string>()
  readonly #rounds = new Map<string, BidRound>()
  readonly #now: () => number
  #timer: NodeJS.Timeout | undefined
  #fenceTimer: NodeJS.Timeout | undefined
  #stopped = false

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
      stopGraceMs: opts.stopGraceMs ?? 2000,
      stopMarginMs: opts.stopMarginMs ?? 10_000,
      phiThreshold: { protected: 3, 'best-effort': 6, ...(opts.phiThreshold ?? {}) },
    }
  }

  get did(): string {
    return this.#p.key.did
  }

  /**
   * Loads the deployments this node orchestrated before a restart and takes them up again: running replicas
   * are watched again (their nodes get a fresh detector), replicas caught mid-placement are placed again.
   */
  async restore(): Promise<number> {
    const records = (await this.#p.deployments?.loadAll()) ?? []
    for (const r of records) {
      if (r.v !== 1 || this.#deployments.has(r.id)) continue
      const w = r.workload
      const machine = new DeploymentStateMachine({
        id: r.id, kind: w.kind, desired: instanceCount(w), completions: w.job?.completions ?? 1, retries: w.job?.retries ?? 0, at: r.createdAt,
      }, r.machine)
      const d: Deployment = {
        id: r.id, workload: w, machine, replicas: r.replicas.map((x) => ({ ...x })), standby: r.standby, createdAt: r.createdAt, events: r.events,
        infeasible: r.infeasible, failovers: r.failovers, nextRun: r.nextRun, refusals: new Map(), stopFailures: r.stopFailures ?? [], busy: Promise.resolve(),
      }
      this.#deployments.set(d.id, d)
      if (machine.done) continue
      this.#event(d, 'taken up again after a restart of the orchestrating node')
      for (const rep of d.replicas) {
        if (rep.state === 'running' && rep.node) this.heartbeat(rep.node)
        else if (rep.state === 'placing' || rep.state === 'starting' || rep.state === 'lost') this.#serial(d, () => this.#replace(d, rep, 'interrupted by a restart'))
      }
    }
    return records.length
  }

  start(): void {
    this.#stalls = new LoopStalls({ intervalMs: this.#o.checkIntervalMs, now: this.#now })
    this.#timer = setInterval(() => this.#checkNodes(), this.#o.checkIntervalMs)
    this.#timer.unref()
    this.#fenceTimer = setInterval(() => void this.#repeatFences(), this.#o.fenceRepeatMs)
    this.#fenceTimer.unref()
  }

  stop(): void {
    this.#stopped = true
    this.#stalls?.stop()
    if (this.#timer) clearInterval(this.#timer)
    if (this.#fenceTimer) clearInterval(this.#fenceTimer)
    for (const d of this.#deployments.values()) d.machine.stop()
  }

  // ---- inputs ------------------------------------------------------------------------------------------------

  /** Our own loop's stalls seen by the failure detector, and the convictions they withheld. */
  get ownStalls(): { count: number; totalMs: number; longestMs: number; forgiven: number } {
    return { ...(this.#stalls?.stats ?? { count: 0, totalMs: 0, longestMs: 0 }), forgiven: this.#forgiven }
  }

  /** A verified heartbeat from `did` (any signed broadcast on the heartbeat topic). */
  heartbeat(did: string, at = this.#now()): void {
    let d = this.#detectors.get(did)
    if (!d) {
      // A busy machine delays beats by a few hundred ms now and then: tolerate one beat of pause and a wide
      // spread, so the protected lane (phi 3) still declares a silent node lost within ~3.5 beat intervals.
      const beat = this.#o.heartbeatIntervalMs
      d = new PhiAccrualDetector({ firstIntervalMs: beat, minStdDevMs: Math.max(20, beat / 2), acceptablePauseMs: beat, windowSize: 50 })
      this.#detectors.set(did, d)
    }
    d.heartbeat(at)
    if (this.#lostNodes.delete(did)) this.#log('info', 'node is back', { node: did })
  }

  /** A bid or decline that arrived as a tell (a node answering the broadcast). */
  bidArrived(body: unknown, fromDid: string): void {
    const b = body as { bid?: unknown; decline?: unknown }
    try {
      if (b.bid) {
        const bid = verifyBid(b.bid, { now: this.#now() })
        if (bid.node !== fromDid) throw new InvalidTermsError('bid relayed by another node')
        const round = this.#rounds.get(bid.requestId)
        if (round && !round.bids.some((x) => x.node === bid.node)) round.bids.push(bid)
      } else if (b.decline) {
        const d = verifyDecline(b.decline)
        const round = this.#rounds.get(d.requestId)
        if (round && d.node === fromDid && !round.declines.some((x) => x.node === d.node)) round.declines.push(d)
      }
    } catch (err) {
      this.#log('warn', 'bid refused', { from: fromDid, error: (err as Error).name, message: (err as Error).message })
      throw err
    }
  }

  /** A provider's report about one instance. */
  report(r: ReplicaReport, fromDid: string): void {
    if (!r || typeof r !== 'object' || r.node !== fromDid) throw new InvalidTermsError('report: not from the node it names')
    const d = this.#deployments.get(r.deploymentId)
    if (!d) return
    const rep = d.replicas.find((x) => x.slot === r.slot)
    if (!rep) return
    if (r.epoch < rep.epoch || r.contractId !== rep.contractId || rep.node !== fromDid) {
      // A copy from an older placement is still alive somewhere: fence it.
      if (r.state === 'running') void this.#fence(rep.slot, rep.epoch, [r.node])
      return
    }
    this.#serial(d, () => this.#onReport(d, rep, r))
  }

  // ---- commands ----------------------------------------------------------------------------------------------

  /** Starts a deployment; returns at once with its id (follow it with `status`). */
  deploy(workload: Workload): DeploymentView {
    const id = `${workload.name}-${shortId()}`
    const count = instanceCount(workload)
    const machine = new DeploymentStateMachine({
      id, kind: workload.kind, desired: count, completions: workload.job?.completions ?? 1, retries: workload.job?.retries ?? 0, at: this.#now(),
    })
    const replicas: Replica[] = Array.from({ length: count }, (_, i) => this.#newReplica(id, i))
    const d: Deployment = { id, workload, machine, replicas, standby: null, createdAt: this.#now(), events: [], infeasible: null, failovers: [], nextRun: count, refusals: new Map(), stopFailures: [], busy: Promise.resolve() }
    this.#deployments.set(id, d)
    this.#event(d, `deployment ${id} created: ${workload.kind} ${workload.name}, ${count} ${workload.kind === 'service' ? 'replica(s)' : 'parallel run(s)'}, lane ${workload.lane}`)
    this.#serial(d, () => this.#placeInitial(d))
    return this.view(d)
  }

  list(): DeploymentView[] {
    return [...this.#deployments.values()].map((d) => this.view(d))
  }

  status(id: string): DeploymentView {
    return this.view(this.#get(id))
  }

  /**
   * Stops every replica and the standby, waiting for each node to confirm. The view's `stopFailures` names
   * the replicas whose node did not (their contracts stay open); stopping again asks those nodes again.
   */
  async stopDeployment(id: string): Promise<DeploymentView> {
    const d = this.#get(id)
    await new Promise<void>((resolve, reject) => this.#serial(d, async () => {
      try {
        d.machine.send({ type: 'STOP', at: this.#now() })
        await this.#releaseAll(d, 'stopped')
        this.#event(d, d.stopFailures.length === 0 ? 'stopped' : `stopped, but ${d.stopFailures.length} replica(s) not confirmed stopped: ${d.stopFailures.map((f) => `${f.slot} on ${f.node}`).join(', ')}`)
        resolve()
      } catch (err) {
        reject(err as Error)
        throw err
      }
    }))
    await d.busy
    return this.view(d)
  }

  /** Log lines of one replica, read over the mesh from the node that runs it. */
  async logs(id: string, o: { replica?: number; since?: number; limit?: number } = {}): Promise<{ node: string | null; lines: LogEntry[]; ended: boolean }> {
    const d = this.#get(id)
    const rep = d.replicas[o.replica ?? 0]
    if (!rep) throw new OrchestrationError(`deployment ${id} has no replica ${o.replica}`)
    if (!rep.node || !rep.contractId) return { node: null, lines: [], ended: d.machine.done }
    const r = (await this.#p.askMarket(rep.node, MarketBehavior.logs, { contractId: rep.contractId, since: o.since ?? 0, limit: o.limit ?? 500 }, 5000)) as { lines: LogEntry[]; ended: boolean }
    return { node: rep.node, lines: r.lines, ended: r.ended && (d.machine.done || rep.state !== 'running') }
  }

  /** Which nodes would bid for this workload, why the others would not, and what would be chosen. Nothing is reserved. */
  async dryRun(workload: Workload): Promise<DryRunResult> {
    const round = await this.#collectBids(`dry-${shortId()}`, workload, instanceCount(workload), [])
    const result = place({ workload, count: instanceCount(workload), offers: this.#offers(round), standby: workload.lane === 'protected' })
    return {
      round,
      placement: result.ok
        ? { ok: true, nodes: result.picks.map((p) => p.offer.nodeDid), standby: result.standby?.offer.nodeDid ?? null }
        : { ok: false, infeasible: this.#withDeclines(result.infeasible, round) },
    }
  }

  view(d: Deployment): DeploymentView {
    const c = d.machine.context
    return {
      id: d.id, name: d.workload.name, kind: d.workload.kind, lane: d.workload.lane, phase: d.machine.phase, reason: c.reason ?? null,
      infeasible: d.infeasible, createdAt: d.createdAt, desired: c.desired, succeeded: c.succeeded, failures: c.failures,
      replicas: d.replicas.map(({ contract: _c, placingSince: _p, ...r }) => ({ ...r, failedOn: [...r.failedOn] })),
      standby: d.standby, history: c.history, events: [...d.events], failovers: d.failovers.map((f) => ({ ...f })),
      stopFailures: d.stopFailures.map((f) => ({ ...f })),
    }
  }

  // ---- placement ---------------------------------------------------------------------------------------------

  async #placeInitial(d: Deployment): Promise<void> {
    const w = d.workload
    d.machine.send({ type: 'BID', at: this.#now() })
    for (let round = 0; round < d.machine.context.maxCommitRounds && !d.machine.done; round++) {
      // A node that refused once is asked again (its capacity changed: it now declines with the reason);
      // one that refused twice is left out.
      const exclude = this.#repeatRefusers(d)
      const bids = await this.#collectBids(d.id, w, d.replicas.length, [...exclude])
      this.#event(d, `bid round ${round + 1}: asked ${bids.asked.length} node(s), ${bids.bids.length} bid(s), ${bids.declines.length} decline(s)`)
      const offers = this.#offers(bids)
      const first = place({ workload: w, count: d.replicas.length, offers, exclude, standby: w.lane === 'protected' })
      if (!first.ok) {
        const why = this.#withDeclines(first.infeasible, bids)
        d.infeasible = why
        this.#event(d, `infeasible: ${why.reason}`)
        d.machine.send({ type: 'INFEASIBLE', at: this.#now(), reason: why.reason })
        return
      }
      d.machine.send({ type: 'BIDS_CLOSED', at: this.#now(), bids: bids.bids.length })
      const committed = await this.#commitSlots(d, d.replicas, offers, exclude, bids)
      if (d.machine.done) return
      if (!committed) {
        d.machine.send({ type: 'COMMIT_FAILED', at: this.#now(), reason: 'a node could not reserve; bidding again without it' })
        // Out of rounds: the holds made for the slots that did commit go back now, not when they expire.
        if (d.machine.done) await this.#releaseAll(d, 'placement failed')
        continue
      }
      d.machine.send({ type: 'COMMITTED', at: this.#now(), contracts: d.replicas.length })
      if (w.lane === 'protected' && first.standby) await this.#reserveStandby(d, bids, first.standby)
      await Promise.all(d.replicas.map((r) => this.#startReplica(d, r)))
      return
    }
  }

  /**
   * Proposes a contract for each slot in turn; a node that refuses (cannot reserve, stale epoch, gone) is
   * excluded and the next best offer is tried without a new bid round. False when the offers run out.
   */
  async #commitSlots(d: Deployment, slots: Replica[], offers: NodeOffer[], exclude: Set<string>, round: BidRound): Promise<boolean> {
    const w = d.workload
    for (const rep of slots) {
      for (;;) {
        if (d.machine.done) return false
        const existing = d.replicas.filter((r) => r !== rep && r.node && (r.state === 'running' || r.state === 'starting' || r.state === 'placing')).map((r) => ({ nodeDid: r.node!, ownerDid: r.owner! }))
        const res = place({ workload: w, count: 1, offers, exclude: new Set([...exclude, ...rep.failedOn]), existing })
        if (!res.ok) {
          this.#event(d, `slot ${rep.slot}: no more candidates (${res.infeasible.reason})`)
          d.infeasible = this.#withDeclines(res.infeasible, round)
          return false
        }
        const pick = res.picks[0]!
        const bid = round.bids.find((b) => b.node === pick.offer.nodeDid)!
        try {
          await this.#propose(d, rep, pick, bid)
          break
        } catch (err) {
          const e = err as Error
          exclude.add(pick.offer.nodeDid)
          d.refusals.set(pick.offer.nodeDid, (d.refusals.get(pick.offer.nodeDid) ?? 0) + 1)
          this.#event(d, `node ${pick.offer.nodeDid} refused slot ${rep.slot}: ${e.name}: ${e.message}; trying the next best`)
        }
      }
    }
    return true
  }

  async #propose(d: Deployment, rep: Replica, pick: PlacementPick, bid: BidBody, role: 'replica' | 'standby' = 'replica'): Promise<Contract> {
    const w = d.workload
    const epoch = role === 'replica' ? rep.epoch + 1 : 1
    const proposal = proposeContract(this.#p.key, {
      deploymentId: d.id, workloadName: w.name, kind: w.kind, slot: role === 'replica' ? rep.slot : `${d.id}/standby`, epoch,
      provider: pick.offer.nodeDid, providerOwner: pick.offer.ownerDid, bidId: bid.id, resources: w.resources, pricePerHour: bid.pricePerHour,
      lane: w.lane, role, durationSeconds: w.leaseSeconds, workloadDigest: workloadDigest(w), now: this.#now(),
    })
    if (role === 'replica') {
      rep.state = 'placing'
      rep.placingSince ??= this.#now()
    }
    const signed = (await this.#p.askMarket(pick.offer.nodeDid, MarketBehavior.propose, { contract: proposal, workload: w }, this.#o.commitTimeoutMs)) as Contract
    const terms = verifyContract(signed)
    if (terms.id !== proposal.terms.id || terms.provider !== pick.offer.nodeDid) throw new InvalidTermsError('countersigned contract differs from the proposal')
    await this.#p.contracts.put({ contract: signed, side: 'consumer', status: role === 'standby' ? 'standby' : 'reserved', updatedAt: this.#now() })
    if (role === 'replica') {
      rep.epoch = epoch
      rep.contract = signed
      rep.contractId = terms.id
      rep.node = terms.provider
      rep.owner = terms.providerOwner
      rep.pricePerHour = terms.pricePerHour
      rep.attempts++
      this.#event(d, `contract ${terms.id.slice(0, 8)} for slot ${rep.slot} (epoch ${epoch}) with ${terms.provider} at ${terms.pricePerHour} NLC/h, countersigned`)
    }
    return signed
  }

  async #reserveStandby(d: Deployment, round: BidRound, preferred: PlacementPick): Promise<void> {
    const used = new Set(d.replicas.map((r) => r.node).filter((n): n is string => n !== null))
    const offers = this.#offers(round)
    const candidates = [preferred, ...offers.filter((o) => o.nodeDid !== preferred.offer.nodeDid && !used.has(o.nodeDid)).map((o) => ({ offer: o, score: 0 }))]
    for (const pick of candidates) {
      if (used.has(pick.offer.nodeDid)) continue
      const bid = round.bids.find((b) => b.node === pick.offer.nodeDid)
      if (!bid) continue
      try {
        const c = await this.#propose(d, d.replicas[0]!, pick, bid, 'standby')
        d.standby = { node: c.terms.provider, contractId: c.terms.id }
        this.#event(d, `standby capacity reserved on ${c.terms.provider}`)
        return
      } catch (err) {
        this.#event(d, `standby on ${pick.offer.nodeDid} refused: ${(err as Error).message}`)
      }
    }
  }

  async #startReplica(d: Deployment, rep: Replica): Promise<void> {
    if (!rep.node || !rep.contractId || d.machine.done) return
    rep.state = 'starting'
    const node = rep.node
    const contractId = rep.contractId
    try {
      await this.#p.askMarket(node, MarketBehavior.start, { contractId }, this.#o.commitTimeoutMs)
      await this.#setStatus(contractId, 'active')
      if (rep.contractId !== contractId) return
      if (rep.state === 'starting') this.#markRunning(d, rep)
    } catch (err) {
      if (rep.contractId !== contractId) return
      const e = err as Error
      this.#event(d, `start of slot ${rep.slot} on ${node} failed: ${e.name}: ${e.message}`)
      rep.failedOn.push(node)
      await this.#replace(d, rep, `start failed on ${node}`)
    }
  }

  #markRunning(d: Deployment, rep: Replica): void {
    // The start answer is a sign of life: a node that never sends a heartbeat after it is still detected.
    if (rep.node && !this.#detectors.has(rep.node)) this.heartbeat(rep.node)
    rep.state = 'running'
    rep.runningSince = this.#now()
    const since = rep.placingSince
    rep.placingSince = undefined
    const fo = d.failovers.find((f) => f.slot === rep.slot && f.runningAt === null)
    if (fo) {
      fo.runningAt = this.#now()
      fo.to = rep.node
      fo.ms = fo.runningAt - fo.lostAt
      this.#event(d, `slot ${rep.slot} running again on ${rep.node}, ${fo.ms} ms after ${fo.from} was found lost${fo.lastHeartbeatAt ? ` (${fo.runningAt - fo.lastHeartbeatAt} ms after its last heartbeat)` : ''}`)
    } else {
      this.#event(d, `slot ${rep.slot} running on ${rep.node}${since ? ` (${this.#now() - since} ms after its contract was proposed)` : ''}`)
    }
    d.machine.send({ type: 'REPLICA_RUNNING', at: this.#now(), slot: rep.slot })
  }

  /** Places one slot again on another node, with a higher epoch, and fences the old copy. */
  async #replace(d: Deployment, rep: Replica, why: string): Promise<void> {
    if (d.machine.done || this.#stopped) return
    const w = d.workload
    const oldNode = rep.node
    rep.state = 'placing'
    rep.placingSince ??= this.#now()
    if (rep.contractId) await this.#setStatus(rep.contractId, 'ended', why)
    // Standby first (protected lane): its capacity is held for exactly this.
    if (d.standby && d.standby.node !== oldNode && !this.#lostNodes.has(d.standby.node)) {
      const standby = d.standby
      d.standby = null
      const round = await this.#collectBids(d.id, w, 1, [], [standby.node])
      const bid = round.bids.find((b) => b.node === standby.node)
      if (bid) {
        try {
          await this.#propose(d, rep, { offer: this.#offers(round).find((o) => o.nodeDid === standby.node)!, score: 0 }, bid)
          await this.#setStatus(standby.contractId, 'ended', 'promoted')
          this.#event(d, `standby ${standby.node} promoted for slot ${rep.slot}`)
          void this.#fence(rep.slot, rep.epoch)
          await this.#startReplica(d, rep)
          this.#refreshStandby(d).catch((err: Error) => this.#log('warn', 'standby not refreshed', { deployment: d.id, error: err.name, message: err.message }))
          return
        } catch (err) {
          this.#event(d, `standby ${standby.node} could not take slot ${rep.slot}: ${(err as Error).message}`)
        }
      }
    }
    for (let round = 0; round < 5 && !d.machine.done && !this.#stopped; round++) {
      const exclude = new Set<string>([...this.#lostNodes, ...rep.failedOn, ...this.#repeatRefusers(d)])
      const bids = await this.#collectBids(d.id, w, 1, [...exclude])
      this.#event(d, `re-placing slot ${rep.slot} (${why}): ${bids.bids.length} bid(s)`)
      const offers = this.#offers(bids)
      if (await this.#commitSlots(d, [rep], offers, exclude, bids)) {
        void this.#fence(rep.slot, rep.epoch)
        await this.#startReplica(d, rep)
        if (w.lane === 'protected' && !d.standby) this.#refreshStandby(d).catch((err: Error) => this.#log('warn', 'standby not refreshed', { deployment: d.id, error: err.name, message: err.message }))
        return
      }
      await new Promise((r) => setTimeout(r, 1000))
    }
    if (d.machine.done || this.#stopped) return
    const reason = `slot ${rep.slot} could not be placed again (${why}): ${d.infeasible?.reason ?? 'no node accepted'}`
    this.#event(d, reason)
    if (!d.machine.context.history.some((h) => h.phase === 'running')) {
      // It never ran: a deployment nothing can start fails with the reason instead of provisioning forever.
      d.machine.send({ type: 'FAIL', at: this.#now(), reason })
      await this.#releaseAll(d, reason)
      return
    }
    // It ran before: it stays degraded, with the reason, and tries again later (capacity may come back).
    const timer = setTimeout(() => {
      if (d.machine.done || this.#stopped || rep.state === 'running' || rep.state === 'starting') return
      void this.#serial(d, () => this.#replace(d, rep, why))
    }, this.#o.replaceRetryMs)
    timer.unref()
  }

  async #refreshStandby(d: Deployment): Promise<void> {
    if (d.standby || d.machine.done) return
    const used = d.replicas.map((r) => r.node).filter((n): n is string => n !== null)
    const round = await this.#collectBids(d.id, d.workload, 1, [...used, ...this.#lostNodes])
    const res = place({ workload: d.workload, count: 1, offers: this.#offers(round), exclude: new Set([...used, ...this.#lostNodes]) })
    if (res.ok) await new Promise<void>((resolve) => this.#serial(d, async () => { await this.#reserveStandby(d, round, res.picks[0]!); resolve() }))
  }

  // ---- reports and failures ----------------------------------------------------------------------------------

  async #onReport(d: Deployment, rep: Replica, r: ReplicaReport): Promise<void> {
    if (d.machine.done) return
    const w = d.workload
    if (r.state === 'running') {
      if (rep.state === 'starting' || rep.state === 'placing') this.#markRunning(d, rep)
      return
    }
    if (r.state !== 'exited' && r.state !== 'failed') return
    if (rep.state !== 'running' && rep.state !== 'starting') return
    rep.lastExitCode = r.code ?? null
    await this.#setStatus(rep.contractId!, 'ended', `${r.state}${r.code !== undefined ? ` ${r.code}` : ''}`)
    const ok = r.state === 'exited' && r.code === 0
    if (w.kind === 'job') {
      if (ok) {
        rep.state = 'succeeded'
        this.#event(d, `run in slot ${rep.slot} succeeded on ${r.node}`)
        d.machine.send({ type: 'REPLICA_SUCCEEDED', at: this.#now(), slot: rep.slot })
        const running = d.replicas.filter((x) => x.state === 'running' || x.state === 'starting' || x.state === 'placing').length
        if (!d.machine.done && d.machine.context.succeeded + running < d.machine.context.completions) {
          rep.failedOn = []
          await this.#replace(d, rep, 'next completion')
        }
      } else {
        rep.state = 'failed'
        rep.failedOn.push(r.node)
        this.#event(d, `run in slot ${rep.slot} failed on ${r.node} (${r.state}${r.code !== undefined ? ` code ${r.code}` : ''}${r.reason ? `: ${r.reason}` : ''})`)
        d.machine.send({ type: 'REPLICA_FAILED', at: this.#now(), slot: rep.slot, reason: `exit ${r.code ?? r.reason ?? r.state} on ${r.node}` })
        if (!d.machine.done) await this.#replace(d, rep, `retry ${d.machine.context.failures} of ${w.job?.retries ?? 0}`)
      }
      return
    }
    rep.state = 'failed'
    this.#event(d, `replica in slot ${rep.slot} ended on ${r.node} (${r.state}${r.code !== undefined ? ` code ${r.code}` : ''})`)
    d.machine.send({ type: 'REPLICA_DOWN', at: this.#now(), slot: rep.slot, reason: `ended on ${r.node}` })
    if (w.service?.restart === 'never' || (w.service?.restart === 'on-failure' && ok)) return
    if (!ok) rep.failedOn.push(r.node)
    await this.#replace(d, rep, 'restart')
  }

  #checkNodes(): void {
    if (this.#stopped) return
    const now = this.#now()
    const stalled = this.#stalls?.sample(now) ?? 0
    if (stalled > this.#o.heartbeatIntervalMs) this.#log('info', 'own event loop stalled: peers are not judged on that time', { stalledMs: Math.round(stalled) })
    const hosting = new Map<string, Lane>()
    for (const d of this.#deployments.values()) {
      if (d.machine.done) continue
      for (const r of d.replicas) {
        if (!r.node || (r.state !== 'running' && r.state !== 'starting')) continue
        const lane = hosting.get(r.node)
        if (lane !== 'protected') hosting.set(r.node, d.workload.lane)
      }
    }
    for (const [node, lane] of hosting) {
      if (node === this.did || this.#lostNodes.has(node)) continue
      const det = this.#detectors.get(node)
      if (!det) continue
      const phi = det.phi(now)
      if (phi < this.#o.phiThreshold[lane]) continue
      // the silence less the time our own loop could not have read its beats
      const own = this.#stalls?.since(det.lastHeartbeat ?? now) ?? 0
      if (own > 0 && det.phi(now - own) < this.#o.phiThreshold[lane]) {
        this.#forgiven++
        continue
      }
      this.#nodeLost(node, phi, det.lastHeartbeat ?? null)
    }
  }

  #nodeLost(node: string, phi: number, lastHeartbeatAt: number | null): void {
    this.#lostNodes.add(node)
    const lostAt = this.#now()
    this.#log('warn', 'node lost', { node, phi: Math.round(phi * 100) / 100, silentMs: lastHeartbeatAt ? lostAt - lastHeartbeatAt : null })
    for (const d of this.#deployments.values()) {
      if (d.machine.done) continue
      if (d.standby?.node === node) {
        const contractId = d.standby.contractId
        this.#setStatus(contractId, 'ended', 'node lost').catch((err: Error) => this.#log('warn', 'standby contract not marked ended', { contractId, error: err.name, message: err.message }))
        d.standby = null
      }
      for (const rep of d.replicas) {
        if (rep.node !== node || (rep.state !== 'running' && rep.state !== 'starting')) continue
        this.#serial(d, async () => {
          if (rep.node !== node || (rep.state !== 'running' && rep.state !== 'starting')) return
          rep.state = 'lost'
          rep.failedOn.push(node)
          d.failovers.push({ slot: rep.slot, from: node, to: null, lostAt, lastHeartbeatAt, runningAt: null, ms: null })
          this.#event(d, `node ${node} lost (phi ${phi.toFixed(1)}, silent ${lastHeartbeatAt ? lostAt - lastHeartbeatAt : '?'} ms); slot ${rep.slot} is placed again`)
          d.machine.send({ type: 'REPLICA_DOWN', at: lostAt, slot: rep.slot, reason: `node ${node} lost` })
          await this.#replace(d, rep, `node ${node} lost`)
        })
      }
    }
  }

  // ---- helpers -----------------------------------------------------------------------------------------------

  async #collectBids(deploymentId: string, w: Workload, count: number, exclude: string[], only?: string[]): Promise<BidRound> {
    const req: SignedBidRequest = signBidRequest(this.#p.key, { deploymentId, workload: w, count, exclude, ttlMs: this.#o.bidWindowMs + 10_000, now: this.#now() })
    const asked = only ?? [...new Set([this.did, ...this.#p.candidates()])].filter((n) => !exclude.includes(n) && !this.#lostNodes.has(n))
    const round: BidRound = { requestId: req.body.id, asked, bids: [], declines: [], silent: [], rttMs: {} }
    this.#rounds.set(req.body.id, round)
    if (this.#rounds.size > 64) this.#rounds.delete(this.#rounds.keys().next().value!)
    if (!only) this.#p.publish(Topics.bidRequests, req).catch((err: Error) => this.#log('warn', 'bid request broadcast failed', { error: err.message }))
    await Promise.all(asked.map(async (node) => {
      const t0 = performance.now()
      try {
        const answer = await this.#p.askMarket(node, MarketBehavior.bid, req, this.#o.bidWindowMs)
        round.rttMs[node] = performance.now() - t0
        this.bidArrived(answer, node)
      } catch (err) {
        round.silent.push({ node, reason: `${(err as Error).name}: ${(err as Error).message}` })
      }
    }))
    // Answers to the broadcast from nodes not asked directly arrive as tells until here.
    round.silent = round.silent.filter((s) => !round.bids.some((b) => b.node === s.node) && !round.declines.some((x) => x.node === s.node))
    return round
  }

  #offers(round: BidRound): NodeOffer[] {
    return round.bids.map((b) => ({
      nodeDid: b.node, ownerDid: b.owner, arch: b.arch, region: b.region, labels: b.labels, runtimes: b.runtimes, free: b.free,
      pricePerHour: b.pricePerHour,
      latencyMs: b.node === this.did ? 0 : Math.min(this.#p.latencyMs(b.node) ?? Infinity, round.rttMs[b.node] ?? Infinity, 10_000),
      trust: 0.5,
    }))
  }

  /**
   * Adds what the declining nodes said to an infeasible answer, so the reason covers every node that was
   * asked: the constraint none of them met, and the nearest candidate among bidders and decliners alike.
   */
  #withDeclines(why: InfeasibleReason, round: BidRound): InfeasibleReason {
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

  async #fence(slot: string, epoch: number, nodes?: string[]): Promise<void> {
    // Best effort: the broadcast is repeated every fenceRepeatMs, a stale copy's report gets a direct fence,
    // and a node refuses lower epochs anyway; a failure here is logged, not fatal.
    await this.#p.publish(Topics.fences, { slot, epoch }).catch((err: Error) => this.#log('warn', 'fence broadcast failed', { slot, epoch, error: err.name, message: err.message }))
    for (const n of nodes ?? []) {
      await this.#p.askMarket(n, MarketBehavior.fence, { slot, epoch }, 3000)
        .catch((err: Error) => this.#log('warn', 'direct fence not confirmed', { node: n, slot, epoch, error: err.name, message: err.message }))
    }
  }

  /** One broadcast with every fence of the live deployments (rate limits count messages, not fences). */
  async #repeatFences(): Promise<void> {
    const fences: { slot: string; epoch: number }[] = []
    for (const d of this.#deployments.values()) {
      if (d.machine.done) continue
      for (const r of d.replicas) if (r.epoch > 1 && r.state === 'running') fences.push({ slot: r.slot, epoch: r.epoch })
    }
    for (let i = 0; i < fences.length; i += 200) {
      // Repeated every fenceRepeatMs: a failed round is logged and the next one tries again.
      await this.#p.publish(Topics.fences, { fences: fences.slice(i, i + 200) })
        .catch((err: Error) => this.#log('warn', 'fence repeat broadcast failed', { fences: fences.length, error: err.name, message: err.message }))
    }
  }

  /**
   * Asks each node holding a replica (or the standby) to stop it and waits for the answer: long enough for
   * the provider's grace period, the kill and the removal. A replica counts as stopped, and its contract as
   * ended, only when its node confirmed; every other outcome is recorded in `d.stopFailures` and as an event.
   */
  async #releaseAll(d: Deployment, why: string): Promise<void> {
    const timeoutMs = this.#o.stopGraceMs + this.#o.stopMarginMs
    const targets = d.replicas.filter((r) => r.node && r.contractId && r.state !== 'stopped')
      .map((r) => ({ node: r.node!, contractId: r.contractId!, slot: r.slot, rep: r as Replica | undefined }))
    const standby = d.standby
    if (standby) targets.push({ node: standby.node, contractId: standby.contractId, slot: `${d.id}/standby`, rep: undefined })
    const failures: StopFailure[] = []
    await Promise.all(targets.map(async (t) => {
      try {
        const answer = (await this.#p.askMarket(t.node, MarketBehavior.stop, { contractId: t.contractId }, timeoutMs)) as { stopped?: unknown } | null
        if (answer?.stopped !== true) throw new StopFailedError(`node answered ${JSON.stringify(answer)} instead of { stopped: true }`)
      } catch (err) {
        const e = err as Error
        failures.push({ slot: t.slot, node: t.node, contractId: t.contractId, error: `${e.name}: ${e.message}`, at: this.#now() })
        this.#event(d, `${t.rep ? 'replica' : 'standby'} in slot ${t.slot} on node ${t.node} not confirmed stopped: ${e.name}: ${e.message}`)
        return
      }
      await this.#setStatus(t.contractId, 'ended', why)
      if (t.rep && t.rep.state !== 'succeeded' && t.rep.state !== 'failed') t.rep.state = 'stopped'
      if (!t.rep && d.standby === standby) d.standby = null
    }))
    d.stopFailures = failures
  }

  async #setStatus(contractId: string, status: 'active' | 'ended', note?: string): Promise<void> {
    const s = await this.#p.contracts.get(contractId, 'consumer')
    if (!s || s.status === 'ended') return
    s.status = status
    s.updatedAt = this.#now()
    if (note) s.note = note
    await this.#p.contracts.put(s)
  }

  #repeatRefusers(d: Deployment): Set<string> {
    return new Set([...d.refusals].filter(([, n]) => n >= 2).map(([node]) => node))
  }

  #newReplica(id: string, index: number): Replica {
    return { index, slot: `${id}/${index}`, epoch: 0, node: null, owner: null, contractId: null, state: 'pending', pricePerHour: null, attempts: 0, failedOn: [], runningSince: null, lastExitCode: null }
  }

  #get(id: string): Deployment {
    const d = this.#deployments.get(id)
    if (!d) throw new DeploymentNotFoundError(`no deployment ${id}`)
    return d
  }

  /** Runs deployment work one step at a time (reports and failures arrive concurrently). */
  #serial(d: Deployment, fn: () => Promise<void>): void {
    d.busy = d.busy.then(fn).catch((err: Error) => {
      this.#log('warn', 'deployment step failed', { deployment: d.id, error: err.name, message: err.message })
      this.#event(d, `internal error: ${err.name}: ${err.message}`)
      if (!d.machine.done && d.machine.phase !== 'running' && d.machine.phase !== 'degraded') d.machine.send({ type: 'FAIL', at: this.#now(), reason: err.message })
    }).then(() => this.#save(d))
  }

  async #save(d: Deployment): Promise<void> {
    if (!this.#p.deployments) return
    const v = this.view(d)
    await this.#p.deployments.save({
      v: 1, id: d.id, workload: d.workload, replicas: v.replicas, standby: d.standby, createdAt: d.createdAt, events: v.events.slice(-200),
      infeasible: d.infeasible, failovers: v.failovers, nextRun: d.nextRun, machine: d.machine.persisted(), stopFailures: v.stopFailures,
    }).catch((err: Error) => this.#log('warn', 'deployment not saved', { deployment: d.id, error: err.message }))
  }

  #event(d: Deployment, msg: string): void {
    d.events.push({ at: this.#now(), msg })
    if (d.events.length > 500) d.events.splice(0, d.events.length - 500)
    this.#log('info', msg, { deployment: d.id })
  }

  #log(level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>): void {
    this.#p.log?.(level, msg, fields)
  }
}

export { InfeasibleError }

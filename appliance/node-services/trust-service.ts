// The trust node service (spec/trust.md): this node's trust book of the nodes it pays for work, fed by
// verified outcomes only: job runs compared with replicas on nodes of other owners (adaptive replication),
// known-answer validation tasks, dropped runs, signed heartbeats (uptime). It gives orchestration each
// node's trust and the quarantined nodes (no paid work), quarantines a node past the strike threshold with a
// record it signs, spreads on pubsub (noir/trust/v1) and tells the node, takes the records of the validators
// it trusts (config `trust.validators`), and sends quarantined nodes validation tasks until they pass.
import { certifiedOwner } from '../../actors/placement/node-certificate.ts'
import { randomBytes } from 'node:crypto'
import { setup } from 'xstate'
import { defineActor } from '../../core/index.ts'
import { didOfPeer } from '../../identity/did-key.ts'
import type { ReplicaReport } from '../../actors/provider/contract-machine.ts'
import type { Workload } from '../../actors/workload/workload.ts'
import { validateWorkload } from '../../actors/workload/workload.ts'
import { MARKET_ACTOR } from '../../actors/orchestrator/protocol.ts'
import { HEARTBEAT_TOPIC } from '../heartbeat/heartbeat.ts'
import { TrustBook, type BookEvent, type NodeRecord } from '../../trust/book.ts'
import { trustPolicyFrom } from '../../trust/policy.ts'
import { judgeKnownAnswer, judgeRuns, type RunResult } from '../../trust/quorum.ts'
import { knownAnswerDigest, newSeed, KNOWN_ANSWER_VAR } from '../../trust/known-answer.ts'
import { signTrustRecord, verifyTrustRecord, TRUST_TOPIC, type SignedTrustRecord } from '../../trust/record.ts'
import { InvalidTrustConfigError, UnknownNodeError } from '../../trust/errors.ts'
import { isDidKey } from '../../identity/did-key.ts'
import { CheckRuns, type CheckRunOutcome } from './check-runs.ts'
import { outputDigest } from '../../trust/digest.ts'
import { ENROL_MAX_WORKERS, enrolmentPlan, enrolmentScript, judgeEnrolment, memoryKilled, parseEnrolment, refusedClaim, type Enrolment } from '../../trust/enrolment.ts'
import type { ApiRoute, JsonValue, NodeContext, NodeService } from '../daemon/service.ts'
import { jsonCopy } from '../daemon/service.ts'
import type { OrchestrationService, OrchestrationTrust } from './orchestration.ts'
import { signEnrolmentReport, verifyEnrolmentReport } from '../../trust/enrolment-report.ts'

export const TRUST_ACTOR = 'trust'
export const TrustBehavior = { record: '/noir/trust/record', enrolment: '/noir/trust/enrolment' } as const

/** An enrolment of this node, as a validator told it. */
type OwnEnrolment = Enrolment & { validator: string }

/** config.json `trust`. */
interface TrustConfig {
  /** DIDs whose quarantine records this node applies (besides its own). */
  validators?: string[]
  /** The policy (trust/policy.ts); fields omitted keep their defaults. */
  policy?: unknown
  /** The catalog name of the known-answer WASI module (appliance/executor/wasm/known-answer-module.ts). */
  taskModule?: string
  /** How long a check run may take before it counts as dropped (ms, default 60000). */
  checkDeadlineMs?: number
  /** First pause before a quarantined node's next validation task (ms, default 60000; doubled each time, at most an hour). */
  readmitIntervalMs?: number
  /** How often the quarantines this node decided are signed and spread again, for nodes that missed them (ms, default 60000). */
  republishMs?: number
  /** Compare job runs and send validation tasks (default true); false: the book keeps heartbeats and records only. */
  checks?: boolean
  /** Measure each new node heard from against its claimed capacity (spec/trust.md "Enrolment"; default false: opt in). */
  enrol?: boolean
  /** The container image the enrolment benchmark runs in (a local image with a busybox shell; default noir/busybox:latest). */
  enrolImage?: string
  /** How long each half of the benchmark runs (ms, default 1000). */
  enrolMs?: number
  /** Memory the benchmark writes and reads back at most (bytes, default 1 GiB; 0: memory not measured). */
  enrolMemoryBytes?: number
  /** Disk the benchmark writes, fsyncs and reads back at most (bytes, default 256 MiB; 0: disk not measured). */
  enrolDiskBytes?: number
  /** tests only (trust/faults.ts), read by the orchestration service */
  testFaults?: unknown
}

const errorText = (err: unknown): string => (err instanceof Error ? `${err.name}: ${err.message}` : String(err))

function trustConfig(raw: unknown): TrustConfig {
  if (raw === undefined || raw === null) return {}
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new InvalidTrustConfigError('trust must be an object')
  const c = raw as TrustConfig
  if (c.validators !== undefined && (!Array.isArray(c.validators) || !c.validators.every((v) => typeof v === 'string' && isDidKey(v)))) {
    throw new InvalidTrustConfigError('trust.validators must be a list of did:key strings')
  }
  if (c.enrol !== undefined && typeof c.enrol !== 'boolean') throw new InvalidTrustConfigError('trust.enrol must be true or false')
  if (c.enrolImage !== undefined && (typeof c.enrolImage !== 'string' || !/^[a-z0-9][a-z0-9._/:@-]{0,199}$/.test(c.enrolImage))) throw new InvalidTrustConfigError('trust.enrolImage must be an image reference')
  if (c.enrolMs !== undefined && !(Number.isSafeInteger(c.enrolMs) && c.enrolMs >= 100 && c.enrolMs <= 60_000)) throw new InvalidTrustConfigError('trust.enrolMs must be an integer of ms from 100 to 60000')
  if (c.enrolMemoryBytes !== undefined && !(Number.isSafeInteger(c.enrolMemoryBytes) && c.enrolMemoryBytes >= 0 && c.enrolMemoryBytes <= 16 * 2 ** 30)) throw new InvalidTrustConfigError('trust.enrolMemoryBytes must be an integer of bytes from 0 to 16 GiB')
  if (c.enrolDiskBytes !== undefined && !(Number.isSafeInteger(c.enrolDiskBytes) && c.enrolDiskBytes >= 0 && c.enrolDiskBytes <= 4 * 2 ** 30)) throw new InvalidTrustConfigError('trust.enrolDiskBytes must be an integer of bytes from 0 to 4 GiB')
  for (const f of ['checkDeadlineMs', 'readmitIntervalMs', 'republishMs'] as const) {
    if (c[f] !== undefined && !(Number.isSafeInteger(c[f]) && (c[f] as number) >= 100)) throw new InvalidTrustConfigError(`trust.${f} must be an integer of ms >= 100`)
  }
  if (c.checks !== undefined && typeof c.checks !== 'boolean') throw new InvalidTrustConfigError('trust.checks must be true or false')
  if (c.taskModule !== undefined && (typeof c.taskModule !== 'string' || !/^[a-z0-9][a-z0-9._-]{0,63}$/.test(c.taskModule))) throw new InvalidTrustConfigError('trust.taskModule must be a catalog name')
  return c
}

export interface TrustServiceInit {
  /** The orchestration service (started after this one): its orchestrator's deployments, read when a job run ends. */
  orchestration: () => OrchestrationService | undefined
}

export class TrustService implements NodeService, OrchestrationTrust {
  readonly name = 'trust'
  readonly #orchestration: () => OrchestrationService | undefined
  #ctx: NodeContext | undefined
  #book: TrustBook | undefined
  #runs: CheckRuns | undefined
  #cfg: TrustConfig = {}
  #validators = new Set<string>()
  /** issuedAt of the last record applied, by `validator node`. */
  readonly #applied = new Map<string, number>()
  /** Contract ids of paid runs already judged (a report can arrive twice). */
  readonly #judged = new Set<string>()
  /** Quarantined nodes' next validation task: when, and the pause after it. */
  readonly #readmit = new Map<string, { at: number; pauseMs: number }>()
  /** Records refused, by error name (pubsub has nobody to answer). */
  readonly refused: Record<string, number> = {}
  /** Check runs by kind, for status. */
  /** What validators told this node of its enrolment, by validator. */
  readonly #ownEnrolments = new Map<string, OwnEnrolment>()
  readonly checks = { replicas: 0, validationTasks: 0, readmissionTasks: 0, inconclusive: 0, unverified: 0, enrolments: 0, notReplicated: 0 }
  /** Nodes waiting for their enrolment (one runs at a time), and when each may be tried again after a try without a verdict. */
  readonly #enrolQueue = new Set<string>()
  readonly #enrolRetry = new Map<string, { at: number; tries: number }>()
  #enrolling = false
  /** What this node was told about itself (a record of a validator it trusts). */
  #ownQuarantine: { by: string; reason: string; since: number } | null = null
  #timer: NodeJS.Timeout | undefined
  #republish: NodeJS.Timeout | undefined
  #unsubs: (() => void)[] = []
  #stopping = false

  constructor(init: TrustServiceInit) {
    this.#orchestration = init.orchestration
  }

  get book(): TrustBook | undefined {
    return this.#book
  }

  async start(ctx: NodeContext): Promise<void> {
    this.#ctx = ctx
    const cfg = (this.#cfg = trustConfig(ctx.config.trust))
    this.#validators = new Set([ctx.did, ...(cfg.validators ?? [])])
    const store = ctx.store
    const book = (this.#book = new TrustBook({
      policy: trustPolicyFrom(cfg.policy), self: ctx.did,
      changed: (r) => void store.put(`n/${r.node}`, r).catch((err: Error) => ctx.log.warn('trust record not stored', { node: r.node, error: err.message })),
    }))
    const records: NodeRecord[] = []
    for await (const [, v] of store.entries('n/')) records.push(v as NodeRecord)
    book.load(records)
    for await (const [k, v] of store.entries('a/')) this.#applied.set(k.slice(2), v as number)
    for await (const [, v] of store.entries('e/')) {
      const r = v as OwnEnrolment
      this.#ownEnrolments.set(r.validator, r)
    }
    for (const r of records) if (r.quarantine?.by === ctx.did) this.#readmit.set(r.node, { at: Date.now(), pauseMs: this.#readmitPause() })
    this.#runs = new CheckRuns({
      key: ctx.key, now: Date.now,
      askMarket: (did, behavior, body, timeoutMs) => ctx.system.refFor(`${did}/${MARKET_ACTOR}`).ask(behavior, body, { timeoutMs }),
      // paid like any replica, by this node's orchestrator (spec/trust.md "Paid check runs")
      payment: () => {
        const o = this.#orchestration()?.orchestrator
        return o ? { proposed: (c) => o.checkRunProposed(c), observed: (x) => o.checkRunObserved(x), ended: (id, why) => o.checkRunEnded(id, why) } : undefined
      },
    }, { deadlineMs: cfg.checkDeadlineMs ?? 60_000 })
    ctx.system.spawn(defineActor(setup({}).createMachine({ id: 'noir-trust' })).with({
      name: 'noir-trust',
      behaviors: {
        // public: anyone may hand a record over; only a verified record of a trusted validator is applied
        [TrustBehavior.record]: { public: true, reply: (_s, body: unknown) => this.receive(body) },
        // public: a validator tells a node its enrolment; kept only when about this node, from a validator it trusts, signed
        [TrustBehavior.enrolment]: { public: true, reply: (_s, body: unknown) => this.receiveEnrolment(body) },
      },
    }), { name: TRUST_ACTOR })
    this.#unsubs.push(
      ctx.pubsub.subscribe(HEARTBEAT_TOPIC, (msg) => {
        const owner = (msg.body as { facts?: { owner?: unknown } } | null)?.facts?.owner
        book.beat(msg.from, Date.now(), typeof owner === 'string' ? owner : undefined)
        this.#maybeEnrol(msg.from)
      }),
      ctx.pubsub.subscribe(TRUST_TOPIC, (msg) => {
        if (msg.from === ctx.did) return
        try {
          this.receive(msg.body)
        } catch (err) {
          const name = err instanceof Error ? err.name : 'Error'
          this.refused[name] = (this.refused[name] ?? 0) + 1
          ctx.log.info('trust record refused', { from: msg.from, error: name, message: (err as Error).message })
        }
      }),
    )
    this.#timer = setInterval(() => void this.#readmissionTasks(), Math.min(5000, this.#readmitPause()))
    this.#timer.unref()
    this.#republish = setInterval(() => {
      for (const r of book.nodes()) if (r.quarantine?.by === ctx.did) void this.#spread({ kind: 'quarantined', node: r.node, reason: r.quarantine.reason, at: r.quarantine.since }, false)
    }, cfg.republishMs ?? 60_000)
    this.#republish.unref()
  }

  async stop(): Promise<void> {
    this.#stopping = true
    if (this.#timer) clearInterval(this.#timer)
    if (this.#republish) clearInterval(this.#republish)
    for (const u of this.#unsubs) u()
    const ctx = this.#ctx
    if (ctx?.system.running) await ctx.system.stopActor(TRUST_ACTOR).catch(() => {})
  }

  // ---- what orchestration reads --------------------------------------------------------------------------

  trustOf(did: string): number {
    // a node does not grade itself (its own runs are not checked): it places itself as a middling node
    if (did === this.#ctx?.did) return 0.5
    return this.#book?.trust(did, Date.now()) ?? 0
  }

  quarantined(did: string): boolean {
    return this.#book?.isQuarantined(did) ?? false
  }

  observeReport(r: ReplicaReport): boolean {
    if (this.#runs?.report(r)) return true
    const self = this.#ctx?.did
    // a successful run is a result to check (a failed one is the job's retries' business)
    if (this.#cfg.checks !== false && r.state === 'exited' && r.code === 0 && r.node !== self && !this.#judged.has(r.contractId)) {
      this.#judged.add(r.contractId)
      if (this.#judged.size > 10_000) this.#judged.delete(this.#judged.values().next().value!)
      // after the report reached its deployment (the replica's view names the run)
      setImmediate(() => void this.#paidRunEnded(r).catch((err: unknown) => this.#ctx?.log.warn('job run not judged', { contractId: r.contractId, error: errorText(err) })))
    }
    return false
  }

  // ---- records --------------------------------------------------------------------------------------------

  /** A validator's enrolment result about this node: verified and kept (the latest per validator). */
  receiveEnrolment(raw: unknown): { kept: true; validator: string } {
    const ctx = this.#ctx!
    const b = verifyEnrolmentReport(raw, ctx.did, (v) => this.#validators.has(v) && v !== ctx.did)
    const r: OwnEnrolment = { validator: b.validator, ...b.enrolment }
    const was = this.#ownEnrolments.get(b.validator)
    if (was && was.at >= r.at) return { kept: true, validator: b.validator } // an older or repeated report changes nothing
    this.#ownEnrolments.set(b.validator, r)
    void ctx.store.put(`e/${b.validator}`, r).catch(() => {})
    ctx.log.info('enrolled by a validator', { validator: b.validator, verdict: r.verdict, reason: r.reason })
    return { kept: true, validator: b.validator }
  }

  /** A record handed over (the trust actor, pubsub, the local API): verified, then applied; typed errors otherwise. */
  receive(raw: unknown): { applied: true; kind: string; node: string } {
    const ctx = this.#ctx!
    const book = this.#book!
    const b = verifyTrustRecord(raw, {
      now: Date.now(), trusts: (v) => this.#validators.has(v), lastApplied: (v, n) => this.#applied.get(`${v} ${n}`),
    })
    const key = `${b.validator} ${b.node}`
    this.#applied.set(key, b.issuedAt)
    void ctx.store.put(`a/${key}`, b.issuedAt).catch(() => {})
    if (b.node === ctx.did) {
      this.#ownQuarantine = b.kind === 'quarantine' ? { by: b.validator, reason: b.reason, since: b.issuedAt } : null
      if (b.kind === 'quarantine') ctx.log.warn('this node is quarantined: it gets no paid work from the nodes that trust this validator', { validator: b.validator, reason: b.reason })
      else ctx.log.info('this node is readmitted', { validator: b.validator })
    } else if (b.validator !== ctx.did) {
      if (b.kind === 'quarantine' && !book.isQuarantined(b.node)) book.quarantine(b.node, b.reason, Date.now(), b.validator)
      else if (b.kind === 'readmission' && book.isQuarantined(b.node)) book.readmit(b.node, Date.now())
    }
    return { applied: true, kind: b.kind, node: b.node }
  }

  /** A quarantine or readmission this node decided: its record spread, readmission tests scheduled. */
  async #publish(e: BookEvent): Promise<void> {
    const ctx = this.#ctx!
    if (e.kind === 'quarantined') this.#readmit.set(e.node, { at: Date.now() + this.#readmitPause(), pauseMs: this.#readmitPause() })
    else this.#readmit.delete(e.node)
    ctx.log.warn(e.kind === 'quarantined' ? 'node quarantined' : 'node readmitted', { node: e.node, ...(e.kind === 'quarantined' ? { reason: e.reason } : {}) })
    await this.#spread(e, true)
  }

  /** Signs a new record of `e` (a later issuedAt than any before), publishes it and tells the node. */
  async #spread(e: BookEvent, tell: boolean): Promise<void> {
    const ctx = this.#ctx!
    const r = this.#book!.view(e.node, Date.now())!
    const record: SignedTrustRecord = signTrustRecord(ctx.key, {
      kind: e.kind === 'quarantined' ? 'quarantine' : 'readmission', node: e.node, issuedAt: Math.max(Date.now(), (this.#applied.get(`${ctx.did} ${e.node}`) ?? 0) + 1),
      reason: e.kind === 'quarantined' ? e.reason : 'passed validation tasks', evidence: { strikes: r.strikes, invalid: r.invalid, missed: r.missed, judged: r.judged },
    })
    this.#applied.set(`${ctx.did} ${e.node}`, record.body.issuedAt)
    // the node is told why, directly (first: the same record from pubsub would be a replay to it)
    if (tell) {
      await ctx.system.refFor(`${e.node}/${TRUST_ACTOR}`).ask(TrustBehavior.record, record, { timeoutMs: 5000 })
        .catch((err: Error) => ctx.log.info('node not told of its record', { node: e.node, error: err.name }))
    }
    await ctx.pubsub.publish(TRUST_TOPIC, record as unknown as JsonValue).catch((err: Error) => ctx.log.info('trust record not published', { error: err.message }))
  }

  #apply(node: string, verdict: 'valid' | 'invalid' | 'missed', by: 'replication' | 'known-answer', detail?: string): void {
    if (node === this.#ctx?.did) return
    for (const e of this.#book!.apply(node, verdict, by, Date.now(), detail)) void this.#publish(e)
  }

  // ---- checking ------------------------------------------------------------------------------------------

  /** A paid job run ended on another node: its output compared with a replica's when the policy says so. */
  async #paidRunEnded(r: ReplicaReport): Promise<void> {
    const o = this.#orchestration()?.orchestrator
    const w = o?.workloadOf(r.deploymentId)
    if (!o || !w || w.kind !== 'job') return
    const rep = o.status(r.deploymentId).replicas.find((x) => x.slot === r.slot)
    if (!rep || rep.contractId !== r.contractId || rep.node !== r.node) return
    const book = this.#book!
    const runs = this.#runs!
    const stdout = await runs.stdout(r.node, r.contractId)
    const first: RunResult = { node: r.node, owner: rep.owner ?? r.node, digest: outputDigest(r.code ?? null, stdout) }
    book.record(r.node, Date.now(), first.owner)
    book.returned(r.node, Date.now())
    // the job's owner may opt out of replication (spec/trust.md "Opting out"): nothing to compare, no verdict
    if (w.job?.replicate === false) this.checks.notReplicated++
    else if (book.shouldReplicate(r.node, Math.random())) await this.#replicate(first, w, r)
    if (!book.isQuarantined(r.node) && book.shouldValidate(Math.random())) await this.validationTask(r.node)
  }

  /** The job again on nodes of other owners until two agree (or the runs allowed are used up). */
  async #replicate(first: RunResult, w: Workload, r: ReplicaReport): Promise<void> {
    const policy = this.#book!.policy
    const results: RunResult[] = [first]
    const tried = new Set([first.node])
    let state = judgeRuns(results, policy.maxRuns)
    while (state.kind === 'needs-run' && !this.#stopping) {
      const out = await this.#runElsewhere(w, r, state.excludeOwners, tried)
      if (!out) {
        this.checks.unverified++
        this.#ctx?.log.info('job run not verified: no node of another owner took the replica', { deploymentId: r.deploymentId, node: first.node })
        break
      }
      this.checks.replicas++
      results.push({ node: out.node, owner: out.owner, digest: out.digest })
      state = judgeRuns(results, policy.maxRuns)
    }
    if (state.kind === 'inconclusive') this.checks.inconclusive++
    const detail = `job ${r.deploymentId} slot ${r.slot}: ${results.length} runs`
    for (const [node, v] of state.verdicts) this.#apply(node, v, 'replication', detail)
  }

  /** One run of `w` on the most trusted node that bids, of an owner not in `excludeOwners`. */
  async #runElsewhere(w: Workload, r: ReplicaReport, excludeOwners: Set<string>, tried: Set<string>): Promise<(CheckRunOutcome & { kind: 'result' }) | undefined> {
    const ctx = this.#ctx!
    const runs = this.#runs!
    const candidates = [...new Set([ctx.did, ...ctx.mesh.host.getConnections().map((c) => didOfPeer(c.remotePeer))])]
      .filter((d): d is string => d !== undefined && !tried.has(d) && !this.quarantined(d))
    const bids = await Promise.all(candidates.map(async (node) => ({ node, got: await runs.bid(node, { workload: w, deploymentId: r.deploymentId }) })))
    const ok = bids.flatMap((b) => ('bid' in b.got && !excludeOwners.has(certifiedOwner(b.got.bid.body)) ? [{ node: b.node, bid: b.got.bid }] : []))
      .sort((a, b) => this.trustOf(b.node) - this.trustOf(a.node))
    for (const c of ok) {
      tried.add(c.node)
      const out = await runs.run({ node: c.node, workload: w, deploymentId: r.deploymentId, slot: r.slot, epoch: r.epoch }, c.bid)
      if (out.kind === 'result') {
        if (out.digest === null) this.#apply(out.node, 'missed', 'replication', `replica of ${r.deploymentId}`)
        else return out
      }
    }
    return undefined
  }

  // ---- enrolment ---------------------------------------------------------------------------------------

  /** A node heard from that this node never measured gets in line for its enrolment. */
  #maybeEnrol(node: string): void {
    const cfg = this.#cfg
    if (cfg.enrol !== true || cfg.checks === false || node === this.#ctx?.did || this.#stopping) return
    if (this.#book!.view(node, Date.now())?.enrolment || this.#enrolQueue.has(node)) return
    const retry = this.#enrolRetry.get(node)
    if (retry && (retry.at > Date.now() || retry.tries >= 5)) return
    this.#enrolQueue.add(node)
    void this.#drainEnrolments()
  }

  async #drainEnrolments(): Promise<void> {
    if (this.#enrolling) return
    this.#enrolling = true
    try {
      for (const node of this.#enrolQueue) {
        if (this.#stopping) return
        await this.enrol(node).catch((err: unknown) => this.#ctx?.log.info('enrolment not done', { node, error: errorText(err) }))
        this.#enrolQueue.delete(node)
      }
    } finally {
      this.#enrolling = false
    }
  }

  /**
   * Measures `node` against its claim (spec/trust.md "Enrolment"): its bid's free capacity, then a job sized
   * to that claim running the benchmark (trust/enrolment.ts). A verdict is recorded (a claim it cannot back
   * is a strike); a try that gives none (the node declined, or is busy) is tried again later, at most 5 times.
   */
  async enrol(node: string): Promise<{ enrolment: Enrolment | null; reason?: string }> {
    const cfg = this.#cfg
    const runs = this.#runs!
    const id = `job-${randomBytes(4).toString('hex')}`
    const job = (cpu: number, memoryBytes: number, script: string, diskBytes?: number) => validateWorkload({
      apiVersion: 'noir/v1', kind: 'job', name: id,
      runtime: { type: 'container', image: cfg.enrolImage ?? 'noir/busybox:latest', command: ['sh', '-c', script] },
      resources: { cpu, memory: memoryBytes, ...(diskBytes ? { disk: diskBytes } : {}) }, job: { completions: 1, retries: 0, deadlineSeconds: 120 },
    })
    const noVerdict = (reason: string) => {
      const prev = this.#enrolRetry.get(node)
      const tries = (prev?.tries ?? 0) + 1
      this.#enrolRetry.set(node, { at: Date.now() + 30_000 * 2 ** (tries - 1), tries })
      return { enrolment: null, reason }
    }
    // what it claims: the free capacity its bid for a small job signs
    const probe = await runs.bid(node, { workload: job(0.1, 16 * 1024 * 1024, 'true'), deploymentId: id })
    if ('refused' in probe) return noVerdict(`no bid: ${probe.refused}`)
    const free = probe.bid.body.free
    const claimed = { cpu: free.cpu, memoryBytes: free.memoryBytes, diskBytes: free.diskBytes }
    // memory and disk written are bounded (trust.enrolMemoryBytes, trust.enrolDiskBytes); the container's
    // memory limit is the claim, so a node that does not have it fails the write (or is OOM-killed)
    const plan = enrolmentPlan(free, {
      seconds: (cfg.enrolMs ?? 1000) / 1000,
      ...(cfg.enrolMemoryBytes !== undefined ? { memoryCapBytes: cfg.enrolMemoryBytes } : {}),
      ...(cfg.enrolDiskBytes !== undefined ? { diskCapBytes: cfg.enrolDiskBytes } : {}),
    })
    const w = job(Math.max(0.1, Math.min(free.cpu, ENROL_MAX_WORKERS)), Math.max(16 * 1024 * 1024, free.memoryBytes), enrolmentScript(plan), plan.diskMiB * 1024 * 1024)
    this.checks.enrolments++
    // a bid for the job sized to the claim: a node whose free capacity changed meanwhile declines (no verdict)
    const sized = await runs.bid(node, { workload: w, deploymentId: id })
    if ('refused' in sized) return noVerdict(`no bid for its claimed capacity: ${sized.refused}`)
    const out = await runs.run({ node, workload: w, deploymentId: id, slot: `${id}/0`, epoch: 1 }, sized.bid)
    let e: Enrolment
    if (out.kind === 'refused') {
      // killed for memory while writing into a container limited to its claim: the memory is not there
      if (plan.memoryMiB > 0 && /\boom\b|out of memory/i.test(out.reason)) e = memoryKilled(claimed, plan.memoryMiB, out.reason, Date.now())
      // it bid for what it claims, then could not reserve it: the claim was more than it has
      else if (!/capacity|insufficient|reserve/i.test(out.reason)) return noVerdict(`the run was refused: ${out.reason}`)
      else e = refusedClaim(claimed, out.reason, Date.now())
    } else {
      if (out.digest === null) return noVerdict('the benchmark did not end in time')
      let measured
      try {
        measured = parseEnrolment(out.stdout ?? [], plan)
      } catch (err) {
        // output that is not a measure is never a pass: no verdict, tried again later
        return noVerdict(`the benchmark's output is not a measure: ${errorText(err)}`)
      }
      e = judgeEnrolment(claimed, measured, Date.now())
    }
    this.#enrolRetry.delete(node)
    if (out.kind === 'result' && out.owner) this.#book!.record(node, Date.now(), out.owner)
    for (const ev of this.#book!.enrolled(node, e)) void this.#publish(ev)
    // the node is told its result, signed (its owner's console shows it)
    void this.#ctx?.system.refFor(`${node}/${TRUST_ACTOR}`).ask(TrustBehavior.enrolment, signEnrolmentReport(this.#ctx.key, node, e), { timeoutMs: 5000 })
      .catch((err: Error) => this.#ctx?.log.info('node not told of its enrolment', { node, error: err.name }))
    this.#ctx?.log.info('node enrolled', { node, verdict: e.verdict, reason: e.reason })
    return { enrolment: e }
  }

  /** A known-answer validation task on `node`: a WASI job like any other, whose answer this node knows. */
  async validationTask(node: string, readmission = false): Promise<CheckRunOutcome> {
    const book = this.#book!
    const seed = newSeed()
    const id = `job-${randomBytes(4).toString('hex')}`
    const w = validateWorkload({
      apiVersion: 'noir/v1', kind: 'job', name: id.slice(0, 63),
      runtime: { type: 'wasm', module: this.#cfg.taskModule ?? 'noir-kat' },
      resources: { cpu: 0.1, memory: '32Mi' }, env: { [KNOWN_ANSWER_VAR]: seed },
      job: { completions: 1, retries: 0, deadlineSeconds: 60 },
    })
    if (readmission) this.checks.readmissionTasks++
    else this.checks.validationTasks++
    book.validationSent(node, Date.now())
    const out = await this.#runs!.run({ node, workload: w, deploymentId: id, slot: `${id}/0`, epoch: 1 })
    if (out.kind === 'result') {
      if (out.owner) book.record(node, Date.now(), out.owner)
      if (out.digest !== null) book.returned(node, Date.now())
      this.#apply(node, judgeKnownAnswer(knownAnswerDigest(seed), out.digest), 'known-answer', `validation task ${id}`)
    }
    return out
  }

  #readmitPause(): number {
    return this.#cfg.readmitIntervalMs ?? 60_000
  }

  /** Quarantined nodes whose time came get a validation task; a pause doubles after each failure (at most an hour). */
  async #readmissionTasks(): Promise<void> {
    const now = Date.now()
    for (const [node, due] of this.#readmit) {
      if (this.#stopping) return
      if (due.at > now) continue
      if (!this.quarantined(node)) {
        this.#readmit.delete(node)
        continue
      }
      due.at = Infinity // not twice at once
      const out = await this.validationTask(node, true).catch((err: unknown) => ({ kind: 'refused' as const, reason: errorText(err) }))
      if (this.quarantined(node)) {
        const passed = out.kind === 'result' && this.#book!.view(node, Date.now())!.readmitPasses > 0
        const pauseMs = passed ? due.pauseMs : Math.min(3600_000, due.pauseMs * 2)
        this.#readmit.set(node, { at: Date.now() + (passed ? 0 : pauseMs), pauseMs })
      }
    }
  }

  // ---- the API ---------------------------------------------------------------------------------------------

  status(): JsonValue {
    const views = this.#book?.views(Date.now()) ?? []
    return {
      nodes: views.length, quarantined: views.filter((v) => v.quarantine).length, checks: { ...this.checks }, inFlight: this.#runs?.inFlight ?? 0,
      refused: { ...this.refused }, thisNode: this.#ownQuarantine ? { quarantined: true, ...this.#ownQuarantine } : { quarantined: false },
    }
  }

  routes(): ApiRoute[] {
    const list = (): JsonValue => ({
      self: this.#ctx!.did, validators: [...this.#validators], policy: jsonCopy(this.#book!.policy),
      thisNode: { ...(this.#ownQuarantine ? { quarantined: true, ...this.#ownQuarantine } : { quarantined: false }), enrolments: jsonCopy([...this.#ownEnrolments.values()].sort((a, b) => b.at - a.at)) },
      nodes: this.#book!.views(Date.now()).map((v) => jsonCopy(v)),
    })
    return [
      { method: 'GET', path: '/v1/trust', handler: () => list() },
      {
        method: 'GET',
        path: '/v1/trust/nodes/:did',
        handler: (req) => {
          const v = this.#book!.view(req.params.did!, Date.now())
          if (!v) throw new UnknownNodeError(`this node knows nothing of ${req.params.did}`)
          return jsonCopy(v)
        },
      },
      { method: 'POST', path: '/v1/trust/records', handler: (req) => this.receive(req.body) },
      {
        method: 'POST',
        path: '/v1/trust/nodes/:did/enrol',
        handler: async (req) => {
          if (!isDidKey(req.params.did!)) throw new UnknownNodeError(`${req.params.did} is not a node DID`)
          return jsonCopy(await this.enrol(req.params.did!))
        },
      },
      {
        method: 'POST',
        path: '/v1/trust/nodes/:did/validate',
        handler: async (req) => jsonCopy(await this.validationTask(req.params.did!)),
      },
    ]
  }
}

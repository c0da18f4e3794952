// The orchestration node service: every daemon is both a provider (its market actor bids, reserves,
// countersigns and runs work through the appliance's allocator and allocations) and an orchestrator for
// its own customers (the CLI talks to its own node). Also: the pubsub wiring (bid requests, fences,
// liveness beats), contracts in level, and the local API routes behind `noir deploy/ps/status/logs/stop/
// bids/contracts` (orchestration-routes.ts; spec/orchestration.md, spec/cli.md).
//
// Appliance parts: the appliance's node service (started before this one) owns the node's allocator and
// allocation manager; the composition (appliance/daemon/services.ts) hands them to this service, so there
// are never two per node.
import { arch as osArch } from 'node:os'
import { didOfPeer, peerIdFromDid } from '../../identity/did-key.ts'
import { HEARTBEAT_TOPIC } from '../heartbeat/heartbeat.ts'
import type { ApplianceParts } from './appliance-parts.ts'
import { ApplianceRuntime, STOP_GRACE_MS, allocationIdFor, type WorkloadArtifacts } from './appliance-runtime.ts'
import type { ApiRoute, JsonValue, NodeContext, NodeService } from '../daemon/service.ts'
import type { ProviderSecrets } from '../secrets/protocol.ts'
import { KvContractStore } from '../../actors/contracts/store.ts'
import { Orchestrator } from '../../actors/orchestrator/orchestrator.ts'
import { KvDeploymentStore, KvStandbyReplicaStore } from '../../actors/orchestrator/deployment-store.ts'
import { MARKET_ACTOR, MarketBehavior, ORCHESTRATOR_ACTOR, OrchestratorBehavior, Topics } from '../../actors/orchestrator/protocol.ts'
import { Provider, type ReplicaReport } from '../../actors/provider/provider.ts'
import { pricePolicyFrom, type PricePolicy } from '../../actors/placement/price.ts'
import type { Arch } from '../../actors/workload/workload.ts'
import { Catalog } from '../catalog/catalog.ts'
import { BidAnswerLimiter } from './bid-answers.ts'
import { CapacityIndex } from '../../actors/placement/capacity-index.ts'
import { DepartureProbe } from '../../p2p/departure-probe.ts'
import { failpoints } from '../../core/failpoints.ts'
import { contractRoutes, deploymentRoutes, nodeContractRoutes } from './orchestration-routes.ts'
import type { ReconcileReport } from '../../actors/orchestrator/reconciliation.ts'
import { publicKeyCacheStats, sizePublicKeyCacheFor } from '../../identity/keys.ts'
import type { Ledger } from '../../ledger/ledger.ts'
import { KvUsageStore } from '../../actors/usage/store.ts'
import { UsageMeter, type MeasuredUsage } from '../../actors/usage/meter.ts'
import type { UsageRecord } from '../../actors/usage/record.ts'
import { LedgerEarnings, LedgerEscrow } from './ledger-escrow.ts'
import { meteringConfig } from './metering-config.ts'
import { usageRoutes } from './usage-routes.ts'
import { CheckpointCosigner } from './ledger-cosigner.ts'
import type { TrustView } from '../../actors/placement/offer.ts'
import type { ReplicaReport as ContractReport } from '../../actors/provider/contract-machine.ts'
import { testFaultsFrom } from '../../trust/faults.ts'
import { cheatingRunner, inflatedCapacity } from './cheating-runner.ts'
import { rebalancePolicyFrom } from '../../actors/orchestrator/rebalancer.ts'
import { coreRootsFrom, nodeCertificatesFrom } from './node-certificates.ts'
import type { NodeCertificateBody } from '../../actors/placement/node-certificate.ts'
import { SignatureWorker } from '../../identity/signature-worker.ts'

/** What the trust service (trust-service.ts) gives orchestration: its view of nodes, and the reports it takes. */
export interface OrchestrationTrust extends TrustView {
  observeReport(r: ContractReport): boolean
}

/** config.json `orchestration` section. */
interface OrchestrationConfig {
  /** How often protected replicas with a stateDir are checkpointed, ms (default 30 s; 0 never; spec/migration.md). */
  checkpointEveryMs?: number
  /** Move best-effort service replicas to clearly cheaper nodes (spec/migration.md "Rebalancing"): true or a policy; off when absent. */
  rebalance?: unknown
  region?: string
  labels?: Record<string, string>
  owner?: string
  price?: Partial<PricePolicy>
  /** Liveness beat interval, ms (default 250): the failure detector's clock. */
  beatMs?: number
  bidWindowMs?: number
  /** How long a degraded deployment waits before it tries again to place a slot no node took (default 30 s). */
  replaceRetryMs?: number
  /**
   * Which orchestrators' broadcast bid requests this node answers (spec/orchestration.md, "Who is answered"):
   * 'connected' (default), only an orchestrator with an open, authenticated connection to this node, one
   * that can be held to what it asks (identified, reachable without a dial, quarantined if it cheats);
   * 'anyone', every orchestrator, within the bounds of bid-answers.ts. Direct asks are answered either way.
   */
  answerBroadcastBids?: 'connected' | 'anyone'
  /**
   * This node's standby orchestrator: the DID of another node its owner controls. Every deployment snapshot
   * is replicated to it, and it takes the deployments over if this node is lost (spec/orchestration.md).
   */
  standby?: string
  /** The nodes this node is the standby orchestrator of (nobody else's snapshots are accepted). */
  standbyFor?: string[]
  /**
   * Secret values by name for this node's own deployments (spec/secrets.md): sealed to the provider of each
   * replica that names one, at its start. Deployments made through a gateway get theirs from the gateway.
   */
  secrets?: Record<string, string>
  /**
   * Testing only: the free capacity this node claims in its bids instead of the real one (a node that bids
   * for capacity it does not have). Reservations still go through the real allocator and fail.
   */
  claimFree?: { cpu?: number; memoryBytes?: number }
  /**
   * Contract leases (spec/contracts.md "Leases"): `ms` the lease this node writes in the contracts it
   * proposes (default 30000), `renewMs` how often it renews them (default a third of `ms`), `minMs`/`maxMs`
   * the leases it accepts as a provider (default 1000-600000). Short leases are for tests.
   */
  lease?: { ms?: number; renewMs?: number; minMs?: number; maxMs?: number }
}

const archOf = (): Arch => (osArch() === 'arm64' ? 'arm64' : osArch() === 'riscv64' ? 'riscv64' : 'amd64')
const ALIVE_TOPIC = 'noir/alive/v1'


export interface OrchestrationServiceInit {
  /** The appliance's parts, read at start: the appliance service is started before this one. */
  appliance: () => ApplianceParts
  /** The node's ledger (the ledger service is started before this one): escrow holds and usage payments. */
  ledger: () => Ledger
  /** The trust service (started before this one), when the node runs one: offers' trust, quarantine, job runs compared. */
  trust?: () => OrchestrationTrust | undefined
  /** The artifacts service (started before this one): workloads' artifacts fetched by digest, provenance. */
  artifacts?: () => WorkloadArtifacts | undefined
  /** The secrets service (started after this one, asked at each start): where workloads' secrets come from. */
  secrets?: () => ProviderSecrets | undefined
  /** Revocations of node certificates this node holds (started before this one): placement believes no revoked certificate. */
  certRevocations?: () => { revokes(c: NodeCertificateBody): boolean } | undefined
}

export class OrchestrationService implements NodeService {
  readonly name = 'orchestration'
  readonly #appliance: () => ApplianceParts
  readonly #ledger: () => Ledger
  readonly #certRevocations: OrchestrationServiceInit['certRevocations']
  readonly #trust: (() => OrchestrationTrust | undefined) | undefined
  readonly #artifacts: (() => WorkloadArtifacts | undefined) | undefined
  readonly #secrets: (() => ProviderSecrets | undefined) | undefined
  #usageStore: KvUsageStore | undefined
  #meter: UsageMeter | undefined
  #cosigner: CheckpointCosigner | undefined
  #ctx: NodeContext | undefined
  #orchestrator: Orchestrator | undefined
  /** Bounds the bid answers strangers can make this node send (spec/pubsub.md "Admission"). */
  bidAnswers: BidAnswerLimiter | undefined
  #provider: Provider | undefined
  #runtime: ApplianceRuntime | undefined
  #contracts: KvContractStore | undefined
  #unsubs: (() => void)[] = []
  #departures: DepartureProbe | undefined
  #timers: NodeJS.Timeout[] = []
  #latency = new Map<string, number>()
  /** The mesh's heartbeat bodies, for placement at scale (spec/orchestration.md, "Placement at scale"). */
  readonly capacityIndex = new CapacityIndex()
  /**
   * The orchestrator's signature thread: the picks' bid signatures are verified there while the orchestrator
   * serves other deployments (spec/orchestration.md "Bids verified on the signature thread"). Its thread
   * starts at the first bid verified; past 16 picks waiting on it, the orchestrator verifies the next itself.
   */
  #signatures: SignatureWorker<unknown> | undefined

  constructor(init: OrchestrationServiceInit) {
    this.#appliance = init.appliance
    this.#ledger = init.ledger
    this.#trust = init.trust
    this.#artifacts = init.artifacts
    this.#secrets = init.secrets
    this.#certRevocations = init.certRevocations
  }

  /** The orchestrator (after start): the trust service reads the workloads and replicas of job runs it compares. */
  get orchestrator(): Orchestrator | undefined {
    return this.#orchestrator
  }

  /** This node's contracts (after start): the ingress reads the ones it provides. */
  get contracts(): KvContractStore | undefined {
    return this.#contracts
  }

  /** The provider side (after start): the ingress asks it who orchestrates a deployment now. */
  get provider(): Provider | undefined {
    return this.#provider
  }

  async start(ctx: NodeContext): Promise<void> {
    this.#ctx = ctx
    // armed from NOIR_FAILPOINTS now: a malformed value stops the start here, not at the first step
    const armed = failpoints().armed
    if (armed.length > 0) ctx.log.warn('failpoints armed: this node will kill itself there (testing only)', { failpoints: armed })
    const cfg = (ctx.config.orchestration ?? {}) as OrchestrationConfig
    const rebalance = rebalancePolicyFrom(cfg.rebalance)
    this.#runtime = new ApplianceRuntime({
      parts: this.#appliance(), ...(this.#secrets ? { secrets: this.#secrets } : {}), catalog: new Catalog(ctx.home), ...(cfg.claimFree ? { claimFree: cfg.claimFree } : {}),
      log: ctx.log, ...(ctx.tracing ? { span: ctx.tracing.inSpan.bind(ctx.tracing) } : {}), ...(this.#artifacts?.() ? { artifacts: this.#artifacts()! } : {}),
    })
    await this.#runtime.refreshRuntimes()
    this.#contracts = new KvContractStore(ctx.store)
    const lease = leaseConfig(cfg.lease)
    // tests only: a node that cheats (refused, and the daemon does not start, without NOIR_TEST_FAULTS=1)
    const faults = testFaultsFrom((ctx.config.trust as { testFaults?: unknown } | undefined)?.testFaults, process.env)
    if (faults) ctx.log.warn('test faults armed: this node cheats (testing only)', { ...faults })
    const trust = this.#trust
    const certs = nodeCertificatesFrom(ctx.config as unknown as Record<string, unknown>, ctx.did, cfg.owner)
    const coreRoots = coreRootsFrom(ctx.config as unknown as Record<string, unknown>)
    const revocations = this.#certRevocations
    const certificateRevoked = (c: NodeCertificateBody): boolean => revocations?.()?.revokes(c) ?? false

    this.#provider = new Provider({
      key: ctx.key,
      facts: {
        did: ctx.did, owner: certs.owner ?? cfg.owner ?? ctx.did, arch: archOf(), region: cfg.region ?? 'local', labels: cfg.labels ?? {},
        ...(certs.ownerCert ? { ownerCert: certs.ownerCert } : {}), ...(certs.coreCert ? { coreCert: certs.coreCert } : {}),
      },
      capacity: faults ? inflatedCapacity(this.#runtime, faults) : this.#runtime,
      runner: faults ? cheatingRunner(this.#runtime, faults) : this.#runtime,
      contracts: this.#contracts,
      price: pricePolicyFrom(cfg.price),
      lease: { minMs: lease.minMs, maxMs: lease.maxMs, defaultMs: lease.ms },
      report: (consumer: string, r: ReplicaReport) => this.#report(consumer, r),
      // a contract stopped by its consumer: its instance's last usage record (final) is issued now
      instanceStopped: (contractId: string, at: number) => void this.#meter?.ended(contractId, at).catch((err: Error) => ctx.log.warn('final usage record not issued', { contractId, error: err.message })),
      system: ctx.system,
      log: ctx.log,
    })
    const metering = meteringConfig(ctx.config.ledger)
    const usageStore = (this.#usageStore = new KvUsageStore(ctx.store))
    const cosigner = (this.#cosigner = new CheckpointCosigner({
      ledger: this.#ledger,
      ask: (to, req) => ctx.system.refFor(`${to}/${ORCHESTRATOR_ACTOR}`).ask(OrchestratorBehavior.cosign, req, { timeoutMs: 10_000 }),
      store: ctx.store.scope('cosign/'),
      log: (level, msg, fields) => ctx.log[level](msg, fields),
    }))
    this.#meter = new UsageMeter({
      key: ctx.key, contracts: this.#contracts, store: usageStore, now: Date.now,
      // to whoever orchestrates the deployment now: its consumer, or the standby that took it over
      send: async (consumer: string, record: UsageRecord) => {
        const to = await this.#provider!.orchestratorOf(consumer, record.body.deploymentId).catch(() => consumer)
        return ctx.system.refFor(`${to}/${ORCHESTRATOR_ACTOR}`).ask(OrchestratorBehavior.usage, record, { timeoutMs: 10_000 })
      },
      earnings: new LedgerEarnings(this.#ledger, metering.conversion),
      orchestratorOf: (consumer, deploymentId) => this.#provider!.orchestratorOf(consumer, deploymentId),
      credited: (consumer, contractId, seq, deploymentId) => {
        // the witness is whoever answered the record: the consumer, or its standby after a takeover
        void this.#provider!.orchestratorOf(consumer, deploymentId).catch(() => consumer).then((to) => cosigner.credited(to, contractId, seq))
      },
      measure: (contractId) => measuredUsage(this.#appliance(), contractId),
      log: (level, msg, fields) => ctx.log[level](msg, fields),
    }, { intervalMs: metering.usageIntervalMs })
    // Spawns the market actor (<did>/market) and takes up this node's live contracts, each in its own actor.
    await this.#provider.start()
    this.#orchestrator = new Orchestrator({
      key: ctx.key,
      askMarket: (did, behavior, body, timeoutMs) => ctx.system.refFor(`${did}/${MARKET_ACTOR}`).ask(behavior, body, { timeoutMs }),
      publish: async (topic, body) => {
        await ctx.pubsub.publish(topic, body as JsonValue)
      },
      candidates: () => connectedDids(ctx),
      latencyMs: (did) => this.#latency.get(did),
      contracts: this.#contracts,
      deployments: new KvDeploymentStore(ctx.store),
      system: ctx.system,
      askOrchestrator: (did, behavior, body, timeoutMs) => ctx.system.refFor(`${did}/${ORCHESTRATOR_ACTOR}`).ask(behavior, body, { timeoutMs }),
      keepArtifact: async (digest, from) => {
        await this.#artifacts?.()?.file(digest, { from })
      },
      ...(cfg.standby ? { standby: cfg.standby } : {}),
      standbyFor: cfg.standbyFor ?? [],
      standbyReplicas: new KvStandbyReplicaStore(ctx.store),
      capacityIndex: this.capacityIndex,
      signatures: (this.#signatures = new SignatureWorker<unknown>({
        onFailure: () => {}, // it only verifies detached bid signatures, answered through their callbacks
        inlineVerifyOver: 16,
        onThreadLost: (err) => ctx.log.warn('signature thread lost: bids are verified inline', { error: err.message }),
      })),
      escrow: new LedgerEscrow(this.#ledger),
      usage: usageStore,
      ...(trust ? {
        trust: { trustOf: (did: string) => trust()?.trustOf(did) ?? 0.5, quarantined: (did: string) => trust()?.quarantined(did) ?? false, coreRoots, certificateRevoked },
        observeReport: (r: ContractReport) => trust()?.observeReport(r) ?? false,
      } : { trust: { trustOf: () => 0.5, quarantined: () => false, coreRoots, certificateRevoked } }),
      log: ctx.log,
    }, {
      escrowWindowMs: metering.escrowWindowMs,
      bidWindowMs: cfg.bidWindowMs ?? 1500, heartbeatIntervalMs: cfg.beatMs ?? 250, stopGraceMs: STOP_GRACE_MS, leaseMs: lease.ms, leaseRenewMs: lease.renewMs,
      holdReportsUntilRestore: true,
      ...(cfg.replaceRetryMs !== undefined ? { replaceRetryMs: cfg.replaceRetryMs } : {}),
      ...(typeof cfg.checkpointEveryMs === 'number' && Number.isSafeInteger(cfg.checkpointEveryMs) && cfg.checkpointEveryMs >= 0 ? { checkpointEveryMs: cfg.checkpointEveryMs } : {}),
      // checked when config.json was read (appliance/daemon/config.ts)
      ...(rebalance ? { rebalance } : {}),
    })
    this.#orchestrator.start()
    // A watched node whose process died is convicted when its connections close, not after its silence.
    const orchestrator = this.#orchestrator
    const departures = (this.#departures = new DepartureProbe(ctx.mesh.host, {
      watched: (peer) => {
        const did = didOfPeer(peer)
        return did !== undefined && orchestrator.watches(did)
      },
      onGone: (peer, evidence) => {
        const did = didOfPeer(peer)
        if (did === undefined) return
        ctx.log.info('node gone', { node: did, evidence })
        orchestrator.gone(did, evidence)
      },
      log: ctx.log,
    }))
    departures.start()
    // contracts that ran before a restart are metered again from their last record; unanswered records are sent again
    await this.#meter.resume().catch((err: Error) => ctx.log.warn('metering not resumed', { error: err.name, message: err.message }))
    await cosigner.resume().catch((err: Error) => ctx.log.warn('cosigning not resumed', { error: err.name, message: err.message }))
    const restored = await this.#orchestrator.restore()
    if (restored > 0) ctx.log.info('deployments restored', { count: restored })
    // In the background: the providers this node dealt with (and the nodes it knows) are asked which of its
    // contracts they hold; those no deployment names are stopped (spec/contracts.md "Reconciliation").
    const known = connectedDids(ctx)
    this.#orchestrator.reconcile(known).catch((err: Error) => ctx.log.warn('reconciliation failed', { error: err.name, message: err.message }))

    const o = this.#orchestrator
    const bidAnswers = (this.bidAnswers = new BidAnswerLimiter(ctx.log))
    this.#unsubs.push(
      ctx.pubsub.subscribe(Topics.bidRequests, (msg) => {
        if (msg.from === ctx.did) return
        const connected = connectedTo(ctx, msg.from)
        // refused before any work: an orchestrator this node could not hold to its request
        if (!connected && cfg.answerBroadcastBids !== 'anyone') return bidAnswers.dropped.add('orchestrator-not-connected', Date.now())
        // through the market actor's mailbox, like a direct ask
        bidAnswers.run(msg.from, connected, () => ctx.system.ask(`${ctx.did}/${MARKET_ACTOR}`, MarketBehavior.bid, msg.body, { timeoutMs: 5000 }).then(
          (answer) => ctx.system.refFor(`${msg.from}/${ORCHESTRATOR_ACTOR}`).ask(OrchestratorBehavior.bid, answer, { timeoutMs: 5000 }),
        ))
      }),
      ctx.pubsub.subscribe(Topics.fences, (msg) => {
        // One fence `{ slot, epoch, contractId?, handover? }`, or a batch `{ fences: [...], handovers?: [...] }` (the
        // periodic repeat; a standby orchestrator's handovers once per deployment, matched to fences by slot).
        type Fence = { slot: string; epoch: number; contractId?: string; handover?: unknown }
        const b = msg.body as (Fence & { fences?: Fence[]; handovers?: unknown[] }) | null
        const handovers = new Map<string, unknown>()
        if (Array.isArray(b?.handovers)) {
          for (const h of b.handovers.slice(0, 1000)) {
            const id = (h as { deploymentId?: unknown } | null)?.deploymentId
            if (typeof id === 'string') handovers.set(id, h)
          }
        }
        const withHandover = (f: Fence): Fence => {
          if (f?.handover !== undefined || handovers.size === 0 || typeof f?.slot !== 'string') return f
          const h = handovers.get(f.slot.slice(0, f.slot.lastIndexOf('/')))
          return h === undefined ? f : { ...f, handover: h }
        }
        const list = (Array.isArray(b?.fences) ? b.fences.slice(0, 1000) : [b as Fence]).map(withHandover)
        // A broadcast reaches every node: a slot this node holds nothing of is the usual case, not news.
        // One after another, so a batch of fences never runs a thousand store reads at once.
        // Through the market actor's mailbox: pubsub verified the signer, so this node vouches for `from`.
        void (async () => {
          for (const f of list) {
            await ctx.system.ask<{ stopped: string[] }>(`${ctx.did}/${MARKET_ACTOR}`, MarketBehavior.fenceHeard, { fence: f, from: msg.from }, { timeoutMs: 10_000 }).then(
              (r) => r.stopped.length > 0 && ctx.log.warn('fenced stale copies', { stopped: r.stopped, from: msg.from }),
              (err: Error) => err.name !== 'UnknownSlotError' && ctx.log.info('fence refused', { from: msg.from, error: err.name }),
            )
          }
        })()
      }),
      ctx.pubsub.subscribe(ALIVE_TOPIC, (msg) => o.heartbeat(msg.from)),
      ctx.pubsub.subscribe(HEARTBEAT_TOPIC, (msg) => {
        o.heartbeat(msg.from)
        try {
          this.capacityIndex.observe(msg.from, msg.body)
        } catch (err) {
          ctx.log.debug('heartbeat not indexed', { from: msg.from, error: (err as Error).name, message: (err as Error).message })
        }
      }),
    )
    // Liveness beats: small, frequent, signed by the pubsub layer; the phi-accrual detector's clock.
    // A beat that cannot be published is a missed beat: exactly what the peers' detectors measure (debug only).
    const beat = setInterval(() => void ctx.pubsub.publish(ALIVE_TOPIC, { at: Date.now() }, { ttlMs: 5000 })
      .catch((err: Error) => ctx.log.debug('liveness beat not published', { error: err.name, message: err.message })), cfg.beatMs ?? 250)
    beat.unref()
    const lat = setInterval(() => void this.#refreshLatency(), 2000)
    lat.unref()
    const rt = setInterval(() => {
      this.#runtime?.refreshRuntimes().catch((err: Error) => ctx.log.warn('runtimes not refreshed', { error: err.name, message: err.message }))
    }, 10_000)
    rt.unref()
    const prune = setInterval(() => {
      this.capacityIndex.prune()
      // the bids acted on come from any node of the index: their keys must stay cached (identity/keys.ts)
      sizePublicKeyCacheFor(this.capacityIndex.size)
      this.#signatures?.sizeKeyCacheFor(this.capacityIndex.size)
    }, 5000)
    prune.unref()
    this.#timers.push(beat, lat, rt, prune)
  }

  async stop(): Promise<void> {
    this.#meter?.stop()
    this.#cosigner?.stop()
    this.#departures?.stop()
    for (const t of this.#timers) clearInterval(t)
    for (const u of this.#unsubs) u()
    await this.#orchestrator?.stop()
    await this.#signatures?.stop()
    // Stops the market actor and its contract actors (an actor already gone is stopped with the system right after).
    await this.#provider?.stop()
    this.#runtime?.close()
  }

  status(): JsonValue {
    const list = this.#orchestrator?.list() ?? []
    const b = this.bidAnswers
    return {
      deployments: list.length, running: list.filter((d) => d.phase === 'running').length, runtimes: this.#runtime?.runtimes() ?? [],
      bidAnswers: { sent: b?.answered ?? 0, inFlight: b?.inFlight ?? 0, dropped: { ...(b?.dropped.total ?? {}) } },
      ownStalls: this.#orchestrator?.ownStalls ?? null,
      standby: this.#orchestrator?.standby ?? null,
      leases: this.#orchestrator?.leases ?? null,
      reconciliation: reconciliationSummary(this.#orchestrator?.reconciliation ?? null),
      capacityIndex: { ...this.capacityIndex.stats() },
      bidSignaturesChecked: this.#orchestrator?.bidSignaturesChecked ?? 0,
      publicKeyCache: publicKeyCacheStats(),
    }
  }

  routes(): ApiRoute[] {
    return [
      ...usageRoutes(this.#orchestrator!, () => this.#usageStore!),
      ...deploymentRoutes(this.#orchestrator!), ...contractRoutes(this.#contracts!), ...nodeContractRoutes(this.#provider!),
    ]
  }

  #report(consumer: string, r: ReplicaReport): void {
    const ctx = this.#ctx
    if (!ctx) return
    // metering follows this node's own instances: a record every interval while running, the final one at the end
    const meter = this.#meter
    if (meter && r.state === 'running') meter.started(r.contractId, r.at).catch((err: Error) => ctx.log.warn('metering not started', { contractId: r.contractId, error: err.message }))
    else if (meter && (r.state === 'exited' || r.state === 'failed' || r.state === 'stopped')) meter.ended(r.contractId, r.at).catch((err: Error) => ctx.log.warn('final usage record not issued', { contractId: r.contractId, error: err.message }))
    if (consumer === ctx.did) {
      this.#orchestrator?.report(r, ctx.did)
      return
    }
    ctx.system.refFor(`${consumer}/${ORCHESTRATOR_ACTOR}`).ask(OrchestratorBehavior.report, r, { timeoutMs: 5000 })
      .catch((err: Error) => ctx.log.warn('replica report not delivered', { consumer, error: err.name, message: err.message }))
  }

  async #refreshLatency(): Promise<void> {
    // Latency is a placement hint refreshed every 2 s: no list this round keeps the last figures.
    const peers = await this.#ctx?.mesh.peers.list().catch(() => [])
    for (const p of peers ?? []) if (p.did && p.latencyMs !== null) this.#latency.set(p.did, p.latencyMs)
  }
}

/**
 * What the executor measured of a contract's allocation, as the allocation manager last sampled it (every 5 s):
 * cpu and memory from every executor that samples them, egress from containers only (the other runtimes have
 * no network counters of their own). Nothing once the allocation is gone (spec/ledger.md "Metering").
 */
function measuredUsage(parts: ApplianceParts, contractId: string): MeasuredUsage | undefined {
  try {
    const a = parts.allocations.get(allocationIdFor(contractId))
    const u = a.usage
    if (!u) return undefined
    return { cpuNanos: u.cpuNanos, memoryBytes: u.memoryBytes, ...(a.kind === 'docker' ? { egressBytes: u.netTxBytes } : {}) }
  } catch {
    return undefined
  }
}

/** The DIDs of the peers this node has a connection to. */
function connectedDids(ctx: NodeContext): string[] {
  // a peer whose id is not an Ed25519 key has no did:key: not a node to ask
  return [...new Set(ctx.mesh.host.getConnections().map((c) => didOfPeer(c.remotePeer)))].filter((d) => d !== undefined)
}

/** The lease settings from config.json, with their defaults; a renewal period not below the lease is a third of it. */
function leaseConfig(c: OrchestrationConfig['lease']): { ms: number; renewMs: number; minMs: number; maxMs: number } {
  const pos = (x: unknown, d: number): number => (Number.isSafeInteger(x) && (x as number) > 0 ? (x as number) : d)
  const ms = pos(c?.ms, 30_000)
  const renewMs = pos(c?.renewMs, Math.floor(ms / 3))
  return { ms, renewMs: renewMs < ms ? renewMs : Math.floor(ms / 3), minMs: pos(c?.minMs, 1000), maxMs: pos(c?.maxMs, 600_000) }
}

function reconciliationSummary(r: ReconcileReport | null): JsonValue {
  if (!r) return null
  return {
    done: r.done, asked: r.asked, answered: r.answered, unreachable: r.unreachable.length, adopted: r.adopted.length,
    stopped: r.stopped.map((x) => ({ ...x })), left: r.left.length, failed: r.failed.map((x) => ({ ...x })),
  }
}

/** Whether this node has an open connection to `did` (an answer to it needs no dial). */
function connectedTo(ctx: NodeContext, did: string): boolean {
  try {
    return ctx.mesh.host.getConnections(peerIdFromDid(did)).length > 0
  } catch {
    return false
  }
}

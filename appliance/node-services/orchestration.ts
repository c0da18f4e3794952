// The orchestration node service: every daemon is both a provider (its market actor bids, reserves,
// countersigns and runs work through the appliance's allocator and allocations) and an orchestrator for
// its own customers (the CLI talks to its own node). Also: the pubsub wiring (bid requests, fences,
// liveness beats), contracts in level, and the local API routes behind `noir deploy/ps/status/logs/stop/
// bids/contracts` (spec/orchestration.md, spec/cli.md).
//
// Appliance parts: the appliance's node service (started before this one) shares its allocator and
// allocation manager (appliance-parts.ts). A daemon composed without it (tests of other layers) gets this
// service's own, over the owner's share (config `share`); never two per node.
import { arch as osArch } from 'node:os'
import { join } from 'node:path'
import { didFromPeerId } from '../../identity/did-key.ts'
import { Allocator, type JsonStore } from '../allocator/allocator.ts'
import { AllocationManager } from '../allocation/allocation-manager.ts'
import { DockerExecutor } from '../executor/docker/docker-executor.ts'
import { WasmExecutor } from '../executor/wasm/wasm-executor.ts'
import type { Executor, ExecutorKind } from '../executor/executor.ts'
import { parseShare, DEFAULT_SHARE } from '../share/share.ts'
import { HEARTBEAT_TOPIC } from '../heartbeat/heartbeat.ts'
import { applianceParts, type ApplianceParts } from './appliance-parts.ts'
import { ApplianceRuntime, STOP_GRACE_MS } from './appliance-runtime.ts'
import { InvalidRequestError } from '../daemon/errors.ts'
import type { ApiRoute, JsonValue, NodeContext, NodeService, NodeServiceFactory } from '../daemon/service.ts'
import { ndjson } from '../daemon/service.ts'
import { LevelContractStore, contractSummary, type StringKv } from '../../actors/contracts/store.ts'
import { Orchestrator, type DeploymentRecord } from '../../actors/orchestrator/orchestrator.ts'
import { MARKET_ACTOR, MarketBehavior, ORCHESTRATOR_ACTOR, OrchestratorBehavior, Topics } from '../../actors/orchestrator/protocol.ts'
import { Provider, type ReplicaReport } from '../../actors/provider/provider.ts'
import type { LogEntry } from '../../actors/provider/ports.ts'
import { pricePolicyFrom, type PricePolicy } from '../../actors/placement/price.ts'
import { parseWorkloadText, validateWorkload, workloadFromWire, type Arch, type Workload } from '../../actors/workload/workload.ts'
import { InvalidWorkloadError } from '../../actors/errors.ts'
import { Catalog } from '../catalog/catalog.ts'
import { BidAnswerLimiter } from './bid-answers.ts'
import { peerIdFromDid } from '../../identity/did-key.ts'

/** config.json `orchestration` section. */
interface OrchestrationConfig {
  region?: string
  labels?: Record<string, string>
  owner?: string
  price?: Partial<PricePolicy>
  /** Liveness beat interval, ms (default 250): the failure detector's clock. */
  beatMs?: number
  bidWindowMs?: number
  /**
   * Which orchestrators' broadcast bid requests this node answers (spec/orchestration.md, "Who is answered"):
   * 'connected' (default), only an orchestrator with an open, authenticated connection to this node, one
   * that can be held to what it asks (identified, reachable without a dial, quarantined if it cheats);
   * 'anyone', every orchestrator, within the bounds of bid-answers.ts. Direct asks are answered either way.
   */
  answerBroadcastBids?: 'connected' | 'anyone'
  /** Secret values by name; a workload names a secret, only this node's config holds its value. */
  secrets?: Record<string, string>
  /**
   * Testing only: the free capacity this node claims in its bids instead of the real one (a node that bids
   * for capacity it does not have). Reservations still go through the real allocator and fail.
   */
  claimFree?: { cpu?: number; memoryBytes?: number }
}

const archOf = (): Arch => (osArch() === 'arm64' ? 'arm64' : osArch() === 'riscv64' ? 'riscv64' : 'amd64')
const ALIVE_TOPIC = 'noir/alive/v1'

class OrchestrationService implements NodeService {
  readonly name = 'orchestration'
  #ctx: NodeContext | undefined
  #orchestrator: Orchestrator | undefined
  /** Bounds the bid answers strangers can make this node send (spec/pubsub.md "Admission"). */
  bidAnswers: BidAnswerLimiter | undefined
  #provider: Provider | undefined
  #runtime: ApplianceRuntime | undefined
  #own: ApplianceParts | undefined
  #contracts: LevelContractStore | undefined
  #unsubs: (() => void)[] = []
  #timers: NodeJS.Timeout[] = []
  #latency = new Map<string, number>()

  async start(ctx: NodeContext): Promise<void> {
    this.#ctx = ctx
    const cfg = (ctx.config.orchestration ?? {}) as OrchestrationConfig
    const parts = applianceParts(ctx.system) ?? (this.#own = await this.#ownParts(ctx))
    this.#runtime = new ApplianceRuntime({
      parts, secrets: cfg.secrets ?? {}, catalog: new Catalog(ctx.home), ...(cfg.claimFree ? { claimFree: cfg.claimFree } : {}),
      log: (level, msg, fields) => ctx.log[level](msg, fields),
    })
    await this.#runtime.refreshRuntimes()
    this.#contracts = new LevelContractStore(ctx.store as unknown as StringKv)

    this.#provider = new Provider({
      key: ctx.key,
      facts: { did: ctx.did, owner: cfg.owner ?? ctx.did, arch: archOf(), region: cfg.region ?? 'local', labels: cfg.labels ?? {} },
      capacity: this.#runtime,
      runner: this.#runtime,
      contracts: this.#contracts,
      price: pricePolicyFrom(cfg.price),
      report: (consumer: string, r: ReplicaReport) => this.#report(consumer, r),
      system: ctx.system,
      log: (msg, fields) => ctx.log.warn(msg, fields),
    })
    // Spawns the market actor (<did>/market) and takes up this node's live contracts, each in its own actor.
    await this.#provider.start()
    const store = ctx.store as unknown as StringKv
    this.#orchestrator = new Orchestrator({
      key: ctx.key,
      askMarket: (did, behavior, body, timeoutMs) => ctx.system.refFor(`${did}/${MARKET_ACTOR}`).ask(behavior, body, { timeoutMs }),
      publish: async (topic, body) => {
        await ctx.pubsub.publish(topic, body as JsonValue)
      },
      candidates: () => [...new Set(ctx.mesh.host.getConnections().map((c) => {
        try {
          return didFromPeerId(c.remotePeer)
        } catch {
          return '' // a peer whose id is not an Ed25519 key has no did:key: not a node to ask
        }
      }))].filter((d) => d.length > 0),
      latencyMs: (did) => this.#latency.get(did),
      contracts: this.#contracts,
      deployments: {
        save: (r) => store.put(`d/${r.id}`, JSON.stringify(r)),
        loadAll: async () => {
          const out: DeploymentRecord[] = []
          for await (const v of store.values({ gte: 'd/', lt: 'd0' })) if (typeof v === 'string') out.push(JSON.parse(v) as DeploymentRecord)
          return out
        },
      },
      system: ctx.system,
      log: (level, msg, fields) => ctx.log[level](msg, fields),
    }, { bidWindowMs: cfg.bidWindowMs ?? 1500, heartbeatIntervalMs: cfg.beatMs ?? 250, stopGraceMs: STOP_GRACE_MS })
    this.#orchestrator.start()
    const restored = await this.#orchestrator.restore()
    if (restored > 0) ctx.log.info('deployments restored', { count: restored })

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
        // One fence `{ slot, epoch }`, or a batch `{ fences: [...] }` (the periodic repeat).
        const b = msg.body as { slot?: string; epoch?: number; fences?: { slot: string; epoch: number }[] }
        const list = Array.isArray(b?.fences) ? b.fences.slice(0, 1000) : [b as { slot: string; epoch: number }]
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
      ctx.pubsub.subscribe(HEARTBEAT_TOPIC, (msg) => o.heartbeat(msg.from)),
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
    this.#timers.push(beat, lat, rt)
  }

  async stop(): Promise<void> {
    for (const t of this.#timers) clearInterval(t)
    for (const u of this.#unsubs) u()
    await this.#orchestrator?.stop()
    // Stops the market actor and its contract actors (an actor already gone is stopped with the system right after).
    await this.#provider?.stop()
    this.#runtime?.close()
    if (this.#own) {
      await this.#own.allocations.stop()
      this.#own.allocator.stop()
    }
  }

  status(): JsonValue {
    const list = this.#orchestrator?.list() ?? []
    const b = this.bidAnswers
    return {
      deployments: list.length, running: list.filter((d) => d.phase === 'running').length, runtimes: this.#runtime?.runtimes() ?? [],
      bidAnswers: { sent: b?.answered ?? 0, inFlight: b?.inFlight ?? 0, dropped: { ...(b?.dropped.total ?? {}) } },
      ownStalls: this.#orchestrator?.ownStalls ?? null,
    }
  }

  routes(): ApiRoute[] {
    const o = (): Orchestrator => this.#orchestrator!
    return [
      { method: 'POST', path: '/v1/deployments', handler: (req) => o().deploy(workloadFromBody(req.body)) as unknown as JsonValue },
      { method: 'GET', path: '/v1/deployments', handler: () => ({ deployments: o().list() as unknown as JsonValue }) },
      { method: 'GET', path: '/v1/deployments/:id', handler: (req) => o().status(req.params.id!) as unknown as JsonValue },
      { method: 'POST', path: '/v1/deployments/:id/stop', handler: async (req) => (await o().stopDeployment(req.params.id!)) as unknown as JsonValue },
      {
        method: 'GET',
        path: '/v1/deployments/:id/logs',
        handler: (req) => {
          const id = req.params.id!
          const replica = Number(req.query.get('replica') ?? 0)
          const follow = req.query.get('follow') === '1' || req.query.get('follow') === 'true'
          o().status(id) // 404 now rather than inside the stream
          return ndjson(followLogs(o(), id, replica, follow, req.signal))
        },
      },
      { method: 'POST', path: '/v1/bids/dry-run', handler: async (req) => (await o().dryRun(workloadFromBody(req.body))) as unknown as JsonValue },
      {
        method: 'GET',
        path: '/v1/contracts',
        handler: async () => ({ contracts: (await this.#contracts!.list()).map(contractSummary) as unknown as JsonValue }),
      },
    ]
  }

  #report(consumer: string, r: ReplicaReport): void {
    const ctx = this.#ctx
    if (!ctx) return
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

  async #ownParts(ctx: NodeContext): Promise<ApplianceParts> {
    const store = ctx.store as unknown as { sublevel(name: string, o: { valueEncoding: 'json' }): JsonStore }
    const share = parseShare((ctx.config.share as string | Record<string, unknown> | undefined) ?? DEFAULT_SHARE)
    const allocator = new Allocator({ store: store.sublevel('allocator', { valueEncoding: 'json' }), share, probePorts: true })
    await allocator.start()
    const executors: Partial<Record<ExecutorKind, Executor>> = { wasm: new WasmExecutor() }
    const docker = new DockerExecutor({ nodeId: ctx.did })
    if ((await docker.available()).ok) executors.docker = docker
    const allocations = new AllocationManager({
      system: ctx.system, executors, allocator, store: store.sublevel('allocations', { valueEncoding: 'json' }), stateRoot: join(ctx.home, 'allocations'),
    })
    await allocations.start()
    return { allocator, allocations, executors }
  }
}

/** The workload in a request: `{ workload: {...} }` (an object) or `{ workload: "yaml text" }`. */
function workloadFromBody(body: JsonValue | undefined): Workload {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || !('workload' in body)) throw new InvalidRequestError("the body must be { \"workload\": <object or YAML text> }")
  const w = body.workload
  if (typeof w === 'string') return validateWorkload(parseWorkloadText(w))
  if (typeof w === 'object' && w !== null && !Array.isArray(w) && 'resources' in w && typeof w.resources === 'object' && w.resources !== null && 'memoryBytes' in w.resources) return workloadFromWire(w)
  if (typeof w !== 'object' || w === null) throw new InvalidWorkloadError([{ path: '$', reason: 'must be an object' }])
  return validateWorkload(w)
}

async function* followLogs(o: Orchestrator, id: string, replica: number, follow: boolean, signal: AbortSignal): AsyncIterable<JsonValue> {
  let since = 0
  let node: string | null = null
  for (;;) {
    if (signal.aborted) return
    const r = await o.logs(id, { replica, since, limit: 500 }).catch((err: Error) => ({ node: null, lines: [] as LogEntry[], ended: false, error: err }))
    if (r.node !== node && r.node !== null) {
      // The replica moved (failover): read the new node's instance from its start.
      if (node !== null) yield { event: 'moved', from: node, to: r.node, at: Date.now() }
      node = r.node
      since = 0
      if (r.lines.length === 0) continue
    }
    for (const l of r.lines) {
      yield { ts: l.ts, stream: l.stream, line: l.line, node: r.node }
      since = Math.max(since, l.ts)
    }
    const view = o.status(id)
    if (!follow || (r.ended && view.phase !== 'running' && view.phase !== 'degraded' && view.phase !== 'provisioning')) return
    if (r.lines.length < 500) await new Promise((res) => setTimeout(res, 300))
  }
}

export const orchestrationService: NodeServiceFactory = () => new OrchestrationService()

/** Whether this node has an open connection to `did` (an answer to it needs no dial). */
function connectedTo(ctx: NodeContext, did: string): boolean {
  try {
    return ctx.mesh.host.getConnections(peerIdFromDid(did)).length > 0
  } catch {
    return false
  }
}

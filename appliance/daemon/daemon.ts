// The node daemon: one process per node home. Loads the node key from the keystore, opens the node's
// level store, joins the mesh, starts the actor system and the node services, and serves the local API.
// Ready when api.json is written; stops cleanly (reverse order) on SIGINT/SIGTERM or `POST /v1/node/stop`.
import { ed25519 } from '../../identity/ed25519.ts'
import { mkdirSync, chmodSync } from 'node:fs'
import { join, isAbsolute } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Level } from 'level'
import type { NodeKey } from '../../identity/keys.ts'
import type { Transport } from '../../core/transport.ts'
import { ActorSystem, capabilityChecker, signedRemote, KvRevocationStore, LevelKvStore } from '../../core/index.ts'
import { RevocationSync } from './revocations.ts'
import { WatchdogKeeper } from '../watchdog/watchdog-keeper.ts'
import { Mesh } from '../../p2p/mesh.ts'
import { LevelDatastore } from '../../p2p/level-datastore.ts'
import { errorFields } from '../../p2p/log.ts'
import { loadConfig, type NodeConfig } from './config.ts'
import { meshOptionsOf } from './mesh-options.ts'
import { createJsonLog, type JsonLog } from './log.ts'
import { ApiServer } from './api-server.ts'
import { processAlive, readApiFile, removeApiFile, writeApiFile } from './api-file.ts'
import { DaemonAlreadyRunningError, DuplicateServiceError } from './errors.ts'
import type { JsonValue, NodeContext, NodeService } from './service.ts'
import { actorRoutes, discoveryRoutes, nodeRoutes, peerRoutes, pubsubRoutes, revocationRoutes, statusRoutes } from './routes.ts'
import { nodeServices } from './services.ts'
import { observabilityConfig, type ObservabilityConfig } from '../observability/config.ts'
import { NodeMetrics } from '../observability/node-metrics.ts'
import { MetricsServer } from '../observability/metrics-server.ts'
import { countingTransport } from '../observability/counting-transport.ts'
import { NodeTracing } from '../observability/tracing.ts'
import type { ApiRoute } from './service.ts'
import { SpanKind } from '@opentelemetry/api'
import { ConsoleGate } from '../console/console-gate.ts'

export interface DaemonOptions {
  home: string
  /** The node key, already unlocked from the keystore by the caller. */
  key: NodeKey
  /** Overrides of config.json for this run (command-line flags). */
  overrides?: Partial<NodeConfig>
  /** Makes the services to run, fresh for this daemon; default: the composition in services.ts. */
  services?: () => NodeService[]
  /** Default: JSON lines to config.log (stderr), level from NOIR_LOG_LEVEL. */
  log?: JsonLog
}

export class Daemon {
  readonly home: string
  readonly key: NodeKey
  readonly did: string
  readonly config: NodeConfig
  readonly log: JsonLog
  readonly startedAt = new Date()
  mesh!: Mesh
  system!: ActorSystem
  db!: Level<string, JsonValue>
  /** Revocations this node honours: the owner's (`noir cap revoke`) and those heard on the mesh. */
  revocations!: RevocationSync
  /** The process that stops this node's contract replicas if this daemon dies (spec/appliance.md "Watchdog"). */
  watchdog: WatchdogKeeper | undefined
  /** NOIR_HOME/revocations: the revocations this node honours (`noir cap` reads it when no daemon runs). */
  #revocationStore: LevelKvStore | undefined
  apiUrl = ''
  /** Metrics, when config.json `metrics` is set (spec/observability.md). */
  readonly metrics: NodeMetrics | undefined
  /** Traces, when config.json `tracing` is set (spec/observability.md). */
  readonly tracing: NodeTracing | undefined
  readonly #observability: ObservabilityConfig
  #metricsServer: MetricsServer | undefined
  readonly #api: ApiServer
  /** The worker console's one-time codes and sessions (spec/dashboard.md). */
  readonly #console = new ConsoleGate()
  readonly #token = randomBytes(32).toString('base64url')
  readonly #services: NodeService[]
  readonly #started: NodeService[] = []
  readonly #controller = new AbortController()
  #stopping: Promise<void> | undefined
  readonly #done = Promise.withResolvers<void>()

  private constructor(opts: DaemonOptions) {
    this.home = opts.home
    this.key = opts.key
    this.did = opts.key.did
    this.config = { ...loadConfig(opts.home), ...definedOnly(opts.overrides ?? {}) }
    this.#observability = observabilityConfig({ metrics: this.config.metrics, tracing: this.config.tracing, logs: this.config.logs })
    const tracing = (this.tracing = this.#observability.tracing ? new NodeTracing(this.did, this.#observability.tracing) : undefined)
    const target = this.config.log === 'stderr' || isAbsolute(this.config.log) ? this.config.log : join(this.home, this.config.log)
    this.log = opts.log ?? createJsonLog({ target, level: process.env.NOIR_LOG_LEVEL, base: {}, retention: this.#observability.logs, ...(tracing ? { context: () => tracing.ids() } : {}) })
    const metrics = (this.metrics = this.#observability.metrics ? new NodeMetrics(this.did) : undefined)
    this.#api = new ApiServer({ token: this.#token, log: this.log.child({ svc: 'api' }), pages: this.#console, ...(metrics ? { onRequest: (m, r, s, ms) => metrics.apiRequest(m, r, s, ms) } : {}) })
    this.#services = (opts.services ?? nodeServices)()
    const names = new Set<string>()
    for (const s of this.#services) {
      if (names.has(s.name)) throw new DuplicateServiceError(`two node services are named '${s.name}'`)
      names.add(s.name)
    }
  }

  /** Starts a daemon; resolves once it is ready (api.json written). On failure everything started is stopped. */
  static async start(opts: DaemonOptions): Promise<Daemon> {
    mkdirSync(opts.home, { recursive: true, mode: 0o700 })
    const running = readApiFile(opts.home)
    if (running && running.pid !== process.pid && processAlive(running.pid)) {
      throw new DaemonAlreadyRunningError(`a daemon (pid ${running.pid}) already runs with home ${opts.home}`)
    }
    const d = new Daemon(opts)
    try {
      await d.#boot()
    } catch (err) {
      d.log.error('start failed', errorFields(err))
      await d.stop().catch(() => {})
      throw err
    }
    return d
  }

  /** Resolves when the daemon has stopped. */
  get stopped(): Promise<void> {
    return this.#done.promise
  }

  get signal(): AbortSignal {
    return this.#controller.signal
  }

  async #boot(): Promise<void> {
    const t0 = performance.now()
    const dataDir = join(this.home, 'data')
    mkdirSync(dataDir, { recursive: true, mode: 0o700 })
    chmodSync(dataDir, 0o700)
    this.db = new Level<string, JsonValue>(dataDir, { valueEncoding: 'json' })
    try {
      await this.db.open()
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause
      if (cause?.code === 'LEVEL_LOCKED') throw new DaemonAlreadyRunningError(`another process holds the node store in ${dataDir}`)
      throw err
    }

    const c = this.config
    this.watchdog = new WatchdogKeeper({ home: this.home, did: this.did, onLost: (code, signal) => this.log.warn('watchdog lost; started a new one', { code, signal }) })
    this.watchdog.start()
    // Opened before the actor system: every capability check consults it.
    this.#revocationStore = await LevelKvStore.open(join(this.home, 'revocations'))
    const revoked = await KvRevocationStore.open(this.#revocationStore)
    const roots = [...new Set([this.did, ...c.trustedRoots])]
    this.revocations = new RevocationSync({ store: revoked, key: this.key, roots: () => roots, log: this.log.child({ svc: 'revocations' }) })
    this.mesh = await Mesh.create({
      key: this.key,
      log: this.log.child({ svc: 'mesh' }),
      ...(this.tracing ? { tracer: this.tracing.messages } : {}),
      ...meshOptionsOf(c),
      // the peer store and DHT records persist in the node's level store
      datastore: new LevelDatastore(this.db.sublevel<string, Uint8Array>('libp2p', { valueEncoding: 'view' })),
    })
    await this.mesh.start()

    let transport: Transport = this.mesh.transport
    if (this.metrics) {
      const counted = countingTransport(transport)
      this.metrics.bindTransport(counted.counts)
      transport = counted.transport
    }
    this.system = new ActorSystem({
      key: this.key,
      transport,
      ...(this.metrics ? { observer: this.metrics.observer } : {}),
      ...(this.tracing ? { tracer: this.tracing.messages } : {}),
      remote: signedRemote({ signatureCheck: c.signatureCheck, sealedStreams: c.sealedStreams, sealWindowMs: c.sealWindowMs }),
      trustedRoots: c.trustedRoots,
      capabilities: capabilityChecker({ trustedRoots: roots, revocations: revoked }),
    })
    this.system.subscribe((e) => {
      if (e.type === 'peer-violation') {
        this.log.warn('peer violated the protocol: answered and disconnected', { peer: e.peerDid, envelope: e.envelopeId, behavior: e.behavior, error: e.error.name, message: e.error.message })
      } else if (e.type === 'signature-thread-lost') {
        this.log.warn('signature thread lost: seals and signature checks now run inline (slower)', { error: e.error.name, message: e.error.message })
      } else if (e.type === 'unsealed') {
        this.log.warn(e.delivered ? 'envelopes delivered without a seal to vouch for them' : 'envelopes refused: their seal never vouched for them', { peer: e.peerDid, envelopes: e.envelopes, first: e.firstEnvelopeId, reason: e.reason })
      }
    })
    await this.system.start()
    this.revocations.start(this.mesh.broadcast)
    if (this.metrics && this.#observability.metrics) {
      this.metrics.bindSystem(this.system)
      this.#metricsServer = new MetricsServer(this.metrics, this.log.child({ svc: 'metrics' }))
      this.metrics.url = await this.#metricsServer.listen(this.#observability.metrics)
      this.log.info('metrics served', { url: this.metrics.url })
    }

    for (const s of this.#services) {
      const ctx: NodeContext = {
        key: this.key,
        did: this.did,
        home: this.home,
        config: this.config,
        mesh: this.mesh,
        pubsub: this.mesh.broadcast,
        system: this.system,
        log: this.log.child({ svc: s.name }),
        store: new LevelKvStore(this.db.sublevel<string, unknown>(`svc:${s.name}`, { valueEncoding: 'json' })),
        signal: this.#controller.signal,
        metrics: this.metrics,
        tracing: this.tracing,
      }
      await s.start(ctx)
      this.#started.push(s)
    }

    const own = [
      ...statusRoutes({ did: this.did, startedAt: this.startedAt, config: this.config, mesh: this.mesh, serviceStatus: () => this.serviceStatus() }),
      ...peerRoutes(this.mesh.peers),
      ...actorRoutes(this.system),
      ...revocationRoutes(this.revocations),
      ...pubsubRoutes(this.mesh.broadcast),
      ...nodeRoutes({ stop: () => this.stop() }),
      ...this.#console.routes(),
    ]
    for (const r of own) this.#api.add(this.#traced(r))
    for (const s of this.#services) for (const r of s.routes?.() ?? []) this.#api.add(this.#traced(r))
    for (const r of discoveryRoutes(this.#api)) this.#api.add(r)
    this.apiUrl = await this.#api.listen(c.apiPort)
    // unix sockets have a ~108-byte path limit: a home too deep gets TCP only
    let socket = join(this.home, 'api.sock')
    if (Buffer.byteLength(socket) < 100) await this.#api.listenSocket(socket)
    else {
      this.log.warn('home path too long for a unix socket; the API is served on TCP only', { socket })
      socket = ''
    }

    writeApiFile(this.home, {
      url: this.apiUrl,
      socket,
      token: this.#token,
      pid: process.pid,
      did: this.did,
      peerId: this.mesh.peerId,
      multiaddrs: this.mesh.multiaddrs(),
      startedAt: this.startedAt.toISOString(),
    })
    this.log.info('ready', {
      did: this.did,
      peerId: this.mesh.peerId,
      multiaddrs: this.mesh.multiaddrs(),
      api: this.apiUrl,
      services: this.#services.map((s) => s.name),
      ed25519: ed25519.name,
      startMs: Math.round(performance.now() - t0),
    })
  }

  /** A route whose handling is a span (the root of the trace of what it starts), when tracing is on. */
  #traced(r: ApiRoute): ApiRoute {
    const tracing = this.tracing
    if (!tracing) return r
    const name = `${r.method} ${r.path}`
    return { ...r, handler: (req) => tracing.inSpan(name, { 'http.method': r.method, 'http.route': r.path }, () => r.handler(req), SpanKind.SERVER) }
  }

  /** `services.<name>` of the status document. */
  async serviceStatus(): Promise<Record<string, JsonValue>> {
    const out: Record<string, JsonValue> = {}
    for (const s of this.#started) {
      if (!s.status) continue
      try {
        out[s.name] = await s.status()
      } catch (err) {
        out[s.name] = { error: errorFields(err) as JsonValue }
      }
    }
    return out
  }

  /** Stops services (reverse order), the API, the actor system, the mesh and the store. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      this.#controller.abort()
      this.log.info('stopping', { did: this.did })
      removeApiFile(this.home)
      await this.#api.close().catch(() => {})
      await this.#metricsServer?.close()
      for (const s of [...this.#started].reverse()) {
        try {
          await s.stop()
        } catch (err) {
          this.log.error('service stop failed', { service: s.name, ...errorFields(err) })
        }
      }
      this.#started.length = 0
      if (this.system) await this.system.stop().catch((err: unknown) => this.log.error('actor system stop failed', errorFields(err)))
      if (this.mesh) await this.mesh.stop().catch((err: unknown) => this.log.error('mesh stop failed', errorFields(err)))
      if (this.db) await this.db.close().catch(() => {})
      this.revocations?.stop()
      this.watchdog?.stop()
      await this.#revocationStore?.close().catch(() => {})
      await this.tracing?.shutdown().catch((err: unknown) => this.log.warn('traces not all exported', errorFields(err)))
      this.log.info('stopped', { did: this.did })
      await this.log.close()
      this.#done.resolve()
    })()
    return this.#stopping
  }
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

// The service ingress as a node service (spec/ingress.md). Every node runs three parts of it:
// - health checks of the replicas it provides (appliance/health): readiness, events, restarts;
// - the provider's side of `/noir/ingress/1` (appliance/ingress/forwarder.ts): checked forwarding to a
//   workload's port on its own loopback;
// - the orchestrator's side (`<did>/ingress`, `/noir/ingress/backends`): the replica set of a deployment it
//   orchestrates, for a public (or owner-opened) port only.
// A node whose config.json has an `ingress` section also opens listeners (appliance/ingress/ingress-server.ts)
// that route outside connections to ready replicas over the mesh.
import { createMachine } from 'xstate'
import { defineActor, type MessageContext } from '../../core/index.ts'
import { didOf } from '../../identity/envelope.ts'
import { peerIdFromDid } from '../../identity/did-key.ts'
import type { Stream } from '@libp2p/interface'
import type { ApiRoute, JsonValue, NodeContext, NodeService } from '../daemon/service.ts'
import { jsonCopy } from '../daemon/service.ts'
import { ConfigError, InvalidRequestError } from '../daemon/errors.ts'
import type { ApplianceParts } from './appliance-parts.ts'
import { allocationIdFor } from './appliance-runtime.ts'
import type { ContractStore } from '../../actors/contracts/store.ts'
import type { Orchestrator } from '../../actors/orchestrator/orchestrator.ts'
import type { Provider } from '../../actors/provider/provider.ts'
import { HealthMonitor } from '../health/health-monitor.ts'
import { IngressForwarder } from '../ingress/forwarder.ts'
import { INGRESS_PROTOCOL } from '../ingress/protocol.ts'
import { BACKENDS_BEHAVIOR, READINESS_BEHAVIOR, INGRESS_ACTOR, TRAFFIC_BEHAVIOR, WAKE_BEHAVIOR, ExposureBook, backendsFor, exposureOf, parseBackendsRequest, parseTrafficBody, trafficFor, wakeFor, type BackendsAnswer } from '../ingress/backends.ts'
import { parseIngressConfig, parseRoute, type RouteSpec } from '../ingress/config.ts'
import { IngressServer } from '../ingress/ingress-server.ts'
import { serverCertificate, type TlsMaterial } from '../tls/certificate.ts'
import { join } from 'node:path'
import { DeploymentNotHereError, InvalidIngressRequestError, PortNotExposedError, RouteExistsError, UpstreamUnreachableError } from '../ingress/errors.ts'

/** What the ingress reads of the orchestration service (started before it). */
export interface IngressOrchestration {
  readonly contracts: ContractStore | undefined
  readonly provider: Provider | undefined
  readonly orchestrator: Orchestrator | undefined
}

export interface IngressServiceInit {
  appliance: () => ApplianceParts
  orchestration: () => IngressOrchestration
}

const BACKENDS_TIMEOUT_MS = 3000
/** How often each route's traffic is told to its orchestrator (a service's idle time is counted in whole seconds). */
const TRAFFIC_REPORT_MS = 2000

/** A replica's health as its provider tells the deployment's orchestrator (`ready: null`: unknown there). */
export interface ReplicaReadiness {
  contractId: string
  ready: boolean | null
  detail: string
  since: number | null
  restarts: number
}
const DIAL_TIMEOUT_MS = 5000

export class IngressService implements NodeService {
  readonly name = 'ingress'
  readonly #init: IngressServiceInit
  #ctx: NodeContext | undefined
  #health: HealthMonitor | undefined
  #forwarder: IngressForwarder | undefined
  #book: ExposureBook | undefined
  #server: IngressServer | undefined
  #trafficTimer: NodeJS.Timeout | undefined
  /** What was last told per route (a route whose traffic did not change is not told again, except while open). */
  readonly #told = new Map<string, string>()

  constructor(init: IngressServiceInit) {
    this.#init = init
  }

  /** The open ingress (after start), if config.json opens one. */
  get server(): IngressServer | undefined {
    return this.#server
  }

  async start(ctx: NodeContext): Promise<void> {
    this.#ctx = ctx
    const cfg = parseIngressConfig(ctx.config.ingress) // a bad section stops the start here, with a ConfigError
    const parts = this.#init.appliance()
    const orch = this.#init.orchestration()
    const contracts = orch.contracts
    this.#health = new HealthMonitor({
      allocations: parts.allocations,
      executors: parts.executors,
      workloadOf: async (id) => (await contracts?.get(id, 'provider'))?.workload,
      log: ctx.log,
    })
    this.#health.start()
    const health = this.#health
    this.#forwarder = new IngressForwarder({
      contract: async (id) => contracts?.get(id, 'provider'),
      orchestratorOf: (consumer, deploymentId) => orch.provider?.orchestratorOf(consumer, deploymentId) ?? Promise.resolve(consumer),
      hostPort: (contractId, port) => hostPortOf(parts, contractId, port),
      readiness: (contractId) => health.readiness(contractId),
      log: ctx.log,
    })
    const forwarder = this.#forwarder
    await ctx.mesh.host.handle(INGRESS_PROTOCOL, (stream, connection) => forwarder.handle(stream, connection), { runOnLimitedConnection: true, maxInboundStreams: 1024, maxOutboundStreams: 1024 })

    const book = (this.#book = new ExposureBook(ctx.store))
    await book.load()
    ctx.system.spawn(defineActor(createMachine({ id: 'ingress' })).with({
      name: 'ingress',
      behaviors: {
        [BACKENDS_BEHAVIOR]: {
          public: true, // anyone may ask; only a public (or owner-opened) port is answered
          reply: (_s: unknown, body: unknown) => backendsFor(this.#orchestrator(), book, ctx.key, parseBackendsRequest(body)),
        },
        [WAKE_BEHAVIOR]: {
          public: true, // anyone who could send the service traffic may wake it (a public or opened port only)
          deferred: true,
          event: (body: unknown, msg: MessageContext<{ deploymentId: string; phase: string }>) => {
            try {
              msg.respond(wakeFor(this.#orchestrator(), book, parseBackendsRequest(body), didOf(msg.from)))
            } catch (err) {
              msg.fail(err as Error)
            }
            return { type: 'wake-asked' }
          },
        },
        [TRAFFIC_BEHAVIOR]: {
          public: true, // counted only for a public or opened port: what anyone could make by sending traffic
          deferred: true,
          event: (body: unknown, msg: MessageContext<{ ok: true }>) => {
            try {
              msg.respond(trafficFor(this.#orchestrator(), book, parseTrafficBody(body), didOf(msg.from)))
            } catch (err) {
              msg.fail(err as Error)
            }
            return { type: 'traffic-reported' }
          },
        },
        [READINESS_BEHAVIOR]: {
          public: true, // anyone may ask; only the orchestrator of a contract learns its replica's health
          deferred: true,
          event: (body: unknown, msg: MessageContext<ReplicaReadiness[]>) => {
            this.#readinessFor(body, didOf(msg.from)).then((r) => msg.respond(r), (err: Error) => msg.fail(err))
            return { type: 'readiness-asked' }
          },
        },
      },
    }), { name: INGRESS_ACTOR })

    if (cfg) {
      let tls: TlsMaterial | undefined
      if (cfg.tls) {
        // a self-signed certificate is made once and kept in NOIR_HOME/ingress (tls.crt, tls.key 0600)
        tls = await serverCertificate({
          dir: join(ctx.home, 'ingress'), hosts: [cfg.domain, `*.${cfg.domain}`, cfg.listen.host], fileOptions: "'ingress.tls.cert' and 'ingress.tls.key'",
          ...('cert' in cfg.tls ? { certFile: cfg.tls.cert, keyFile: cfg.tls.key } : {}),
        }).catch((err: Error) => {
          throw new ConfigError(`config.json: 'ingress.tls': the certificate cannot be loaded: ${err.message}`)
        })
      }
      this.#server = new IngressServer(cfg, {
        backends: (route) => this.#backends(route),
        openStream: (node) => this.#openStream(node),
        wake: (route) => this.#ask(route, WAKE_BEHAVIOR, { deploymentId: route.deploymentId, port: route.port }).then(() => undefined),
        log: ctx.log,
      }, tls)
      for await (const [, r] of ctx.store.scope<RouteSpec>('routes/').entries()) if (!this.#server.route(r.name)) this.#server.addRoute(r)
      await this.#server.start()
      // each route's traffic, told to its orchestrator: the idle clock of scale to zero (spec/ingress.md)
      this.#trafficTimer = setInterval(() => void this.#reportTraffic(), TRAFFIC_REPORT_MS)
      this.#trafficTimer.unref()
      ctx.log.info('ingress open', { listen: this.#server.address, domain: cfg.domain, routes: this.#server.routes().length, ...(tls ? { tls: tls.fingerprint } : {}) })
    }
  }

  async stop(): Promise<void> {
    const ctx = this.#ctx
    if (this.#trafficTimer) clearInterval(this.#trafficTimer)
    await this.#server?.stop()
    this.#health?.stop()
    if (ctx) {
      await ctx.mesh.host.unhandle(INGRESS_PROTOCOL).catch(() => undefined)
      if (ctx.system.running) await ctx.system.stopActor(INGRESS_ACTOR).catch(() => undefined)
    }
  }

  /**
   * The health of replicas this node provides, for the orchestrator of their contracts (their consumer, or the
   * standby that took the deployment over): a contract of anyone else is answered as unknown, like one that
   * does not exist.
   */
  async #readinessFor(body: unknown, asker: string): Promise<ReplicaReadiness[]> {
    const ids = (body as { contractIds?: unknown } | null)?.contractIds
    if (!Array.isArray(ids) || ids.length > 64 || !ids.every((x) => typeof x === 'string' && x.length <= 160)) {
      throw new InvalidIngressRequestError('the body must be { contractIds: [string] } (at most 64)')
    }
    const orch = this.#init.orchestration()
    const out: ReplicaReadiness[] = []
    for (const contractId of ids as string[]) {
      const stored = await orch.contracts?.get(contractId, 'provider')
      const terms = stored?.contract.terms
      const allowed = terms !== undefined && (terms.consumer === asker || (await orch.provider?.orchestratorOf(terms.consumer, terms.deploymentId).catch(() => terms.consumer)) === asker)
      const h = allowed ? this.#health?.list().find((r) => r.contractId === contractId) : undefined
      out.push(h ? { contractId, ready: h.ready, detail: h.detail, since: h.since, restarts: h.restarts } : { contractId, ready: null, detail: 'unknown here', since: null, restarts: 0 })
    }
    return out
  }

  /** Each running replica of a deployment this node orchestrates, with its health as its provider reports it. */
  async #replicaHealth(deploymentId: string): Promise<(ReplicaReadiness & { index: number; node: string })[]> {
    const ctx = this.#ctx!
    const o = this.#init.orchestration().orchestrator
    if (!o?.workloadOf(deploymentId)) return []
    const running = o.status(deploymentId).replicas.filter((r) => r.state === 'running' && r.node !== null && r.contractId !== null)
    const byNode = new Map<string, string[]>()
    for (const r of running) byNode.set(r.node!, [...(byNode.get(r.node!) ?? []), r.contractId!])
    const answers = new Map<string, ReplicaReadiness>()
    await Promise.all([...byNode].map(async ([node, contractIds]) => {
      const got = node === ctx.did
        ? await this.#readinessFor({ contractIds }, ctx.did)
        : await ctx.system.refFor(`${node}/${INGRESS_ACTOR}`).ask<ReplicaReadiness[]>(READINESS_BEHAVIOR, { contractIds }, { timeoutMs: BACKENDS_TIMEOUT_MS })
          .catch((err: Error) => contractIds.map((contractId) => ({ contractId, ready: null, detail: `not answered: ${err.name}`, since: null, restarts: 0 })))
      for (const a of got) answers.set(a.contractId, a)
    }))
    return running.map((r) => ({ index: r.index, node: r.node!, ...(answers.get(r.contractId!) ?? { contractId: r.contractId!, ready: null, detail: 'not answered', since: null, restarts: 0 }) }))
  }

  /** Asks the route's orchestrators in order (this node when it names none) on its ingress actor; the first answer. */
  async #ask<T>(route: RouteSpec, behavior: string, body: Record<string, unknown>): Promise<T> {
    const ctx = this.#ctx!
    const asked = route.orchestrators.length > 0 ? route.orchestrators : [ctx.did]
    let last: Error | undefined
    for (const did of asked) {
      try {
        return await ctx.system.refFor(`${did}/${INGRESS_ACTOR}`).ask<T>(behavior, body, { timeoutMs: BACKENDS_TIMEOUT_MS })
      } catch (err) {
        last = err as Error
      }
    }
    throw last ?? new UpstreamUnreachableError(`the orchestrators of '${route.name}'`, 'none answered')
  }

  /** Tells each route's orchestrator its traffic here (routes with open connections every time, others when it changed). */
  async #reportTraffic(): Promise<void> {
    const server = this.#server
    if (!server) return
    const clocks = new Map(server.traffic.snapshot().map((r) => [r.route, r]))
    for (const { route } of server.routes()) {
      const t = clocks.get(route.name)
      if (!t) continue
      const key = `${t.active}:${t.lastTrafficAt}`
      if (t.active === 0 && this.#told.get(route.name) === key) continue
      try {
        await this.#ask(route, TRAFFIC_BEHAVIOR, { deploymentId: route.deploymentId, port: route.port, active: t.active, lastTrafficAt: t.lastTrafficAt })
        this.#told.set(route.name, key)
      } catch {
        // the orchestrator does not answer now: told again at the next report
      }
    }
  }

  /** The replica set of a route, from its orchestrators in order (this node when it names none). */
  async #backends(route: RouteSpec): Promise<BackendsAnswer> {
    const ctx = this.#ctx!
    const req = { deploymentId: route.deploymentId, port: route.port }
    const asked = route.orchestrators.length > 0 ? route.orchestrators : [ctx.did]
    let last: Error | undefined
    for (const did of asked) {
      try {
        if (did === ctx.did) return backendsFor(this.#orchestrator(), this.#book!, ctx.key, req)
        return await ctx.system.refFor(`${did}/${INGRESS_ACTOR}`).ask<BackendsAnswer>(BACKENDS_BEHAVIOR, req, { timeoutMs: BACKENDS_TIMEOUT_MS })
      } catch (err) {
        if (err instanceof PortNotExposedError) throw err // the owner's answer: not to be asked around
        last = err as Error
      }
    }
    throw last instanceof DeploymentNotHereError ? last : new UpstreamUnreachableError(`the orchestrators of '${route.name}'`, last?.message ?? 'none answered')
  }

  #orchestrator(): Orchestrator {
    const o = this.#init.orchestration().orchestrator
    if (!o) throw new DeploymentNotHereError('(no orchestrator on this node)')
    return o
  }

  async #openStream(node: string): Promise<Stream> {
    const ctx = this.#ctx!
    const opts = { signal: AbortSignal.timeout(DIAL_TIMEOUT_MS), runOnLimitedConnection: true }
    try {
      const peer = peerIdFromDid(node)
      // an open connection (a direct one first) takes a new stream at once; otherwise libp2p dials
      const conns = ctx.mesh.host.getConnections(peer).filter((c) => c.status === 'open')
      const conn = conns.find((c) => c.limits == null) ?? conns[0]
      if (conn) return await conn.newStream(INGRESS_PROTOCOL, opts)
      return await ctx.mesh.host.dialProtocol(peer, INGRESS_PROTOCOL, opts)
    } catch (err) {
      throw new UpstreamUnreachableError(`node ${node}`, (err as Error).message)
    }
  }

  /** `noir expose`: opens (or closes) a port of a deployment this node orchestrates, and serves it on this node's ingress. */
  async #expose(body: JsonValue | undefined): Promise<JsonValue> {
    const ctx = this.#ctx!
    const b = (body ?? {}) as { deploymentId?: unknown; port?: unknown; public?: unknown; name?: unknown }
    if (typeof b.deploymentId !== 'string' || !Number.isInteger(b.port)) throw new InvalidRequestError('the body must be { deploymentId, port, public?, name? }')
    if (b.public !== undefined && typeof b.public !== 'boolean') throw new InvalidRequestError("'public' must be true or false")
    const deploymentId = b.deploymentId
    const port = b.port as number
    const w = this.#orchestrator().workloadOf(deploymentId)
    if (!w) throw new DeploymentNotHereError(deploymentId)
    if (exposureOf(w, deploymentId, port, this.#book!) === 'undeclared') throw new PortNotExposedError(deploymentId, port, 'the workload declares no such tcp port')
    if (b.public !== undefined) await this.#book!.set(deploymentId, port, b.public)
    const exposure = exposureOf(w, deploymentId, port, this.#book!)
    let endpoint: JsonValue = null
    const server = this.#server
    if (server) {
      const name = b.name === undefined ? `${w.name}-${port}` : b.name
      let route: RouteSpec
      try {
        route = parseRoute({ name, deployment: deploymentId, port }, 'route')
      } catch {
        throw new InvalidRequestError(`'name' must be a DNS label (a-z, 0-9, -; at most 63), got ${JSON.stringify(name)}`)
      }
      const existing = server.route(route.name)
      if (existing && (existing.deploymentId !== deploymentId || existing.port !== port)) throw new RouteExistsError(route.name)
      if (!existing) {
        server.addRoute(route)
        await ctx.store.scope<RouteSpec>('routes/').put(route.name, route)
      }
      endpoint = this.#endpointOf(route)
    }
    return { deploymentId, port, exposure, endpoint }
  }

  #endpointOf(r: RouteSpec): JsonValue {
    const s = this.#server!
    const a = s.address!
    const host = `${r.name}.${s.domain}`
    const replicas = s.routes().find((x) => x.route.name === r.name)?.balancer.replicas() ?? []
    const t = s.traffic.snapshot().find((x) => x.route === r.name)
    const traffic = { active: t?.active ?? 0, lastTrafficAt: t ? new Date(t.lastTrafficAt).toISOString() : null, idleMs: s.traffic.idleMs(r.name) ?? null }
    return jsonCopy({ name: r.name, deploymentId: r.deploymentId, port: r.port, host, url: `${s.tlsFingerprint ? 'https' : 'http'}://${host}:${a.port}/`, listen: `${a.host}:${a.port}`, replicas, traffic })
  }

  routes(): ApiRoute[] {
    return [
      {
        method: 'GET', path: '/v1/endpoints',
        handler: () => {
          const s = this.#server
          return { open: s !== undefined, listen: s?.address ? `${s.address.host}:${s.address.port}` : null, tlsFingerprint: s?.tlsFingerprint ?? null, protocols: s?.protocols ?? [], endpoints: s ? s.routes().map((r) => this.#endpointOf(r.route)) : [] }
        },
      },
      { method: 'POST', path: '/v1/ingress/expose', handler: (req) => this.#expose(req.body) },
      {
        method: 'GET', path: '/v1/ingress/deployments/:id',
        handler: async (req) => {
          const id = req.params.id!
          const w = this.#init.orchestration().orchestrator?.workloadOf(id)
          const ports = (w?.ports ?? []).filter((p) => p.protocol === 'tcp').map((p) => ({ port: p.port, exposure: exposureOf(w!, id, p.port, this.#book!) }))
          const s = this.#server
          const endpoints = s ? s.routes().filter((r) => r.route.deploymentId === id).map((r) => this.#endpointOf(r.route)) : []
          return jsonCopy({ deploymentId: id, ports, endpoints, replicas: await this.#replicaHealth(id) })
        },
      },
      { method: 'GET', path: '/v1/health', handler: () => jsonCopy({ replicas: this.#health?.list() ?? [], events: this.#health?.events() ?? [] }) },
    ]
  }

  status(): JsonValue {
    const h = this.#health?.list() ?? []
    return jsonCopy({
      open: this.#server !== undefined,
      listen: this.#server?.address ?? null,
      tlsFingerprint: this.#server?.tlsFingerprint ?? null,
      routes: this.#server?.routes().length ?? 0,
      connections: this.#server?.stats ?? null,
      forwarded: this.#forwarder?.stats ?? null,
      replicas: { ready: h.filter((r) => r.ready).length, notReady: h.filter((r) => !r.ready).length },
    })
  }
}

/** The loopback host port a contract's running instance publishes `port` on. */
function hostPortOf(parts: ApplianceParts, contractId: string, port: number): number | undefined {
  try {
    const a = parts.allocations.get(allocationIdFor(contractId))
    if (a.state !== 'running' || a.spec.network === 'none') return undefined
    return a.spec.network.ports.find((p) => p.containerPort === port && p.protocol === 'tcp')?.hostPort
  } catch {
    return undefined
  }
}

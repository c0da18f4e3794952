// The appliance as a node service (plugged into the daemon through appliance/daemon/services.ts): hardware
// discovery and the enrollment benchmark, the owner's share, the allocator, the executors (wasm always,
// docker when dockerd answers), the allocation actors with re-attach, signed heartbeats, and the local API
// routes the owner CLI uses (spec/appliance.md lists them).
//
// config.json fields it reads (all optional): `share` ("cpu=2,memory=4GiB,disk=20GiB,gpu=0" or an object),
// `ports` ("20000-20999" or [20000, 20999]), `heartbeatMs` (default 5000), `reservationTtlMs` (default 30000).
import { join } from 'node:path'
import type { ApiRoute, JsonValue, NodeContext, NodeService } from '../daemon/service.ts'
import { jsonCopy } from '../daemon/service.ts'
import { discoverHardware, hostFree, type HardwareInfo } from '../hardware/hardware.ts'
import { runEnrollmentBenchmark, type BenchmarkResult } from '../hardware/benchmark.ts'
import { checkShareFits, defaultShare, formatShare, parseShare, type Share } from '../share/share.ts'
import { Allocator } from '../allocator/allocator.ts'
import { AllocationManager } from '../allocation/allocation-manager.ts'
import { HeartbeatPublisher, HEARTBEAT_TOPIC } from '../heartbeat/heartbeat.ts'
import { WasmExecutor } from '../executor/wasm/wasm-executor.ts'
import { DockerExecutor } from '../executor/docker/docker-executor.ts'
import { RunscRunner } from '../executor/docker/runsc.ts'
import Docker from 'dockerode'
import { ActorExecutor } from '../executor/actor/index.ts'
import { MicrovmExecutor } from '../executor/microvm/index.ts'
import type { Availability, Executor, ExecutorKind } from '../executor/executor.ts'
import { InvalidResourceRequestError, InvalidShareError } from '../errors.ts'
import { placementFacts, runtimesOf } from './placement-facts.ts'
import type { ApplianceParts } from './appliance-parts.ts'
import { allocationRoutes, reservationRoutes } from './appliance-routes.ts'
import { ConfigError, ServiceNotStartedError } from '../daemon/errors.ts'
import { saveConfig, type NodeConfig } from '../daemon/config.ts'
import { existsSync, readFileSync } from 'node:fs'

const ENROLLMENT_KEY = 'enrollment'

export function parsePortRange(v: unknown): [number, number] {
  let lo: number
  let hi: number
  if (typeof v === 'string' && /^\d+-\d+$/.test(v)) [lo, hi] = v.split('-').map(Number) as [number, number]
  else if (Array.isArray(v) && v.length === 2) [lo, hi] = v as [number, number]
  else throw new InvalidResourceRequestError(`config.json 'ports' must be "LO-HI" or [LO, HI] (got ${JSON.stringify(v)})`)
  if (!Number.isInteger(lo) || !Number.isInteger(hi) || lo < 1 || hi > 65535 || lo > hi) throw new InvalidResourceRequestError(`bad port range ${lo}-${hi}`)
  return [lo, hi]
}

export class ApplianceService implements NodeService {
  readonly name = 'appliance'
  #ctx!: NodeContext
  hardware!: HardwareInfo
  share!: Share
  enrollment!: BenchmarkResult
  allocator!: Allocator
  manager!: AllocationManager
  heartbeat!: HeartbeatPublisher
  readonly #executors: Partial<Record<ExecutorKind, Executor>> = {}
  readonly #availability: Partial<Record<ExecutorKind, Availability>> = {}
  #availabilityAt = 0

  async start(ctx: NodeContext): Promise<void> {
    this.#ctx = ctx
    const cfg = ctx.config
    this.hardware = await discoverHardware({ diskPath: ctx.home })
    const hw = { cpuCores: this.hardware.cpu.cores, memoryBytes: this.hardware.memory.totalBytes, diskBytes: this.hardware.disk.totalBytes, gpus: this.hardware.gpus.length }
    if (cfg.share !== undefined && typeof cfg.share !== 'string' && (typeof cfg.share !== 'object' || cfg.share === null)) {
      throw new InvalidShareError(String(cfg.share), "config.json 'share' must be a string or an object")
    }
    this.share = cfg.share === undefined ? defaultShare(hw) : parseShare(cfg.share as string | Record<string, unknown>)
    checkShareFits(this.share, hw)

    const store = ctx.store
    const enrollment = store.scope<BenchmarkResult>('')
    const saved = await enrollment.get(ENROLLMENT_KEY)
    if (saved) this.enrollment = saved
    else {
      this.enrollment = runEnrollmentBenchmark({ cpuMs: 150, memoryMs: 150 }) // ~0.3 s, once per node
      await enrollment.put(ENROLLMENT_KEY, this.enrollment)
      ctx.log.info('enrollment benchmark', { ...this.enrollment })
    }

    this.allocator = new Allocator({
      store,
      share: this.share,
      hostFree: () => hostFree(ctx.home, this.hardware.gpus.length),
      portRange: cfg.ports === undefined ? [20000, 20999] : parsePortRange(cfg.ports),
      reservationTtlMs: typeof cfg.reservationTtlMs === 'number' ? cfg.reservationTtlMs : 30_000,
      onReclaim: (rs) => ctx.log.info('reservations expired', { ids: rs.map((r) => r.id) }),
    })
    await this.allocator.start()

    // the runtimes are probed at once (each probe runs a command: qemu, node --permission)
    const wasm = new WasmExecutor({ warm: true })
    // containers with `runtime.checkpoint: process` run under gVisor's runsc directly where it is installed
    // (config `executors.container.runsc`: absent or true = where installed, false = never; spec/executor.md)
    const runsc = !runscEnabled(cfg.executors) ? undefined : new RunscRunner({ nodeId: ctx.did, dir: join(ctx.home, 'runsc'), docker: new Docker() })
    const docker = new DockerExecutor({ nodeId: ctx.did, ...(runsc ? { runsc } : {}) })
    // SDK actors join this node's ActorSystem (at alloc/<id>/workload); microVMs need qemu-system-x86_64.
    const actor = new ActorExecutor({ system: ctx.system })
    const microvm = new MicrovmExecutor({ nodeDid: ctx.did, workDir: join(ctx.home, 'microvm') })
    const [wasmOk, dockerOk, actorOk, microvmOk] = await Promise.all([wasm.available(), docker.available(), actor.available(), microvm.available()])
    this.#executors.wasm = wasm
    this.#availability.wasm = wasmOk
    this.#availability.docker = dockerOk
    if (dockerOk.ok) this.#executors.docker = docker
    this.#availability.actor = actorOk
    if (actorOk.ok) this.#executors.actor = actor
    this.#availability.microvm = microvmOk
    if (microvmOk.ok) this.#executors.microvm = microvm

    this.manager = new AllocationManager({
      system: ctx.system,
      executors: this.#executors,
      allocator: this.allocator,
      store,
      stateRoot: join(ctx.home, 'allocations'),
      onChange: (r) => ctx.log.info('allocation', { id: r.id, state: r.state, ...(r.reason ? { reason: r.reason } : {}), ...(r.lastExit ? { exit: r.lastExit.code, exitReason: r.lastExit.reason } : {}) }),
    })
    await this.manager.start()

    this.#availabilityAt = Date.now()
    this.heartbeat = new HeartbeatPublisher({
      node: ctx.did,
      intervalMs: typeof cfg.heartbeatMs === 'number' ? cfg.heartbeatMs : 5000,
      publish: (topic, body) => ctx.pubsub.publish(topic, jsonCopy(body), { ttlMs: 60_000 }),
      source: async () => {
        const s = this.manager.summary()
        this.#refreshAvailability()
        return {
          capacity: claimed(await this.allocator.capacity(), cfg.orchestration),
          allocations: { total: s.total, byState: s.byState, running: this.manager.list().filter((a) => a.state === 'running').map((a) => ({ id: a.id, kind: a.kind })) },
          load: { cpuNanos: s.cpuNanos, memoryBytes: s.memoryBytes },
          facts: placementFacts(cfg, ctx.did, runtimesOf(this.#availability)),
        }
      },
      onError: (err) => ctx.log.debug('heartbeat not published', { error: (err as Error).message }),
    })
    this.heartbeat.start()
  }

  /** The heartbeat's runtimes follow executors that stop (or start) answering: re-asked every 10 s, in the background. */
  #refreshAvailability(): void {
    if (Date.now() - this.#availabilityAt < 10_000) return
    this.#availabilityAt = Date.now()
    for (const [kind, ex] of Object.entries(this.#executors) as [ExecutorKind, Executor][]) {
      ex.available().then((a) => void (this.#availability[kind] = a), (err: Error) => void (this.#availability[kind] = { ok: false, reason: err.message }))
    }
  }

  /** This node's allocator, allocations and executors, for the services composed after this one (once started). */
  get parts(): ApplianceParts {
    if (!this.manager) throw new ServiceNotStartedError("the appliance's parts are read before the appliance service started")
    return { allocator: this.allocator, allocations: this.manager, executors: this.#executors }
  }

  async stop(): Promise<void> {
    await this.heartbeat?.stop()
    await this.manager?.stop()
    this.allocator?.stop()
    await (this.#executors.wasm as WasmExecutor | undefined)?.close()
  }

  async info(): Promise<JsonValue> {
    return jsonCopy({
      did: this.#ctx.did,
      hardware: this.hardware,
      share: { ...this.share, text: formatShare(this.share) },
      capacity: await this.allocator.capacity(),
      enrollment: this.enrollment,
      executors: this.#availability,
      heartbeat: { topic: HEARTBEAT_TOPIC, intervalMs: typeof this.#ctx.config.heartbeatMs === 'number' ? this.#ctx.config.heartbeatMs : 5000 },
      allocations: this.manager.summary(),
    })
  }

  /**
   * The owner changes the share (`{ share: "cpu=2,memory=4GiB,disk=20GiB,gpu=0" }` or the object form): checked
   * against the machine, kept in config.json for the next start, applied to reservations from now on.
   */
  async changeShare(body: JsonValue | undefined): Promise<JsonValue> {
    const given = (body as { share?: unknown } | null | undefined)?.share
    if (typeof given !== 'string' && (typeof given !== 'object' || given === null || Array.isArray(given))) throw new InvalidShareError(String(given), 'the body is { share: "cpu=N,memory=SIZE,disk=SIZE,gpu=N" }')
    const share = parseShare(given as string | Record<string, unknown>)
    checkShareFits(share, { cpuCores: this.hardware.cpu.cores, memoryBytes: this.hardware.memory.totalBytes, diskBytes: this.hardware.disk.totalBytes, gpus: this.hardware.gpus.length })
    // config.json as the owner wrote it (not with the defaults filled in), with the new share
    const file = join(this.#ctx.home, 'config.json')
    const raw = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> : {}
    saveConfig(this.#ctx.home, { ...raw, share: formatShare(share) } as unknown as NodeConfig)
    this.share = share
    this.allocator.setShare(share)
    this.#ctx.log.info('share changed', { share: formatShare(share) })
    void this.heartbeat.beat()
    return jsonCopy({ share: { ...share, text: formatShare(share) }, capacity: await this.allocator.capacity() })
  }

  status(): JsonValue {
    const s = this.manager.summary()
    return jsonCopy({ share: formatShare(this.share), allocations: s.total, byState: s.byState })
  }

  routes(): ApiRoute[] {
    return [
      { method: 'GET', path: '/v1/node/info', handler: () => this.info() },
      { method: 'PUT', path: '/v1/node/share', handler: (req) => this.changeShare(req.body) },
      { method: 'GET', path: '/v1/node/heartbeats', handler: () => jsonCopy({ topic: HEARTBEAT_TOPIC, intervalMs: typeof this.#ctx.config.heartbeatMs === 'number' ? this.#ctx.config.heartbeatMs : 5000, recent: this.heartbeat.recent() }) },
      ...allocationRoutes(this.manager),
      ...reservationRoutes(this.allocator),
    ]
  }
}

/**
 * Testing only (config `orchestration.claimFree`): a node that claims capacity it does not have claims it in
 * its heartbeats as in its bids, so placement samples it and its reservation fails (a consistent liar).
 */
function claimed<C extends { free: { cpu: number; memoryBytes: number } }>(c: C, orchestration: unknown): C {
  const claim = (orchestration as { claimFree?: { cpu?: number; memoryBytes?: number } } | undefined)?.claimFree
  return claim ? { ...c, free: { ...c.free, ...claim } } : c
}

/**
 * config.json `executors.container.runsc`: absent or `true` = run `checkpoint: process` containers under runsc
 * where it is installed, `false` = never; anything else is a ConfigError naming the field.
 */
export function runscEnabled(executors: unknown): boolean {
  if (executors === undefined) return true
  if (typeof executors !== 'object' || executors === null || Array.isArray(executors)) throw new ConfigError(`config.json 'executors' must be an object (got ${JSON.stringify(executors)})`)
  const container = (executors as { container?: unknown }).container
  if (container === undefined) return true
  if (typeof container !== 'object' || container === null || Array.isArray(container)) throw new ConfigError(`config.json 'executors.container' must be an object (got ${JSON.stringify(container)})`)
  const v = (container as { runsc?: unknown }).runsc
  if (v !== undefined && typeof v !== 'boolean') throw new ConfigError(`config.json 'executors.container.runsc' must be true or false (got ${JSON.stringify(v)})`)
  return v !== false
}

// The appliance behind the orchestration's provider ports (actors/provider/ports.ts): the allocator as the
// CapacityPort (two-phase reservations) and the allocation manager as the WorkloadRunner (a workload replica
// becomes one allocation). actors/ never imports appliance/: the orchestration service passes this in.
//
// Retries: a job runs once here (restart policy `never`); a failed run is placed again by the orchestrator,
// on another node. A service restarts in place a few times, then the orchestrator places it elsewhere.
import { existsSync, mkdtempSync, renameSync, rmSync } from 'node:fs'
import { cp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { PROCESS_IMAGE_DIR, RESTORE_IMAGE_DIR } from '../executor/docker/runsc.ts'
import { catalogNeeds, type Catalog } from '../catalog/catalog.ts'
import { GRACE_MS, LABEL_GRACE } from '../watchdog/lease.ts'
import type { CapacityPort, InstanceStatus, LogEntry, WorkloadRunner } from '../../actors/provider/ports.ts'
import type { Capacity } from '../../actors/placement/offer.ts'
import { ARTIFACT_DIGEST, workloadArtifacts, type RuntimeType, type Workload } from '../../actors/workload/workload.ts'
import type { AllocationRecord, SecretDelivery } from '../allocation/allocation-manager.ts'
import { finalStates } from '../allocation/allocation-machine.ts'
import type { Availability, ExecutorKind, RuntimeSpec } from '../executor/executor.ts'
import { AllocationNotFoundError, InvalidAllocationError } from '../errors.ts'
import type { ApplianceParts } from './appliance-parts.ts'
import type { ProviderSecrets } from '../secrets/protocol.ts'
import { silentLog, type Log } from '../../p2p/log.ts'

/** How long a stopped instance gets between SIGTERM (or the wasm stop request) and the kill. */
export const STOP_GRACE_MS = 2000
/** An ended instance's logs stay readable this long, then its container and state are removed. */
const ENDED_RETENTION_MS = 60_000

/** Allocation ids are `c-<contract id>`. */
const CONTRACT_ALLOCATION_PREFIX = 'c-'
export const allocationIdFor = (contractId: string): string => `${CONTRACT_ALLOCATION_PREFIX}${contractId}`

/** What the runtime needs of the artifacts service (appliance/node-services/artifact-service.ts). */
export interface WorkloadArtifacts {
  /** A verified local path of the artifact, fetched (from `from`, then the DHT) when this node lacks it. */
  file(digest: string, o: { from: string[] }): Promise<string>
  /** The entry file of an actor bundle artifact, unpacked. */
  bundle(digest: string, o: { from: string[] }): Promise<string>
  /** Loads an image archive artifact into Docker (checking it holds `imageId`); returns the id to run. */
  image(digest: string, imageId: string, o: { from: string[] }): Promise<string>
  /** A run ended: sign its provenance (and keep a job's output folder as an artifact). */
  runEnded?(r: RunEnded): Promise<void>
  /** Archives a state directory as an artifact (pinned, announced): a migration's checkpoint. */
  packState?(dir: string, o?: { pin?: boolean }): Promise<{ digest: string; bytes: number }>
  /** Fetches a state archive (from `from`, then the DHT), checks its digest and unpacks it into `dir`. */
  unpackState?(digest: string, dir: string, o: { from: string[] }): Promise<void>
}

export interface RunEnded {
  contractId: string
  consumer: string
  workload: Workload
  artifacts: string[]
  startedAt: number
  endedAt: number
  state: 'exited' | 'failed' | 'stopped'
  code: number | null
  reason?: string
  /** A job's state folder, kept as its output. */
  outputDir?: string
}

const isDigest = (v: string | undefined): v is string => v !== undefined && ARTIFACT_DIGEST.test(v)

function needArtifacts(a: WorkloadArtifacts | undefined): WorkloadArtifacts {
  if (!a) throw new InvalidAllocationError('this workload names artifacts by digest, and this node runs no artifacts service')
  return a
}

/**
 * The executor runtime of a workload (`container` runs on docker). Modules, bundles, kernels and root
 * filesystems are names in this node's catalog, resolved (and digest-checked) there and nowhere else, or
 * artifact digests, fetched over the mesh (from the consumer first) and checked before use.
 */
export async function runtimeSpec(w: Workload, catalog: Catalog, artifacts?: WorkloadArtifacts, from: string[] = []): Promise<RuntimeSpec> {
  const r = w.runtime
  switch (r.type) {
    case 'container':
      if (!r.image) throw new InvalidAllocationError('a container workload needs runtime.image')
      if (r.imageArchive) {
        if (!isDigest(r.image)) throw new InvalidAllocationError('with imageArchive, runtime.image must be the image id')
        const id = await needArtifacts(artifacts).image(r.imageArchive, r.image, { from })
        return { kind: 'docker', image: id, ...(r.command ? { command: r.command } : {}), ...(r.checkpoint === 'process' ? { runtime: 'runsc' as const } : {}) }
      }
      return { kind: 'docker', image: r.image, ...(r.command ? { command: r.command } : {}), ...(r.checkpoint === 'process' ? { runtime: 'runsc' as const } : {}) }
    case 'wasm':
      if (!r.module) throw new InvalidAllocationError('a wasm workload needs runtime.module')
      if (isDigest(r.module)) return { kind: 'wasm', module: await needArtifacts(artifacts).file(r.module, { from }), ...(r.args ? { args: r.args } : {}) }
      return { kind: 'wasm', module: await catalog.resolve('wasm', r.module), ...(r.args ? { args: r.args } : {}) }
    case 'microvm': {
      if (!r.kernel) throw new InvalidAllocationError('a microvm workload needs runtime.kernel')
      // each file a catalog name of this node's owner, or an artifact fetched over the mesh and checked
      const file = (kind: 'kernel' | 'initrd' | 'rootfs', v: string): Promise<string> => (isDigest(v) ? needArtifacts(artifacts).file(v, { from }) : catalog.resolve(kind, v))
      const [kernel, initrd, rootfs] = await Promise.all([file('kernel', r.kernel), r.initrd ? file('initrd', r.initrd) : undefined, r.rootfs ? file('rootfs', r.rootfs) : undefined])
      return {
        kind: 'microvm', kernel, ...(initrd ? { initrd } : {}), ...(rootfs ? { rootfs } : {}), ...(r.command ? { command: r.command } : {}),
        ...(r.stateDisk !== undefined ? { stateDiskBytes: r.stateDisk } : {}),
      }
    }
    case 'actor':
      if (!r.bundle) throw new InvalidAllocationError('an actor workload needs runtime.bundle')
      if (isDigest(r.bundle)) return { kind: 'actor', bundle: await needArtifacts(artifacts).bundle(r.bundle, { from }), ...(r.args ? { args: r.args } : {}) }
      return { kind: 'actor', bundle: await catalog.resolve('actor', r.bundle), ...(r.args ? { args: r.args } : {}) }
  }
}

/** What the provider asks the runner to start (ports.ts WorkloadRunner.start). */
type StartOrder = { contractId: string; slot: string; workload: Workload; reservationId: string; consumer?: string; restore?: { digest: string; from: string[] } }

const kindOf: Record<RuntimeType, ExecutorKind> = { container: 'docker', wasm: 'wasm', microvm: 'microvm', actor: 'actor' }

export interface ApplianceRuntimeInit {
  parts: ApplianceParts
  /** Where a workload's secrets come from at each start (the secrets service; spec/secrets.md). */
  secrets?: () => ProviderSecrets | undefined
  /** The owner's catalog: where workloads' modules, bundles, kernels and root filesystems are found by name. */
  catalog: Catalog
  /** Testing only: the free capacity claimed in bids (config `orchestration.claimFree`). */
  claimFree?: { cpu?: number; memoryBytes?: number }
  log?: Log
  /** Runs an executor start inside a trace span, when the node traces (spec/observability.md). */
  span?: <T>(name: string, attributes: Record<string, string>, fn: () => Promise<T>) => Promise<T>
  /** Workload artifacts (fetch, unpack, load) and provenance; without it a workload naming a digest is refused. */
  artifacts?: WorkloadArtifacts
}

/** The appliance as the provider sees it: capacity (the allocator) and a runner (allocations). */
export class ApplianceRuntime implements CapacityPort, WorkloadRunner {
  readonly #parts: ApplianceParts
  readonly #secrets: () => ProviderSecrets | undefined
  readonly #catalog: Catalog
  readonly #claimFree: { cpu?: number; memoryBytes?: number } | undefined
  readonly #log: Log
  readonly #span: ApplianceRuntimeInit['span']
  readonly #listeners = new Set<(s: InstanceStatus) => void>()
  readonly #artifacts: WorkloadArtifacts | undefined
  /** Runs started by this process, for their provenance when they end. */
  readonly #runs = new Map<string, { contractId: string; consumer: string; workload: Workload; startedAt: number }>()
  /** Checkpoints taken by this process, by instance (a repeated ask gets the same archive). */
  readonly #checkpoints = new Map<string, Promise<{ digest: string; bytes: number }>>()
  /** Warm starts by the reservation they wait for (a released reservation ends its warm instance). */
  readonly #warmByReservation = new Map<string, string>()
  #available: RuntimeType[] = []
  #closed = false

  constructor(init: ApplianceRuntimeInit) {
    this.#parts = init.parts
    this.#secrets = init.secrets ?? (() => undefined)
    this.#catalog = init.catalog
    this.#claimFree = init.claimFree
    this.#log = init.log ?? silentLog
    this.#span = init.span
    this.#artifacts = init.artifacts
  }

  async refreshRuntimes(): Promise<void> {
    const kinds = Object.entries(kindOf) as [RuntimeType, ExecutorKind][]
    // An executor that cannot even answer is unavailable: that is the answer, not an error to report.
    const answers = await Promise.all(kinds.map(([, kind]) => this.#parts.executors[kind]?.available().catch(() => ({ ok: false })) ?? { ok: false }))
    this.#available = kinds.filter((_, i) => answers[i]!.ok).map(([type]) => type)
  }

  close(): void {
    this.#closed = true
  }

  // CapacityPort
  async free(): Promise<Capacity> {
    const c = await this.#parts.allocator.capacity()
    return { cpu: c.free.cpu, memoryBytes: c.free.memoryBytes, gpu: c.free.gpu, vramBytes: 0, diskBytes: c.free.diskBytes, ...(this.#claimFree ?? {}) }
  }

  async reserve(o: { id: string; resources: Workload['resources']; ttlMs: number; ports?: number }): Promise<{ reservationId: string }> {
    const r = await this.#parts.allocator.reserve(
      { cpu: o.resources.cpu, memoryBytes: o.resources.memoryBytes, diskBytes: o.resources.diskBytes, gpu: o.resources.gpu, ports: o.ports ?? 0 },
      { ttlMs: o.ttlMs },
    )
    return { reservationId: r.id }
  }

  async commit(reservationId: string): Promise<void> {
    await this.#parts.allocator.commit(reservationId)
  }

  async release(reservationId: string): Promise<void> {
    const warm = this.#warmByReservation.get(reservationId)
    if (warm !== undefined) {
      this.#warmByReservation.delete(reservationId)
      await this.#parts.allocations.discardWarm(warm).catch(() => undefined)
    }
    await this.#parts.allocator.release(reservationId)
  }

  // WorkloadRunner
  runtimes(): RuntimeType[] {
    return this.#available
  }

  /** Whether this node's containers can be checkpointed with their memory (runsc run directly). */
  #processCheckpoints(): Availability {
    const docker = this.#parts.executors.docker as { processCheckpoints?(): Availability } | undefined
    if (!docker) return { ok: false, reason: 'no docker executor' }
    return docker.processCheckpoints?.() ?? { ok: false, reason: 'the docker executor does not run runsc directly' }
  }

  /** A catalog entry the workload names that this node's owner has not installed: the node declines to bid. */
  missing(w: Workload): string | undefined {
    if (w.runtime.checkpoint === 'process') {
      const a = this.#processCheckpoints()
      if (!a.ok) return `no process checkpoints of containers here: ${a.reason}`
    }
    const gone = catalogNeeds(w.runtime).find(([kind, name]) => !this.#catalog.has(kind, name))
    return gone ? `no ${gone[0]} '${gone[1]}' in this node's catalog` : undefined
  }

  start(o: StartOrder): Promise<{ instanceId: string }> {
    const span = this.#span
    if (!span) return this.#start(o)
    return span('noir.executor.start', { 'noir.executor': kindOf[o.workload.runtime.type], 'noir.contract': o.contractId, 'noir.slot': o.slot }, () => this.#start(o))
  }

  async #start(o: StartOrder): Promise<{ instanceId: string }> {
    const w = o.workload
    const env: Record<string, string> = { ...w.env, NOIR_SLOT: o.slot }
    const secrets = await this.#secretDelivery(o)
    const id = allocationIdFor(o.contractId)
    const service = w.kind === 'service' ? w.service! : undefined
    const restore = o.restore
    let seedState: ((dir: string) => Promise<void>) | undefined
    if (restore) {
      const a = this.#artifacts
      if (!a?.unpackState) throw new InvalidAllocationError('this start restores a state archive, and this node runs no artifacts service')
      // fetched and checked before anything is reserved; unpacked into the fresh state directory
      await a.file(restore.digest, { from: restore.from })
      const processImage = w.runtime.checkpoint === 'process'
      seedState = async (dir) => {
        await a.unpackState!(restore.digest, dir, { from: restore.from })
        // a process image in the archive goes beside the state directory, out of the workload's view, where
        // only the allocation's first start reads it (spec/migration.md); a workload that does not run
        // under runsc gets none
        const img = join(dir, PROCESS_IMAGE_DIR)
        if (existsSync(img)) {
          if (processImage) renameSync(img, join(dirname(dir), RESTORE_IMAGE_DIR))
          else rmSync(img, { recursive: true, force: true })
        }
      }
    }
    const rec = await this.#parts.allocations.create({
      id,
      runtime: await runtimeSpec(w, this.#catalog, this.#artifacts, o.consumer ? [o.consumer] : []),
      env,
      resources: { cpu: w.resources.cpu, memoryBytes: w.resources.memoryBytes, diskBytes: w.resources.diskBytes, gpu: w.resources.gpu },
      ports: w.ports.map((p) => ({ containerPort: p.port, protocol: p.protocol })),
      // Services restart in place a few times; beyond that (or for a job) the orchestrator places again elsewhere.
      restart: service ? { policy: service.restart, maxRestarts: 3, backoffMs: 200, maxBackoffMs: 2000 } : { policy: 'never' },
      graceMs: STOP_GRACE_MS,
      reservationId: o.reservationId,
      // The grace tells the node's watchdog how long this replica may outlive its daemon (appliance/watchdog).
      labels: { 'noir.contract': o.contractId, 'noir.slot': o.slot, [LABEL_GRACE]: String(GRACE_MS[w.lane]) },
      ...(secrets ? { secrets } : {}),
      ...(seedState ? { seedState } : {}),
    })
    // a warm sandbox of this contract is the allocation's now (adopted, or ended for another spec)
    this.#warmByReservation.delete(o.reservationId)
    if (o.consumer) this.#runs.set(rec.id, { contractId: o.contractId, consumer: o.consumer, workload: w, startedAt: Date.now() })
    const first = await this.#parts.allocations.waitFor(rec.id, (s) => s !== 'pending' && s !== 'starting')
    // After the provider has recorded the instance (it maps instance -> contract when start resolves).
    setImmediate(() => void this.#watch(rec.id, first))
    return { instanceId: rec.id }
  }

  /**
   * A migration's handover (spec/migration.md): the sandbox of a reserved contract's SDK actor is spawned
   * now, its bundle loaded, its actor not started; the contract's start (with the old replica's state) then
   * adopts it and only says go. `{ warm: false }` for what has no warm start (another runtime, a workload with
   * secrets or ports: their environment is settled at start) and for a contract already started.
   */
  async prewarm(o: { contractId: string; slot: string; workload: Workload; reservationId: string; consumer?: string }): Promise<{ warm: boolean }> {
    const w = o.workload
    if (w.runtime.type !== 'actor' || w.secrets.length > 0 || w.ports.length > 0) return { warm: false }
    const id = allocationIdFor(o.contractId)
    const runtime = await runtimeSpec(w, this.#catalog, this.#artifacts, o.consumer ? [o.consumer] : [])
    // the very environment #start gives it: the executor adopts the warm sandbox only for the same spec
    const env: Record<string, string> = { ...w.env, NOIR_SLOT: o.slot }
    const resources = { cpu: w.resources.cpu, memoryBytes: w.resources.memoryBytes, diskBytes: w.resources.diskBytes, gpu: w.resources.gpu }
    this.#warmByReservation.set(o.reservationId, id)
    const warm = await this.#parts.allocations.prewarm({ id, runtime, env, resources })
    return { warm }
  }

  /**
   * The secrets of a start, by target (spec/secrets.md): fetched now from the contract's orchestrator, so a
   * refusal fails the start with its typed error, and again at every later launch (a restart in place, a
   * rotation). Values live in memory only: never in the allocation record, its state folder or a log.
   */
  async #secretDelivery(o: { contractId: string; slot: string; workload: Workload; consumer?: string }): Promise<(() => Promise<SecretDelivery>) | undefined> {
    const w = o.workload
    if (w.secrets.length === 0) return undefined
    if (w.runtime.type === 'microvm') throw new InvalidAllocationError('secrets reach container, wasm and actor workloads only (a microvm\'s environment is written into its boot image)')
    if (w.runtime.type !== 'container' && w.secrets.some((s) => s.file !== undefined)) throw new InvalidAllocationError('a secret file is for a container runtime only')
    const source = this.#secrets()
    if (!source || o.consumer === undefined) throw new InvalidAllocationError('this node has no secrets service: it cannot run a workload that names secrets')
    const ask = { contractId: o.contractId, consumer: o.consumer, deploymentId: o.slot.slice(0, o.slot.lastIndexOf('/')), names: w.secrets.map((s) => s.name) }
    const fetchEnv = async (): Promise<SecretDelivery> => {
      const values = await source.fetch(ask)
      const d: SecretDelivery = { env: {}, files: {} }
      for (const s of w.secrets) {
        if (s.env !== undefined) d.env[s.env] = values[s.name]!
        else if (s.file !== undefined) d.files[s.file] = values[s.name]!
      }
      return d
    }
    let first: SecretDelivery | undefined = await fetchEnv()
    return async () => {
      const d = first ?? (await fetchEnv())
      first = undefined
      return d
    }
  }

  /**
   * Stops the instance and frees everything it held (container, reservation, state directory); resolves only
   * once that is done (an instance already gone counts as stopped). Any failure rejects: the caller reports it.
   */
  async stop(instanceId: string): Promise<void> {
    await this.#parts.allocations.remove(instanceId, { graceMs: STOP_GRACE_MS })
  }

  /**
   * A migration's checkpoint (spec/migration.md): the instance is stopped (an SDK actor saves its snapshot
   * into its state directory as it stops; a container's files are at rest; a microVM with a state disk is
   * first paused and its memory saved beside the disk, `vm.state`), then the state directory is archived as an
   * artifact. Asked again for the same instance: the same archive.
   */
  async checkpoint(instanceId: string, o: { live?: boolean } = {}): Promise<{ digest: string; bytes: number }> {
    if (o.live) return await this.#liveCheckpoint(instanceId)
    const kept = this.#checkpoints.get(instanceId)
    if (kept) return await kept
    const a = this.#artifacts
    if (!a?.packState) throw new InvalidAllocationError('this node runs no artifacts service: it cannot checkpoint')
    const p = (async () => {
      const rec = this.#parts.allocations.get(instanceId)
      // a runsc container's suspend writes its process image into the state directory (.noir-process)
      const suspended = await this.#suspend(rec)
      await this.#parts.allocations.stopAllocation(instanceId, STOP_GRACE_MS)
      // not suspended: a workload's own file of that name never travels as a process image
      if (!suspended) rmSync(join(rec.spec.stateDir, PROCESS_IMAGE_DIR), { recursive: true, force: true })
      return await a.packState!(rec.spec.stateDir)
    })()
    this.#checkpoints.set(instanceId, p)
    p.catch(() => this.#checkpoints.delete(instanceId))
    return await p
  }

  /**
   * Saves a running instance's whole state into its state directory when its executor can (a microVM with a
   * state disk: QEMU save); a failed save is logged and the checkpoint carries its files only (the disk).
   */
  async #suspend(rec: AllocationRecord): Promise<boolean> {
    const ex = this.#parts.executors[rec.kind]
    if (!ex?.suspend || !rec.handle || rec.state !== 'running') return false
    const t0 = Date.now()
    try {
      const saved = await ex.suspend(rec.handle)
      if (saved) this.#log.info('instance suspended for its checkpoint', { instanceId: rec.id, ms: Date.now() - t0 })
      return saved
    } catch (err) {
      this.#log.warn('instance not suspended: its checkpoint carries its files only', { instanceId: rec.id, error: (err as Error).name, message: (err as Error).message })
      return false
    }
  }

  /**
   * A live checkpoint (stateful failover, spec/migration.md): the state directory is copied as it is at this
   * moment (the instance keeps running; a file written during the copy may be caught half-written, as after
   * a power cut) and the copy archived.
   */
  async #liveCheckpoint(instanceId: string): Promise<{ digest: string; bytes: number }> {
    const a = this.#artifacts
    if (!a?.packState) throw new InvalidAllocationError('this node runs no artifacts service: it cannot checkpoint')
    const rec = this.#parts.allocations.get(instanceId)
    if (rec.state !== 'running') throw new InvalidAllocationError(`instance ${instanceId} is ${rec.state}, not running`)
    const copy = mkdtempSync(join(tmpdir(), 'noir-live-state-'))
    try {
      await cp(rec.spec.stateDir, copy, { recursive: true, verbatimSymlinks: true, force: true })
      rmSync(join(copy, PROCESS_IMAGE_DIR), { recursive: true, force: true }) // only a migration's checkpoint makes one
      return await a.packState(copy, { pin: false })
    } finally {
      rmSync(copy, { recursive: true, force: true })
    }
  }

  async liveInstances(): Promise<{ instanceId: string; contractId: string }[]> {
    return this.#parts.allocations.list()
      .filter((a) => a.id.startsWith(CONTRACT_ALLOCATION_PREFIX) && !finalStates.includes(a.state))
      .map((a) => ({ instanceId: a.id, contractId: a.id.slice(CONTRACT_ALLOCATION_PREFIX.length) }))
  }

  resume(instanceId: string): void {
    let rec: AllocationRecord
    try {
      rec = this.#parts.allocations.get(instanceId)
    } catch {
      // gone while the daemon was down (AllocationNotFoundError is get's only failure): report it ended
      setImmediate(() => {
        for (const l of this.#listeners) l({ instanceId, state: 'failed', reason: 'the allocation is gone after a restart', code: null, at: Date.now() })
      })
      return
    }
    setImmediate(() => void this.#watch(instanceId, rec))
  }

  onStatus(listener: (s: InstanceStatus) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  async logs(instanceId: string, o: { since: number; limit: number }): Promise<{ lines: LogEntry[]; ended: boolean }> {
    const lines: LogEntry[] = []
    let ended = true
    try {
      const rec = this.#parts.allocations.get(instanceId)
      ended = rec.state === 'stopped' || rec.state === 'exited' || rec.state === 'failed'
      for await (const l of this.#parts.allocations.logs(instanceId, { follow: false, since: o.since })) {
        if (l.ts <= o.since) continue
        lines.push({ ts: l.ts, stream: l.stream, line: l.line })
        if (lines.length >= o.limit) break
      }
    } catch (err) {
      // A removed allocation has no logs left; anything else is the caller's to see.
      if (!(err instanceof AllocationNotFoundError)) throw err
    }
    return { lines, ended }
  }

  /** Reports `running` once, then the final state (restarts in place in between are the allocation's own). */
  async #watch(id: string, first: AllocationRecord): Promise<void> {
    const isFinal = (st: AllocationRecord['state']): boolean => finalStates.includes(st)
    if (!isFinal(first.state)) {
      this.#emit(first)
      const last = await this.#parts.allocations.waitFor(id, isFinal).catch((err: Error) => {
        // Removed (stopped by its consumer) before it ended by itself: the stop already answered for it.
        if (!(err instanceof AllocationNotFoundError)) this.#log.warn('instance no longer followed', { instanceId: id, error: err.name, message: err.message })
        return undefined
      })
      if (last) {
        await this.#provenance(last)
        this.#emit(last)
      }
    } else {
      await this.#provenance(first)
      this.#emit(first)
    }
    // An ended instance's logs stay readable for a while, then its container and state are removed.
    const t = setTimeout(() => {
      this.#parts.allocations.remove(id).catch((err: Error) => this.#log.warn('ended instance not removed', { instanceId: id, error: err.name, message: err.message }))
    }, ENDED_RETENTION_MS)
    t.unref()
  }

  /** Signs the ended run's provenance (with a job's state folder as its output) before the end is reported. */
  async #provenance(r: AllocationRecord): Promise<void> {
    const run = this.#runs.get(r.id)
    this.#runs.delete(r.id)
    if (!run || !this.#artifacts?.runEnded) return
    const state = r.state === 'exited' || r.state === 'failed' || r.state === 'stopped' ? r.state : 'failed'
    try {
      await this.#artifacts.runEnded({
        contractId: run.contractId, consumer: run.consumer, workload: run.workload, artifacts: workloadArtifacts(run.workload.runtime),
        startedAt: run.startedAt, endedAt: Date.now(), state, code: r.lastExit?.code ?? null, ...(r.reason ? { reason: r.reason } : {}),
        ...(run.workload.kind === 'job' ? { outputDir: r.spec.stateDir } : {}),
      })
    } catch (err) {
      this.#log.warn('provenance not recorded', { instanceId: r.id, error: (err as Error).name, message: (err as Error).message })
    }
  }

  #emit(r: AllocationRecord): void {
    if (this.#closed) return
    const map: Partial<Record<AllocationRecord['state'], InstanceStatus['state']>> = { running: 'running', backoff: 'running', exited: 'exited', failed: 'failed', stopped: 'stopped' }
    const state = map[r.state]
    if (!state) return
    const s: InstanceStatus = {
      instanceId: r.id, state, at: Date.now(),
      ...(state === 'exited' || state === 'failed' ? { code: r.lastExit?.code ?? null, reason: r.reason ?? r.lastExit?.reason ?? state } : {}),
    }
    for (const l of this.#listeners) l(s)
  }
}

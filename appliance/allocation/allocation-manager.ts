// Allocations on this node: one allocation actor (allocation-machine.ts, hosted on the core ActorSystem at
// `<node DID>/alloc/<id>`) per workload instance, its resources held by a committed allocator reservation,
// its record persisted in level (`alloc/<id>`, spec/appliance.md) on every state change.
//
// Restart safety (recover()): records that were not final are matched with what the executors still have
// (executor.list(), by the `noir.allocation` label for docker): a live instance is re-attached (ATTACH, never
// started again), a prepared-but-never-started one is removed and started fresh, a lost one (e.g. wasm
// after a restart) is restarted only if its policy restarts, and containers with no record are removed.
// Nothing is lost and nothing runs twice.
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { chmodSync, mkdirSync, rmSync } from 'node:fs'
import { createMachine } from 'xstate'
import { defineActor, type ActorRef, type ActorSystem, type KvStore } from '../../core/index.ts'
import type { ExecHandle, ExecSpec, Executor, ExecutorKind, ExitStatus, LogLine, PortMapping, RuntimeSpec, UsageStats } from '../executor/executor.ts'
import type { Allocator, Reservation } from '../allocator/allocator.ts'
import {
  AllocationNotFoundError,
  DuplicateAllocationError,
  ExecutorUnavailableError,
  InvalidAllocationError,
} from '../errors.ts'
import {
  allocationMachine,
  finalStates,
  type AllocationContext,
  type AllocationEvent,
  type AllocationInput,
  type AllocationState,
  type RestartPolicy,
} from './allocation-machine.ts'

export interface AllocationRequest {
  /** Chosen by the caller (e.g. contract + slot) or generated. Letters, digits and . _ ~ : @ + - (1-128). */
  id?: string
  runtime: RuntimeSpec
  env?: Record<string, string>
  resources: { cpu: number; memoryBytes: number; diskBytes?: number; gpu?: number; pids?: number; cpuTimeMs?: number }
  /** Ports the workload listens on; each is published on a host port from the allocator's range (127.0.0.1). */
  ports?: Array<{ containerPort: number; protocol?: 'tcp' | 'udp' }>
  restart?: Partial<RestartPolicy>
  /** Grace period of a stop before the kill. Default 10 s. */
  graceMs?: number
  /** Commit this (already made) reservation instead of reserving now. */
  reservationId?: string
  labels?: Record<string, string>
  /**
   * The secrets (spec/secrets.md): environment variables and files, asked at each launch, the first and every
   * restart, and handed to the executor only; never in the record, the state folder or a log.
   */
  secrets?: () => Promise<SecretDelivery>
  /** Fills the fresh state directory before anything runs (a migration's or failover's state archive, spec/migration.md). */
  seedState?: (stateDir: string) => Promise<void>
}

/** Secret values by target: environment variable -> value, container path -> value. */
export interface SecretDelivery { env: Record<string, string>; files: Record<string, string> }

export interface AllocationRecord {
  id: string
  kind: ExecutorKind
  state: AllocationState
  spec: ExecSpec
  reservationId: string
  /** A ports-only reservation, when the committed reservation held fewer ports than the workload publishes. */
  portsReservationId?: string
  restart: Partial<RestartPolicy>
  graceMs: number
  handle: ExecHandle | null
  restarts: number
  lastExit: ExitStatus | null
  reason: string | null
  createdAt: number
  updatedAt: number
  startedAt: number | null
  /** It has secrets, delivered at each launch by `secrets` (held in this process only). */
  secrets?: true
}

export interface AllocationView extends AllocationRecord {
  usage: UsageStats | null
}

export interface AllocationManagerInit {
  system: ActorSystem
  executors: Partial<Record<ExecutorKind, Executor>>
  allocator: Allocator
  /** Where allocation records are kept (under `alloc/`); the appliance service's own store. */
  store: KvStore
  /** Where allocation state directories live: `<stateRoot>/<id>/state`. */
  stateRoot: string
  /** How often running allocations' usage is sampled. Default 5 s. */
  statsEveryMs?: number
  /** Called after every persisted state change (status publishing). */
  onChange?: (record: AllocationRecord) => void
}

const KEY = 'alloc/'
const ID = /^[A-Za-z0-9._~:@+-]{1,128}$/
const PARENT = 'alloc'
export const ALLOC_STATUS = '/noir/alloc/status'
export const ALLOC_STOP = '/noir/alloc/stop'
export const ALLOC_START = '/noir/alloc/start'
export const ALLOC_ATTACH = '/noir/alloc/attach'
export const ALLOC_RESTART = '/noir/alloc/restart'

const isFinal = (s: AllocationState): boolean => finalStates.includes(s)

/**
 * A fresh state directory for one allocation: `<stateRoot>/<id>/state-<128 random bits>`, the folders on
 * the way 0711 / 0700, so no other allocation (nor another local user) can list, guess or reach it. The
 * name is kept in the allocation's record (its spec), so a restarted node finds it again.
 */
export function privateStateDir(stateRoot: string, id: string): string {
  mkdirSync(stateRoot, { recursive: true, mode: 0o711 })
  chmodSync(stateRoot, 0o711)
  const own = join(stateRoot, id)
  mkdirSync(own, { recursive: true, mode: 0o711 })
  const dir = join(own, `state-${randomBytes(16).toString('hex')}`)
  mkdirSync(dir, { mode: 0o700 })
  return dir
}

export class AllocationManager {
  readonly #system: ActorSystem
  readonly #executors: Partial<Record<ExecutorKind, Executor>>
  readonly #allocator: Allocator
  /** Allocation records by id (keys `alloc/<id>` of the store). */
  readonly #stored: KvStore<AllocationRecord>
  readonly #stateRoot: string
  readonly #statsEveryMs: number
  readonly #onChange: ((r: AllocationRecord) => void) | undefined
  readonly #records = new Map<string, AllocationRecord>()
  readonly #usage = new Map<string, UsageStats>()
  readonly #waiters = new Map<string, Set<() => void>>()
  readonly #listeners = new Set<(r: AllocationRecord) => void>()
  /** Where each allocation's secrets come from (memory only: a restarted daemon has none). */
  readonly #secrets = new Map<string, () => Promise<SecretDelivery>>()
  /** Warm instances by allocation id (a migration's handover): their state directory, kept for create(). */
  readonly #warm = new Map<string, { stateDir: string; kind: ExecutorKind; loaded: Promise<void>; timer: NodeJS.Timeout }>()
  #writes: Promise<unknown> = Promise.resolve()
  #statsTimer: NodeJS.Timeout | undefined
  #stopped = false
  #parent: ActorRef | undefined

  constructor(init: AllocationManagerInit) {
    this.#system = init.system
    this.#executors = init.executors
    this.#allocator = init.allocator
    this.#stored = init.store.scope<AllocationRecord>(KEY)
    this.#stateRoot = init.stateRoot
    this.#statsEveryMs = init.statsEveryMs ?? 5000
    this.#onChange = init.onChange
  }

  /** Loads the records, re-attaches what still runs, and starts sampling usage. */
  async start(): Promise<void> {
    this.#parent = this.#system.lookup(PARENT) ?? this.#system.spawn(defineActor(idleMachine()).with({ name: 'allocations', behaviors: {}, restart: 'permanent' }), { name: PARENT })
    for await (const [id, r] of this.#stored.entries()) this.#records.set(id, r)
    await this.#recover()
    this.#statsTimer = setInterval(() => void this.#sampleUsage(), this.#statsEveryMs)
    this.#statsTimer.unref()
  }

  /** Stops watching. Workloads keep running (a restarted daemon re-attaches them). */
  async stop(): Promise<void> {
    this.#stopped = true
    if (this.#statsTimer) clearInterval(this.#statsTimer)
    await this.#writes.catch(() => undefined)
  }

  /**
   * A migration's handover (spec/migration.md): the instance of allocation `id`, not created yet, is spawned
   * now by its executor, its code loaded but not started, in the state directory create() will give it.
   * create() of the same id and spec (within `ttlMs`) adopts it: its start is then only a go-ahead. Resolves
   * `false` when this runtime has no warm start (or the allocation exists already); asked again, the same.
   * No resources are taken here: the caller holds the reservation create() commits.
   */
  async prewarm(req: Pick<AllocationRequest, 'runtime' | 'env' | 'resources'> & { id: string; ttlMs?: number }): Promise<boolean> {
    const { id } = req
    if (!ID.test(id) || id === '.' || id === '..') throw new InvalidAllocationError(`id '${id}' must be 1-128 of A-Z a-z 0-9 . _ ~ : @ + -`)
    if (this.#records.has(id)) return false
    const kept = this.#warm.get(id)
    if (kept) return kept.loaded.then(() => true)
    const kind = req.runtime.kind
    const executor = this.#executors[kind]
    if (!executor?.warm) return false
    const ttlMs = req.ttlMs ?? 120_000
    const stateDir = privateStateDir(this.#stateRoot, id)
    const loaded = executor.warm(this.#execSpec(id, req, 'none', stateDir), { ttlMs })
    const timer = setTimeout(() => void this.discardWarm(id), ttlMs)
    timer.unref()
    this.#warm.set(id, { stateDir, kind, loaded, timer })
    try {
      await loaded
    } catch (err) {
      await this.discardWarm(id)
      throw err
    }
    return true
  }

  /** Ends a warm instance create() did not adopt (its migration was abandoned) and removes its state directory. */
  async discardWarm(id: string): Promise<void> {
    const w = this.#warm.get(id)
    if (!w) return
    this.#warm.delete(id)
    clearTimeout(w.timer)
    await this.#executors[w.kind]?.discardWarm?.(id).catch(() => undefined)
    if (!this.#records.has(id)) rmSync(join(this.#stateRoot, id), { recursive: true, force: true })
  }

  #execSpec(id: string, req: Pick<AllocationRequest, 'runtime' | 'env' | 'resources' | 'labels'>, network: ExecSpec['network'], stateDir: string): ExecSpec {
    return {
      allocationId: id,
      runtime: req.runtime,
      env: { ...req.env },
      limits: {
        cpu: req.resources.cpu,
        memoryBytes: req.resources.memoryBytes,
        ...(req.resources.pids !== undefined ? { pids: req.resources.pids } : {}),
        ...(req.resources.cpuTimeMs !== undefined ? { cpuTimeMs: req.resources.cpuTimeMs } : {}),
      },
      network,
      stateDir,
      ...(req.labels ? { labels: req.labels } : {}),
    }
  }

  /** Reserves (or commits the given reservation), records, and starts the allocation. Resolves once it is starting. */
  async create(req: AllocationRequest): Promise<AllocationRecord> {
    const id = req.id ?? `a-${randomBytes(6).toString('hex')}`
    if (!ID.test(id) || id === '.' || id === '..') throw new InvalidAllocationError(`id '${id}' must be 1-128 of A-Z a-z 0-9 . _ ~ : @ + -`)
    const kind = req.runtime?.kind
    const executor = kind ? this.#executors[kind] : undefined
    if (!kind || !executor) throw new ExecutorUnavailableError(String(kind), `no '${String(kind)}' executor on this node (have: ${Object.keys(this.#executors).join(', ') || 'none'})`)
    if (this.#records.has(id)) throw new DuplicateAllocationError(id)
    for (const p of req.ports ?? []) {
      if (!Number.isInteger(p.containerPort) || p.containerPort < 1 || p.containerPort > 65535) throw new InvalidAllocationError(`bad container port ${p.containerPort}`)
    }
    const nPorts = req.ports?.length ?? 0
    // Refuse what can never run (missing image, bad module) before anything is reserved.
    await executor.validate?.({
      allocationId: id,
      runtime: req.runtime,
      env: {},
      limits: { cpu: req.resources.cpu, memoryBytes: req.resources.memoryBytes },
      network: 'none',
      stateDir: join(this.#stateRoot, id, 'state-validate'),
    })
    let reservation: Reservation
    let portsReservation: Reservation | undefined
    if (req.reservationId !== undefined) {
      reservation = await this.#allocator.commit(req.reservationId, { allocationId: id })
      if (reservation.ports.length < nPorts) {
        // A reservation made from resources alone (a bid) holds no ports: take them now, as their own hold.
        const pr = await this.#allocator.reserve({ cpu: 0, memoryBytes: 0, ports: nPorts - reservation.ports.length }, { allocationId: id })
        portsReservation = await this.#allocator.commit(pr.id, { allocationId: id })
      }
    } else {
      const r = await this.#allocator.reserve({ ...req.resources, ports: nPorts }, { allocationId: id })
      reservation = await this.#allocator.commit(r.id, { allocationId: id })
    }
    const hostPorts = [...reservation.ports, ...(portsReservation?.ports ?? [])]
    const ports: PortMapping[] = (req.ports ?? []).map((p, i) => ({ containerPort: p.containerPort, hostPort: hostPorts[i]!, protocol: p.protocol ?? 'tcp' }))
    // a warm instance of this id (a migration's handover) has its state directory already: the executor adopts
    // it if the spec is the very same, and ends it otherwise
    const warm = this.#warm.get(id)
    if (warm) {
      this.#warm.delete(id)
      clearTimeout(warm.timer)
    }
    const spec = this.#execSpec(id, req, ports.length > 0 ? { ports } : 'none', warm?.stateDir ?? privateStateDir(this.#stateRoot, id))
    if (req.seedState) {
      try {
        await req.seedState(spec.stateDir)
      } catch (err) {
        // nothing ran: the holds go back and the state directory goes
        await this.#allocator.release(reservation.id).catch(() => undefined)
        if (portsReservation) await this.#allocator.release(portsReservation.id).catch(() => undefined)
        if (warm) await executor.discardWarm?.(id).catch(() => undefined)
        rmSync(join(this.#stateRoot, id), { recursive: true, force: true })
        throw err
      }
    }
    const now = Date.now()
    const record: AllocationRecord = {
      id,
      kind,
      state: 'pending',
      spec,
      reservationId: reservation.id,
      ...(portsReservation ? { portsReservationId: portsReservation.id } : {}),
      restart: req.restart ?? {},
      graceMs: req.graceMs ?? 10_000,
      handle: null,
      restarts: 0,
      lastExit: null,
      reason: null,
      createdAt: now,
      updatedAt: now,
      startedAt: null,
      ...(req.secrets ? { secrets: true as const } : {}),
    }
    if (req.secrets) this.#secrets.set(id, req.secrets)
    this.#records.set(id, record)
    await this.#persist(record) // the record exists before anything is created: a crash leaves no orphan unaccounted
    this.#spawnActor(record, { type: 'START' })
    return { ...record }
  }

  get(id: string): AllocationView {
    const r = this.#records.get(id)
    if (!r) throw new AllocationNotFoundError(id)
    return { ...r, usage: this.#usage.get(id) ?? null }
  }

  list(): AllocationView[] {
    return [...this.#records.values()].map((r) => ({ ...r, usage: this.#usage.get(r.id) ?? null }))
  }

  /** Stops the running instance and launches it again (its secrets asked anew); false when it is not running. */
  restart(id: string): boolean {
    const r = this.#records.get(id)
    if (!r) throw new AllocationNotFoundError(id)
    if (r.state !== 'running') return false
    const ref = this.#system.lookup(`${PARENT}/${id}`)
    if (!ref) return false
    ref.tell(ALLOC_RESTART, {})
    return true
  }

  /** Stops an allocation (SIGTERM, grace, kill) and resolves with its final record. */
  async stopAllocation(id: string, graceMs?: number): Promise<AllocationRecord> {
    const r = this.#records.get(id)
    if (!r) throw new AllocationNotFoundError(id)
    if (isFinal(r.state)) return { ...r }
    const ref = this.#system.lookup(`${PARENT}/${id}`)
    if (ref) ref.tell(ALLOC_STOP, graceMs === undefined ? {} : { graceMs })
    return this.waitFor(id, isFinal)
  }

  /** Stops (if needed) and forgets an allocation: its instance, its reservation, its state dir, its record. */
  async remove(id: string, opts: { graceMs?: number } = {}): Promise<void> {
    const r = this.#records.get(id)
    if (!r) return
    const final = await this.stopAllocation(id, opts.graceMs ?? 0)
    const ex = this.#executors[r.kind]
    if (final.handle && ex) await ex.remove(final.handle)
    await this.#allocator.release(r.reservationId)
    if (r.portsReservationId) await this.#allocator.release(r.portsReservationId)
    this.#records.delete(id)
    this.#secrets.delete(id)
    this.#usage.delete(id)
    await this.#enqueue(() => this.#stored.del(id))
    rmSync(join(this.#stateRoot, id), { recursive: true, force: true })
  }

  logs(id: string, opts: { follow: boolean; since?: number }): AsyncIterable<LogLine> {
    const r = this.#records.get(id)
    if (!r) throw new AllocationNotFoundError(id)
    return this.#logsOf(r, opts)
  }

  async *#logsOf(r: AllocationRecord, opts: { follow: boolean; since?: number }): AsyncIterable<LogLine> {
    // Follow from the start: wait until there is an instance to read.
    let rec = r
    if (!rec.handle && !isFinal(rec.state)) rec = await this.waitFor(r.id, (s) => s !== 'pending' && s !== 'starting')
    if (!rec.handle) return
    const ex = this.#executors[rec.kind]
    if (!ex) return
    yield* ex.logs(rec.handle, opts)
  }

  /** Calls `listener` after every state change of any allocation. Returns an unsubscribe function. */
  onStatus(listener: (r: AllocationRecord) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Kinds of executor this node has. */
  kinds(): ExecutorKind[] {
    return (Object.keys(this.#executors) as ExecutorKind[]).filter((k) => this.#executors[k] !== undefined)
  }

  /** Resolves with the record once its state satisfies `pred`. */
  waitFor(id: string, pred: (s: AllocationState) => boolean): Promise<AllocationRecord> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const r = this.#records.get(id)
        if (!r) {
          reject(new AllocationNotFoundError(id))
          return true
        }
        if (pred(r.state)) {
          resolve({ ...r })
          return true
        }
        return false
      }
      if (check()) return
      const set = this.#waiters.get(id) ?? new Set()
      this.#waiters.set(id, set)
      const w = (): void => {
        if (check()) set.delete(w)
      }
      set.add(w)
    })
  }

  /** Totals for the heartbeat: allocations by state and the usage of running ones. */
  summary(): { total: number; byState: Partial<Record<AllocationState, number>>; cpuNanos: number; memoryBytes: number } {
    const byState: Partial<Record<AllocationState, number>> = {}
    let cpuNanos = 0
    let memoryBytes = 0
    for (const r of this.#records.values()) {
      byState[r.state] = (byState[r.state] ?? 0) + 1
      const u = this.#usage.get(r.id)
      if (u && r.state === 'running') {
        cpuNanos += u.cpuNanos
        memoryBytes += u.memoryBytes
      }
    }
    return { total: this.#records.size, byState, cpuNanos, memoryBytes }
  }

  // ---- internals ------------------------------------------------------------------------------------------

  #spawnActor(record: AllocationRecord, first: { type: 'START' } | { type: 'ATTACH'; handle: ExecHandle }): void {
    const executor = this.#executors[record.kind]!
    const machine = allocationMachine({
      launch: async (spec, previous) => {
        if (previous) await executor.remove(previous)
        const handle = await executor.prepare(await this.#withSecrets(record, spec))
        this.#update(record.id, { handle }) // known before start: re-attach can find and judge it
        try {
          await executor.start(handle)
        } catch (err) {
          // a failed start's instance can never run: removed now, so the next attempt (a restart) starts
          // clean and fails, if it does, for its own reason
          await executor.remove(handle).catch(() => undefined)
          throw err
        }
        return handle
      },
      wait: (h) => executor.wait(h),
      stop: (h, graceMs) => executor.stop(h, { graceMs }),
      report: (state, ctx) => this.#fromSnapshot(record.id, state, ctx),
    })
    const input: AllocationInput = {
      allocationId: record.id,
      spec: record.spec,
      restart: record.restart,
      graceMs: record.graceMs,
      restarts: record.restarts,
    }
    const definition = defineActor(machine).with({
      name: 'allocation',
      restart: 'temporary',
      behaviors: {
        [ALLOC_START]: { event: (): AllocationEvent => ({ type: 'START' }) },
        [ALLOC_RESTART]: { event: (): AllocationEvent => ({ type: 'RESTART' }) },
        [ALLOC_ATTACH]: { event: (body: { handle: ExecHandle }): AllocationEvent => ({ type: 'ATTACH', handle: body.handle }) },
        [ALLOC_STOP]: {
          event: (body: { graceMs?: number } | undefined): AllocationEvent =>
            typeof body?.graceMs === 'number' ? { type: 'STOP', graceMs: body.graceMs } : { type: 'STOP' },
        },
        [ALLOC_STATUS]: { reply: () => this.get(record.id) },
      },
    })
    const ref = this.#system.spawn(definition, { name: record.id, parent: this.#parent!, input })
    this.#system.watch(ref, (reason) => {
      if (reason.kind === 'crashed' && !this.#stopped) this.#update(record.id, { state: 'failed', reason: `allocation actor crashed: ${reason.error.message}` })
    })
    ref.tell(first.type === 'START' ? ALLOC_START : ALLOC_ATTACH, first.type === 'ATTACH' ? { handle: first.handle } : {})
  }

  /** The spec with its secrets added (a copy, for the executor only). */
  async #withSecrets(record: AllocationRecord, spec: ExecSpec): Promise<ExecSpec> {
    if (!record.secrets) return spec
    const source = this.#secrets.get(record.id)
    if (!source) throw new InvalidAllocationError('its secrets are delivered at start by its orchestrator and this process holds none for it (the daemon restarted): it is placed again')
    const d = await source()
    return { ...spec, env: { ...spec.env, ...d.env }, ...(Object.keys(d.files).length > 0 ? { secretFiles: d.files } : {}) }
  }

  #fromSnapshot(id: string, state: AllocationState, ctx: AllocationContext): void {
    const r = this.#records.get(id)
    if (!r) return
    this.#update(id, { state, handle: ctx.handle, restarts: ctx.restarts, lastExit: ctx.lastExit, reason: ctx.reason, startedAt: ctx.startedAt })
  }

  #update(id: string, patch: Partial<AllocationRecord>): void {
    const r = this.#records.get(id)
    if (!r || this.#stopped) return
    const wasFinal = isFinal(r.state)
    Object.assign(r, patch, { updatedAt: Date.now() })
    if (!wasFinal && isFinal(r.state)) {
      this.#usage.delete(id)
      void this.#allocator.release(r.reservationId).catch(() => undefined)
      if (r.portsReservationId) void this.#allocator.release(r.portsReservationId).catch(() => undefined)
    }
    void this.#persist(r)
    this.#onChange?.({ ...r })
    for (const l of [...this.#listeners]) l({ ...r })
    for (const w of [...(this.#waiters.get(id) ?? [])]) w()
  }

  #persist(r: AllocationRecord): Promise<void> {
    // a copy now: the record changes on while the write waits its turn
    const copy = JSON.parse(JSON.stringify(r)) as AllocationRecord
    return this.#enqueue(() => this.#stored.put(r.id, copy))
  }

  #enqueue(fn: () => Promise<void>): Promise<void> {
    const p = this.#writes.then(fn, fn)
    this.#writes = p.catch(() => undefined)
    return p
  }

  async #recover(): Promise<void> {
    const found = new Map<string, ExecHandle>()
    for (const ex of Object.values(this.#executors)) {
      if (!ex) continue
      const a = await ex.available()
      if (!a.ok) continue
      for (const h of await ex.list()) found.set(h.allocationId, h)
    }
    for (const r of this.#records.values()) {
      const h = found.get(r.id)
      found.delete(r.id)
      if (isFinal(r.state)) continue
      const ex = this.#executors[r.kind]
      if (!ex) {
        this.#update(r.id, { state: 'failed', reason: `no '${r.kind}' executor after restart` })
        continue
      }
      if (h && h.kind === r.kind) {
        const phase = ex.phase ? await ex.phase(h) : 'running'
        if (phase === 'created') {
          await ex.remove(h)
          this.#update(r.id, { handle: null })
          this.#spawnActor(r, { type: 'START' })
        } else {
          const wasStopping = r.state === 'stopping'
          this.#spawnActor(r, { type: 'ATTACH', handle: h }) // running or ended while we were down: wait() tells
          // A stop that was under way when the old daemon died is carried out now.
          if (wasStopping) this.#system.lookup(`${PARENT}/${r.id}`)?.tell(ALLOC_STOP, {})
        }
        continue
      }
      // The instance is gone (never created, removed, or an in-process wasm instance lost with the old daemon).
      const policy = r.restart.policy ?? 'never'
      if (r.state === 'pending' || r.state === 'starting' || r.state === 'backoff' || policy !== 'never') {
        this.#update(r.id, { handle: null })
        this.#spawnActor(r, { type: 'START' })
      } else {
        this.#update(r.id, { state: 'failed', reason: 'lost: the instance was gone after a restart' })
      }
    }
    // Held resources nobody uses any more: a committed reservation of an allocation that ended (its release
    // was lost with the old daemon) or that was never recorded (the daemon died between commit and record).
    for (const res of this.#allocator.list()) {
      if (res.state !== 'committed' || res.allocationId === undefined) continue
      const rec = this.#records.get(res.allocationId)
      const inUse = rec && !isFinal(rec.state) && (rec.reservationId === res.id || rec.portsReservationId === res.id)
      if (!inUse) await this.#allocator.release(res.id)
    }
    // Instances of this node with no live record: leftovers of removed allocations.
    for (const h of found.values()) {
      const rec = this.#records.get(h.allocationId)
      if (rec) continue
      await this.#executors[h.kind]?.remove(h)
    }
  }

  async #sampleUsage(): Promise<void> {
    for (const r of this.#records.values()) {
      if (r.state !== 'running' || !r.handle) continue
      const ex = this.#executors[r.kind]
      if (!ex) continue
      try {
        this.#usage.set(r.id, await ex.stats(r.handle))
      } catch {
        // ended between the check and the call
      }
    }
  }
}

/** The parent of every allocation actor (`<node DID>/alloc`): it only supervises. */
const idleMachine = () => createMachine({ id: 'allocations' })

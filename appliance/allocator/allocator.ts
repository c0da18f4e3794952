// The resource allocator: two-phase reservations against the owner's share and what the machine really has
// free. reserve() holds resources until an expiry; commit() makes them the allocation's until release().
// Expired reservations are reclaimed (lazily on every call, and by a timer when started). Every change is
// written to level before it is visible, so a daemon restart loses nothing (spec/appliance.md).
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:net'
import type { Share } from '../share/share.ts'
import { MIN_CPU } from '../executor/executor.ts'
import type { HostFree } from '../hardware/hardware.ts'
import type { KvStore } from '../../core/index.ts'
import {
  InsufficientCapacityError,
  InvalidResourceRequestError,
  PortsExhaustedError,
  ReservationExpiredError,
  ReservationNotFoundError,
} from '../errors.ts'

export interface ResourceRequest {
  cpu: number
  memoryBytes: number
  diskBytes?: number
  gpu?: number
  /** How many host ports (from the allocator's range) the workload publishes. */
  ports?: number
}

export interface Resources {
  cpu: number
  memoryBytes: number
  diskBytes: number
  gpu: number
}

export interface Reservation {
  id: string
  /** The allocation it is for, once known. */
  allocationId?: string
  resources: Resources
  ports: number[]
  state: 'reserved' | 'committed'
  createdAt: number
  /** Milliseconds since the epoch after which an uncommitted reservation is reclaimed. */
  expiresAt: number
}

export interface Capacity {
  share: Resources
  /** Held by reservations and committed allocations. */
  used: Resources
  /** What a new request can get now: min(share - used, free on the machine). */
  free: Resources
  ports: { range: [number, number]; used: number; free: number }
}

export interface AllocatorInit {
  /** Where reservations are kept (under `res/`); the appliance service's own store. */
  store: KvStore
  share: Share
  /** What the machine has free now (memory available, disk free...). Default: unlimited (share only). */
  hostFree?: () => Promise<HostFree> | HostFree
  /** Inclusive host port range for published ports. Default 20000-20999. */
  portRange?: [number, number]
  /** Check each candidate port is bindable on 127.0.0.1 before handing it out. Default true. */
  probePorts?: boolean
  /** Default reservation lifetime. Default 30 s. */
  reservationTtlMs?: number
  /** How often the timer reclaims expired reservations once started. Default 1 s. */
  reclaimEveryMs?: number
  now?: () => number
  /** Called with the reservations reclaimed (expired) by any path. */
  onReclaim?: (expired: Reservation[]) => void
}

const KEY_PREFIX = 'res/'
const zero = (): Resources => ({ cpu: 0, memoryBytes: 0, diskBytes: 0, gpu: 0 })
// Fractional CPU sums drift (0.1 + 0.2); compare with a small tolerance.
const EPS = 1e-9

export class Allocator {
  /** Reservations by id (keys `res/<id>` of the store). */
  readonly #records: KvStore<Reservation>
  /** The owner's share; `setShare` changes it for reservations made from then on (running ones keep theirs). */
  share: Share
  readonly #hostFree: () => Promise<HostFree> | HostFree
  readonly portRange: [number, number]
  readonly #probePorts: boolean
  readonly #ttlMs: number
  readonly #reclaimEveryMs: number
  readonly #now: () => number
  readonly #onReclaim: ((expired: Reservation[]) => void) | undefined
  readonly #reservations = new Map<string, Reservation>()
  #queue: Promise<unknown> = Promise.resolve()
  #timer: NodeJS.Timeout | undefined
  #opened = false

  constructor(init: AllocatorInit) {
    this.#records = init.store.scope<Reservation>(KEY_PREFIX)
    this.share = init.share
    this.#hostFree = init.hostFree ?? (() => ({ cpu: Infinity, memoryBytes: Infinity, diskBytes: Infinity, gpu: Infinity }))
    this.portRange = init.portRange ?? [20000, 20999]
    this.#probePorts = init.probePorts ?? true
    this.#ttlMs = init.reservationTtlMs ?? 30_000
    this.#reclaimEveryMs = init.reclaimEveryMs ?? 1000
    this.#now = init.now ?? Date.now
    this.#onReclaim = init.onReclaim
    if (this.portRange[0] < 1 || this.portRange[1] > 65535 || this.portRange[0] > this.portRange[1]) {
      throw new InvalidResourceRequestError(`bad port range ${this.portRange.join('-')}`)
    }
  }

  /** Loads every reservation from the store (after a restart), then reclaims the expired ones. */
  async open(): Promise<void> {
    await this.#serial(async () => {
      this.#reservations.clear()
      for await (const [id, r] of this.#records.entries()) this.#reservations.set(id, r)
      this.#opened = true
      await this.#reclaimLocked()
    })
  }

  /** Starts the reclaim timer. */
  /** A new share from the owner: reservations from now on are measured against it; nothing running is evicted. */
  setShare(share: Share): void {
    this.share = share
  }

  async start(): Promise<void> {
    if (!this.#opened) await this.open()
    this.#timer = setInterval(() => void this.reclaimExpired().catch(() => undefined), this.#reclaimEveryMs)
    this.#timer.unref()
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
  }

  /**
   * Holds resources until `ttlMs` from now. Throws InsufficientCapacityError (naming the resource, what was
   * requested and what is free) or PortsExhaustedError when it cannot be met.
   */
  async reserve(req: ResourceRequest, opts: { ttlMs?: number; allocationId?: string; id?: string } = {}): Promise<Reservation> {
    const want = normalize(req)
    return this.#serial(async () => {
      await this.#reclaimLocked()
      const free = await this.#freeLocked()
      for (const k of ['cpu', 'memoryBytes', 'diskBytes', 'gpu'] as const) {
        if (want[k] > free[k] + EPS) throw new InsufficientCapacityError(resourceName(k), want[k], round(free[k]))
      }
      const ports = await this.#pickPorts(req.ports ?? 0)
      const now = this.#now()
      const r: Reservation = {
        id: opts.id ?? randomUUID(),
        ...(opts.allocationId !== undefined ? { allocationId: opts.allocationId } : {}),
        resources: want,
        ports,
        state: 'reserved',
        createdAt: now,
        expiresAt: now + (opts.ttlMs ?? this.#ttlMs),
      }
      if (this.#reservations.has(r.id)) throw new InvalidResourceRequestError(`reservation '${r.id}' already exists`)
      await this.#records.put(r.id, r)
      this.#reservations.set(r.id, r)
      return { ...r }
    })
  }

  /** Makes a reservation permanent (until release). Throws ReservationExpiredError / ReservationNotFoundError. */
  commit(id: string, opts: { allocationId?: string } = {}): Promise<Reservation> {
    return this.#serial(async () => {
      const r = this.#reservations.get(id)
      if (!r) throw new ReservationNotFoundError(id)
      if (r.state === 'reserved' && r.expiresAt <= this.#now()) {
        await this.#dropLocked([r])
        throw new ReservationExpiredError(id)
      }
      const next: Reservation = { ...r, state: 'committed', ...(opts.allocationId !== undefined ? { allocationId: opts.allocationId } : {}) }
      await this.#records.put(id, next)
      this.#reservations.set(id, next)
      return { ...next }
    })
  }

  /** Frees a reservation or a committed allocation's resources. Idempotent. */
  release(id: string): Promise<void> {
    return this.#serial(async () => {
      const r = this.#reservations.get(id)
      if (r) await this.#dropLocked([r], false)
    })
  }

  reclaimExpired(): Promise<Reservation[]> {
    return this.#serial(() => this.#reclaimLocked())
  }

  get(id: string): Reservation | undefined {
    const r = this.#reservations.get(id)
    return r ? { ...r } : undefined
  }

  list(): Reservation[] {
    return [...this.#reservations.values()].map((r) => ({ ...r }))
  }

  async capacity(): Promise<Capacity> {
    return this.#serial(async () => {
      await this.#reclaimLocked()
      const used = this.#usedLocked()
      const free = await this.#freeLocked()
      const portsUsed = new Set([...this.#reservations.values()].flatMap((r) => r.ports)).size
      const size = this.portRange[1] - this.portRange[0] + 1
      return {
        share: { cpu: this.share.cpu, memoryBytes: this.share.memoryBytes, diskBytes: this.share.diskBytes, gpu: this.share.gpu },
        used: roundAll(used),
        free: roundAll(free),
        ports: { range: [...this.portRange], used: portsUsed, free: size - portsUsed },
      }
    })
  }

  #usedLocked(): Resources {
    const used = zero()
    for (const r of this.#reservations.values()) {
      used.cpu += r.resources.cpu
      used.memoryBytes += r.resources.memoryBytes
      used.diskBytes += r.resources.diskBytes
      used.gpu += r.resources.gpu
    }
    return used
  }

  async #freeLocked(): Promise<Resources> {
    const used = this.#usedLocked()
    const host = await this.#hostFree()
    return {
      cpu: Math.max(0, Math.min(this.share.cpu - used.cpu, host.cpu)),
      memoryBytes: Math.max(0, Math.min(this.share.memoryBytes - used.memoryBytes, host.memoryBytes)),
      diskBytes: Math.max(0, Math.min(this.share.diskBytes - used.diskBytes, host.diskBytes)),
      gpu: Math.max(0, Math.min(this.share.gpu - used.gpu, host.gpu)),
    }
  }

  async #pickPorts(n: number): Promise<number[]> {
    if (n === 0) return []
    const taken = new Set([...this.#reservations.values()].flatMap((r) => r.ports))
    const out: number[] = []
    // from a random place in the range, wrapping: nodes that share a host (tests, several daemons on one machine)
    // probe the same free ports at the same moment, and the first to start its container would win the port
    const [lo, hi] = this.portRange
    const size = hi - lo + 1
    const start = Math.floor(Math.random() * size)
    for (let k = 0; k < size && out.length < n; k++) {
      const p = lo + ((start + k) % size)
      if (taken.has(p)) continue
      if (this.#probePorts && !(await portBindable(p))) continue
      out.push(p)
    }
    if (out.length < n) throw new PortsExhaustedError(n, out.length)
    return out
  }

  async #reclaimLocked(): Promise<Reservation[]> {
    const now = this.#now()
    const expired = [...this.#reservations.values()].filter((r) => r.state === 'reserved' && r.expiresAt <= now)
    if (expired.length > 0) await this.#dropLocked(expired)
    return expired
  }

  async #dropLocked(rs: Reservation[], expired = true): Promise<void> {
    for (const r of rs) {
      await this.#records.del(r.id)
      this.#reservations.delete(r.id)
    }
    if (expired && rs.length > 0) this.#onReclaim?.(rs.map((r) => ({ ...r })))
  }

  /** Runs `fn` after every earlier call has finished: one change at a time, in order. */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#queue.then(fn, fn)
    this.#queue = p.catch(() => undefined)
    return p
  }
}

function normalize(req: ResourceRequest): Resources {
  const r: Resources = { cpu: req.cpu, memoryBytes: req.memoryBytes, diskBytes: req.diskBytes ?? 0, gpu: req.gpu ?? 0 }
  for (const [k, v] of Object.entries(r)) {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new InvalidResourceRequestError(`${k} must be a finite number >= 0 (got ${String(v)})`)
  }
  if (!Number.isInteger(r.gpu)) throw new InvalidResourceRequestError('gpu must be a whole number')
  // Nothing that runs is free: a CPU request below the floor is refused (it would count as 0), and what is
  // held is counted in whole millicores rounded up, so no request rounds to less than it asked for.
  // (The one exception holds nothing that runs: a reservation of host ports alone, added to an allocation.)
  const ports = req.ports ?? 0
  if (!Number.isInteger(ports) || ports < 0) throw new InvalidResourceRequestError('ports must be a whole number >= 0')
  const portsOnly = ports > 0 && r.cpu === 0 && r.memoryBytes === 0 && r.diskBytes === 0 && r.gpu === 0
  if (r.cpu < MIN_CPU && !portsOnly) throw new InvalidResourceRequestError(`cpu must be at least ${MIN_CPU} (got ${String(r.cpu)})`)
  if (!portsOnly) r.cpu = Math.ceil(r.cpu * 1000 - 1e-9) / 1000
  return r
}

const resourceName = (k: keyof Resources): string => (k === 'memoryBytes' ? 'memory' : k === 'diskBytes' ? 'disk' : k)
const round = (v: number): number => Math.round(v * 1e6) / 1e6
const roundAll = (r: Resources): Resources => ({ cpu: round(r.cpu), memoryBytes: Math.floor(r.memoryBytes), diskBytes: Math.floor(r.diskBytes), gpu: r.gpu })

function portBindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer()
    s.once('error', () => resolve(false))
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)))
  })
}

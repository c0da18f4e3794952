// A CapacityPort over a fixed share, in memory: two-phase reservations that expire unless committed.
// The appliance's allocator (persisted in level) is the real one on a daemon; this one serves unit tests,
// the placement benchmark's simulated nodes, and nodes whose appliance has no allocator.
import { randomUUID } from 'node:crypto'
import { ReservationFailedError } from '../errors.ts'
import { resourceFailures, subtract } from '../placement/constraints.ts'
import type { Capacity } from '../placement/offer.ts'
import type { ResourceRequest } from '../workload/workload.ts'
import type { CapacityPort } from './ports.ts'

interface Hold {
  resources: ResourceRequest
  expiresAt: number | null
}

export class MemoryCapacity implements CapacityPort {
  readonly #share: Capacity
  readonly #holds = new Map<string, Hold>()
  readonly #now: () => number

  constructor(share: Capacity, now: () => number = Date.now) {
    this.#share = { ...share }
    this.#now = now
  }

  free(): Capacity {
    const now = this.#now()
    let f: Capacity = { ...this.#share }
    for (const [id, h] of this.#holds) {
      if (h.expiresAt !== null && h.expiresAt <= now) this.#holds.delete(id)
      else f = subtract(f, h.resources)
    }
    return f
  }

  async reserve(o: { id: string; resources: ResourceRequest; ttlMs: number }): Promise<{ reservationId: string }> {
    const short = resourceFailures(o.resources, this.free())
    if (short.length > 0) throw new ReservationFailedError(`insufficient capacity: ${short.map((s) => s.detail).join(', ')}`, { short })
    const reservationId = `${o.id}:${randomUUID().slice(0, 8)}`
    this.#holds.set(reservationId, { resources: o.resources, expiresAt: this.#now() + o.ttlMs })
    return { reservationId }
  }

  async commit(reservationId: string): Promise<void> {
    const h = this.#holds.get(reservationId)
    if (!h || (h.expiresAt !== null && h.expiresAt <= this.#now())) {
      this.#holds.delete(reservationId)
      throw new ReservationFailedError(`reservation ${reservationId} expired or unknown`)
    }
    h.expiresAt = null
  }

  async release(reservationId: string): Promise<void> {
    this.#holds.delete(reservationId)
  }
}

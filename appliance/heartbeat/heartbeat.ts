// Signed heartbeats: every `intervalMs` the node publishes its capacity (share, used, free), its
// allocations, its load and the facts placement needs (owner, arch, region, labels, runtimes, price policy)
// on the pubsub topic `noir/heartbeat/v1`. The mesh's Broadcast signs each message with the node key (domain
// tag `noir:pubsub:v1`, spec/pubsub.md) and gives it a short lifetime; failure detectors (actors/failure) feed
// on the arrival times, the capacity index (actors/placement/capacity-index.ts) on the bodies. The body
// format is in spec/appliance.md.
import { loadavg } from 'node:os'
import type { Capacity } from '../allocator/allocator.ts'
import type { AllocationState } from '../allocation/allocation-machine.ts'
import type { CapacityReport, PlacementFacts } from '../../actors/placement/capacity-report.ts'

export const HEARTBEAT_TOPIC = 'noir/heartbeat/v1'
export const HEARTBEAT_VERSION = 1

export interface HeartbeatBody {
  v: 1
  /** The publishing node's DID (also the signer of the pubsub message). */
  node: string
  /** Increases by one per heartbeat since the daemon started. */
  seq: number
  /** ms since the epoch when it was built. */
  at: number
  intervalMs: number
  capacity: Capacity
  allocations: {
    total: number
    byState: Partial<Record<AllocationState, number>>
    running: Array<{ id: string; kind: string }>
  }
  load: {
    /** 1-minute load average of the machine. */
    loadavg1: number
    /** CPU time used so far by running allocations (ns), memory in use (bytes). */
    cpuNanos: number
    memoryBytes: number
  }
  /**
   * What placement needs to choose this node without asking it first (the facts its bids state). Optional:
   * a node of an older version sends none, and a receiver that does not know the field ignores it.
   */
  facts?: PlacementFacts
}

export type HeartbeatSource = () => Promise<Omit<HeartbeatBody, 'v' | 'node' | 'seq' | 'at' | 'intervalMs' | 'load'> & { load: Omit<HeartbeatBody['load'], 'loadavg1'> }>

export interface HeartbeatPublisherInit {
  node: string
  intervalMs: number
  /** Publishes one body (the mesh Broadcast signs it). */
  publish(topic: string, body: HeartbeatBody): Promise<unknown>
  source: HeartbeatSource
  /** Called when a publish fails (no peers yet, rate limit...); heartbeats go on. */
  onError?: (err: unknown) => void
}

export class HeartbeatPublisher {
  readonly #init: HeartbeatPublisherInit
  #seq = 0
  #timer: NodeJS.Timeout | undefined
  /** The last beats and whether each was published (the owner's console shows them). */
  readonly #recent: Array<{ seq: number; at: number; published: boolean; error?: string }> = []
  #inFlight: Promise<void> | undefined

  constructor(init: HeartbeatPublisherInit) {
    if (!(init.intervalMs >= 100)) throw new RangeError('heartbeat intervalMs must be >= 100')
    this.#init = init
  }

  start(): void {
    if (this.#timer) return
    void this.beat()
    this.#timer = setInterval(() => void this.beat(), this.#init.intervalMs)
    this.#timer.unref()
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
    await this.#inFlight
  }

  /** Builds the next heartbeat body (also what `beat` publishes). */
  async build(): Promise<HeartbeatBody> {
    const s = await this.#init.source()
    const body: HeartbeatBody = {
      v: HEARTBEAT_VERSION,
      node: this.#init.node,
      seq: ++this.#seq,
      at: Date.now(),
      intervalMs: this.#init.intervalMs,
      capacity: s.capacity,
      allocations: s.allocations,
      load: { loadavg1: Math.round((loadavg()[0] ?? 0) * 100) / 100, ...s.load },
      ...(s.facts ? { facts: s.facts } : {}),
    }
    return body satisfies CapacityReport // what the capacity index reads is part of every body
  }

  /** Publishes one heartbeat now; a beat still in flight is not doubled. */
  beat(): Promise<void> {
    this.#inFlight ??= (async () => {
      try {
        const body = await this.build()
        try {
          await this.#init.publish(HEARTBEAT_TOPIC, body)
          this.#remember({ seq: body.seq, at: body.at, published: true })
        } catch (err) {
          this.#remember({ seq: body.seq, at: body.at, published: false, error: (err as Error).name })
          throw err
        }
      } catch (err) {
        this.#init.onError?.(err)
      } finally {
        this.#inFlight = undefined
      }
    })()
    return this.#inFlight
  }

  /** The last 30 beats, newest last. */
  recent(): Array<{ seq: number; at: number; published: boolean; error?: string }> {
    return [...this.#recent]
  }

  #remember(r: { seq: number; at: number; published: boolean; error?: string }): void {
    this.#recent.push(r)
    if (this.#recent.length > 30) this.#recent.shift()
  }
}

/** Checks the shape of a received heartbeat body; returns it typed or undefined when it is not one. */
export function parseHeartbeat(body: unknown): HeartbeatBody | undefined {
  if (typeof body !== 'object' || body === null) return undefined
  const b = body as Partial<HeartbeatBody>
  if (b.v !== 1 || typeof b.node !== 'string' || typeof b.seq !== 'number' || typeof b.at !== 'number') return undefined
  if (typeof b.capacity !== 'object' || typeof b.allocations !== 'object' || typeof b.load !== 'object') return undefined
  return b as HeartbeatBody
}

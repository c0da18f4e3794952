// The metrics of one node, in a Registry of its own (tests run several daemons in one process): the kernel's
// and the wire's counts, read at scrape time, plus what node services add (metrics-service.ts). Names and
// labels are listed in spec/observability.md.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { ActorSystem, SystemObserver } from '../../core/index.ts'
import { countedFrom } from './counted.ts'
import type { TransportCounts } from './counting-transport.ts'

const SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]

/** An API route as a label: its pattern (`/v1/allocations/:id`), never the path a caller sent. */
export type RouteLabel = string

export class NodeMetrics {
  readonly registry = new Registry()
  /** The scrape URL, once the endpoint listens. */
  url: string | undefined
  readonly #asks: Histogram<'behavior' | 'outcome'>
  readonly #api: Counter<'method' | 'route' | 'status'>
  readonly #apiSeconds: Histogram<'method' | 'route'>
  /** Gauges read at scrape time (kept here: registered, and referenced). */
  readonly #gauges: Gauge[] = []

  constructor(node: string, opts: { processMetrics?: boolean } = {}) {
    this.registry.setDefaultLabels({ node })
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'noir_' })
    this.#asks = new Histogram({
      name: 'noir_ask_duration_seconds', help: 'Asks from this node, from the call to the answer, by behavior and outcome (ok, error, timeout)',
      labelNames: ['behavior', 'outcome'], buckets: SECONDS, registers: [this.registry],
    })
    this.#api = new Counter({ name: 'noir_api_requests_total', help: 'Local API requests by method, route pattern and HTTP status', labelNames: ['method', 'route', 'status'], registers: [this.registry] })
    this.#apiSeconds = new Histogram({ name: 'noir_api_request_duration_seconds', help: 'Local API request time, to the end of the answer (of the stream, for NDJSON)', labelNames: ['method', 'route'], buckets: SECONDS, registers: [this.registry] })
  }

  /** The kernel's observer: ask latencies. */
  readonly observer: SystemObserver = {
    askSettled: (behavior, ms, outcome) => this.#asks.observe({ behavior, outcome }, ms / 1000),
  }

  apiRequest(method: string, route: RouteLabel, status: number, ms: number): void {
    this.#api.inc({ method, route, status: String(status) })
    this.#apiSeconds.observe({ method, route }, ms / 1000)
  }

  /** Envelopes and bytes through the node's transport (counting-transport.ts). */
  bindTransport(counts: TransportCounts): void {
    const r = this.registry
    countedFrom(r, 'noir_messages_sent_total', 'Envelopes (or sealed frames) handed to the transport for other nodes', () => counts.sent)
    countedFrom(r, 'noir_messages_received_total', 'Envelopes (or sealed frames) received from other nodes, before verification', () => counts.received)
    countedFrom(r, 'noir_message_bytes_sent_total', 'Bytes of envelopes handed to the transport', () => counts.sentBytes)
    countedFrom(r, 'noir_message_bytes_received_total', 'Bytes of envelopes received', () => counts.receivedBytes)
    countedFrom(r, 'noir_message_send_failures_total', 'Envelopes the transport could not hand over (unreachable, closed)', () => counts.sendFailures)
  }

  /** Actors and mailbox depths of the node's actor system, read at scrape time. */
  bindSystem(system: ActorSystem): void {
    const stats = (): ReturnType<ActorSystem['stats']> => system.stats()
    this.#gauges.push(new Gauge({ name: 'noir_actors', help: 'Actors running on this node', registers: [this.registry], collect() { this.set(stats().actors) } }))
    this.#gauges.push(new Gauge({ name: 'noir_mailbox_messages', help: 'Messages waiting in all mailboxes of this node', registers: [this.registry], collect() { this.set(stats().queuedMessages) } }))
    this.#gauges.push(new Gauge({ name: 'noir_actors_ready', help: 'Actors with mail waiting for the scheduler', registers: [this.registry], collect() { this.set(stats().readyActors) } }))
    this.#gauges.push(new Gauge({
      name: 'noir_mailbox_max_depth', help: 'The deepest mailbox of this node', registers: [this.registry],
      collect() {
        let max = 0
        for (const path of system.actors()) max = Math.max(max, system.mailboxDepth(path))
        this.set(max)
      },
    }))
  }

  /** The exposition text (Prometheus text format 0.0.4). */
  scrape(): Promise<string> {
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }
}

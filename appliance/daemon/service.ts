// How a node is composed: the daemon starts a list of NodeServices (appliance/daemon/services.ts) in order,
// each with the same NodeContext, and serves every service's API routes on the local API. Stop runs in
// reverse order. Other layers plug in by writing a service and adding one line to services.ts, where what a
// service needs from another is passed to it explicitly.
import type { NodeKey } from '../../identity/keys.ts'
import type { ActorSystem, KvStore } from '../../core/index.ts'
import type { Mesh } from '../../p2p/mesh.ts'
import type { Broadcast } from '../../p2p/pubsub.ts'
import type { Log } from '../../p2p/log.ts'
import type { NodeConfig } from './config.ts'
import type { NodeMetrics } from '../observability/node-metrics.ts'
import type { NodeTracing } from '../observability/tracing.ts'
import type { JsonSchema } from '../../core/schema-check.ts'

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue }

/** A JSON copy of `v`: what a client of the API reads back (undefined fields dropped, dates as text). */
export function jsonCopy(v: unknown): JsonValue {
  return JSON.parse(JSON.stringify(v)) as JsonValue
}

export interface NodeContext {
  /** The node key (its DID is the node's identity on the mesh). Never log it. */
  readonly key: NodeKey
  readonly did: string
  /** NOIR_HOME of this node. */
  readonly home: string
  readonly config: NodeConfig
  /** The mesh: libp2p host (`mesh.host`), transport, peers. */
  readonly mesh: Mesh
  /** Signed broadcast: `publish(topic, body)`, `subscribe(topic, handler)`. */
  readonly pubsub: Broadcast
  /** The node's actor system (remote messaging over the mesh). */
  readonly system: ActorSystem
  /** Structured log, already tagged with the service's name. */
  readonly log: Log
  /** This service's own storage (level sublevel `svc:<name>` under NOIR_HOME/data; JSON values, core/kv-store.ts). */
  readonly store: KvStore
  /** Aborted when the daemon begins to stop. */
  readonly signal: AbortSignal
  /** The node's metrics registry, when config.json `metrics` is set (spec/observability.md); register yours in it. */
  readonly metrics?: NodeMetrics | undefined
  /** The node's tracer, when config.json `tracing` is set: `inSpan(name, attributes, fn)` (spec/observability.md). */
  readonly tracing?: NodeTracing | undefined
}

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE'

export interface ApiRequest {
  /** Values of `:name` segments of the route path. */
  readonly params: Readonly<Record<string, string>>
  readonly query: URLSearchParams
  /** Parsed JSON body (undefined when none was sent). */
  readonly body: JsonValue | undefined
  /** Aborted when the client disconnects (streams should end) or the daemon stops. */
  readonly signal: AbortSignal
}

/** A streaming answer: one JSON document per line (NDJSON, `application/x-ndjson`) until the iterable ends. */
export interface NdjsonResponse {
  readonly ndjson: AsyncIterable<JsonValue>
}

export function ndjson(source: AsyncIterable<JsonValue>): NdjsonResponse {
  return { ndjson: source }
}

export function isNdjson(v: unknown): v is NdjsonResponse {
  return typeof v === 'object' && v !== null && 'ndjson' in v
}

export interface ApiRoute {
  readonly method: HttpMethod
  /** Starts with `/v1/`; `:name` segments are parameters, e.g. `/v1/allocations/:id`. */
  readonly path: string
  /**
   * The JSON Schema the body must satisfy (draft 2020-12, core/schema-check.ts): checked before the handler
   * runs; a body that fails is answered 400 InvalidRequestError naming each field (`data.issues`).
   */
  readonly body?: JsonSchema
  /** Returns the JSON answer (status 200), or an NDJSON stream. Throw a typed error for a failure. */
  handler(req: ApiRequest): Promise<JsonValue | NdjsonResponse> | JsonValue | NdjsonResponse
}

export interface NodeService {
  /** Unique, also names its store sublevel and tags its log lines. */
  readonly name: string
  start(ctx: NodeContext): Promise<void> | void
  stop(): Promise<void> | void
  /** Routes this service adds to the local API (read after start). */
  routes?(): ApiRoute[]
  /** Extra fields for `GET /v1/status` under `services.<name>` (read on each status call). */
  status?(): JsonValue | Promise<JsonValue>
}

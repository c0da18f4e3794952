// The daemon's own API routes (spec/api.md): status, the actor tree, peers, join, ping, actor messaging,
// revocations, broadcast, stop, and the route list. Each group takes exactly what it reads and calls, never
// the daemon.
import type { ApiRoute, JsonValue } from './service.ts'
import { ndjson } from './service.ts'
import { InvalidRequestError } from './errors.ts'
import type { NodeConfig } from './config.ts'
import type { RevocationSync } from './revocations.ts'
import type { ApiServer } from './api-server.ts'
import type { Broadcast, BroadcastMessage } from '../../p2p/pubsub.ts'
import type { Mesh } from '../../p2p/mesh.ts'
import type { PeerTable } from '../../p2p/peers.ts'
import type { AddressAdmission } from '../../p2p/address-admission.ts'
import type { ActorWire } from '../../p2p/actor-wire.ts'
import type { NoirHost } from '../../p2p/host.ts'

type Obj = Record<string, JsonValue>

// The bodies' schemas (checked by the API server before a handler runs: 400 InvalidRequestError by field).
const text = { type: 'string', minLength: 1, maxLength: 4096 } as const
const timeout = (max: number) => ({ type: 'integer', minimum: 1, maximum: max }) as const
const schema = (required: string[], properties: Record<string, unknown>) => ({ type: 'object', additionalProperties: false, required, properties })
const JOIN = schema(['address'], { address: text, timeoutMs: timeout(120_000) })
const PING = schema(['target'], { target: text, timeoutMs: timeout(120_000) })
const SEND = schema(['to', 'behavior'], {
  to: text, behavior: text, body: {}, ask: { type: 'boolean' }, timeoutMs: timeout(600_000),
  proofs: { type: 'array', maxItems: 16, items: { type: 'string', minLength: 1, maxLength: 65_535 } },
})
const REVOKE = schema(['token'], { token: { type: 'string', minLength: 1, maxLength: 65_536 } })
const PUBLISH = schema(['topic'], { topic: text, body: {}, ttlMs: timeout(600_000) })

export const VERSION = '0.1.0'

/** What `GET /v1/status` reads. */
export interface StatusRoutesInput {
  readonly did: string
  readonly startedAt: Date
  readonly config: Pick<NodeConfig, 'relay' | 'mdns'>
  readonly mesh: Pick<Mesh, 'peerId' | 'multiaddrs'> & {
    readonly peers: Pick<PeerTable, 'list'>
    readonly host: Pick<NoirHost, 'getProtocols'>
    readonly broadcast: Pick<Broadcast, 'topics' | 'stats' | 'admission'>
    readonly addresses: Pick<AddressAdmission, 'limits'>
    readonly transport: { readonly wire: Pick<ActorWire, 'violations' | 'stats'> }
  }
  /** `services.<name>` of the status document. */
  serviceStatus(): Promise<Record<string, JsonValue>>
}

export function statusRoutes(d: StatusRoutesInput): ApiRoute[] {
  return [
    {
      method: 'GET',
      path: '/v1/status',
      handler: async (req) => {
        const peers = await d.mesh.peers.list()
        return {
          did: d.did,
          peerId: d.mesh.peerId,
          multiaddrs: d.mesh.multiaddrs(),
          pid: process.pid,
          version: VERSION,
          startedAt: d.startedAt.toISOString(),
          uptimeMs: Date.now() - d.startedAt.getTime(),
          memory: memoryMiB(req.query.get('gc') === '1'),
          peers: peers.length,
          relay: d.config.relay,
          mdns: d.config.mdns,
          protocols: d.mesh.host.getProtocols().sort(),
          topics: d.mesh.broadcast.topics(),
          admission: d.mesh.addresses.limits() as unknown as JsonValue,
          broadcast: { published: d.mesh.broadcast.stats.published, accepted: d.mesh.broadcast.stats.accepted, ...d.mesh.broadcast.admission() } as unknown as JsonValue,
          wire: { streamsReset: d.mesh.transport.wire.violations, ...d.mesh.transport.wire.stats },
          services: await d.serviceStatus(),
        }
      },
    },
  ]
}

/** The peer table the peer routes read and drive. */
export type PeerRoutesInput = Pick<PeerTable, 'list' | 'join' | 'ping'>

export function peerRoutes(peers: PeerRoutesInput): ApiRoute[] {
  return [
    {
      method: 'GET',
      path: '/v1/peers',
      handler: async () => ({ peers: (await peers.list()) as unknown as JsonValue }),
    },
    {
      method: 'POST',
      path: '/v1/peers/join',
      body: JOIN,
      handler: async (req) => {
        const b = req.body as { address: string; timeoutMs?: number }
        return await peers.join(b.address, b.timeoutMs)
      },
    },
    {
      method: 'POST',
      path: '/v1/peers/ping',
      body: PING,
      handler: async (req) => {
        const b = req.body as { target: string; timeoutMs?: number }
        return await peers.ping(b.target, b.timeoutMs)
      },
    },
  ]
}

/** The actor system `/v1/actor/send` sends and asks through (as the node itself). */
export interface ActorRoutesInput {
  readonly did: string
  ask(to: string, behavior: string, body: unknown, options: { timeoutMs?: number; proofs?: string[] }): Promise<unknown>
  send(to: string, behavior: string, body: unknown, options?: { proofs: string[] }): Promise<void>
  /** The live actor tree (core/actor-tree.ts). */
  actorTree(): unknown
}

export function actorRoutes(system: ActorRoutesInput): ApiRoute[] {
  return [
    {
      // the live actor tree from the ActorSystem's inspection source (core/actor-tree.ts)
      method: 'GET',
      path: '/v1/node/actors',
      handler: () => ({ did: system.did, actors: system.actorTree() as JsonValue }),
    },
    {
      method: 'POST',
      path: '/v1/actor/send',
      body: SEND,
      handler: async (req): Promise<JsonValue> => {
        const b = req.body as Obj & { to: string; behavior: string; timeoutMs?: number; proofs?: string[] }
        const { to, behavior, timeoutMs, proofs } = b
        const body = b.body === undefined ? null : b.body
        const o = { ...(timeoutMs === undefined ? {} : { timeoutMs }), ...(proofs ? { proofs: proofs as string[] } : {}) }
        if (b.ask === true) {
          const reply = await system.ask(to, behavior, body, o)
          return { reply: (reply === undefined ? null : reply) as JsonValue }
        }
        // resolves once the envelope is handed to the transport: an unreachable node is an error, not { sent: true }
        await system.send(to, behavior, body, proofs ? { proofs: proofs as string[] } : undefined)
        return { sent: true }
      },
    },
  ]
}

/** The node's revocations: the owner revokes through them and lists them. */
export type RevocationRoutesInput = Pick<RevocationSync, 'revoke' | 'list'>

export function revocationRoutes(revocations: RevocationRoutesInput): ApiRoute[] {
  return [
    {
      // The owner revokes a capability token: signed with the node's key, kept, announced on the mesh.
      method: 'POST',
      path: '/v1/capabilities/revoke',
      body: REVOKE,
      handler: async (req) => {
        const { token } = req.body as { token: string }
        return { revocation: (await revocations.revoke(token)) as unknown as JsonValue }
      },
    },
    { method: 'GET', path: '/v1/revocations', handler: async () => ({ revocations: (await revocations.list()) as unknown as JsonValue }) },
  ]
}

/** The signed broadcast the pubsub routes publish on and subscribe to. */
export type PubsubRoutesInput = Pick<Broadcast, 'publish' | 'subscribe'>

export function pubsubRoutes(broadcast: PubsubRoutesInput): ApiRoute[] {
  return [
    {
      method: 'POST',
      path: '/v1/pubsub/publish',
      body: PUBLISH,
      handler: async (req) => {
        const b = req.body as Obj & { topic: string; ttlMs?: number }
        const { topic, ttlMs } = b
        return await broadcast.publish(topic, b.body === undefined ? null : b.body, ttlMs === undefined ? {} : { ttlMs })
      },
    },
    {
      method: 'GET',
      path: '/v1/pubsub/subscribe',
      handler: (req) => {
        const topic = req.query.get('topic')
        if (!topic) throw new InvalidRequestError("query parameter 'topic' is required")
        const queue: BroadcastMessage[] = []
        let wake: (() => void) | undefined
        const unsubscribe = broadcast.subscribe(topic, (m) => {
          if (queue.length < 10_000) queue.push(m)
          wake?.()
        })
        const signal = req.signal
        async function* stream(): AsyncGenerator<JsonValue> {
          try {
            yield { subscribed: topic }
            while (!signal.aborted) {
              while (queue.length > 0) yield queue.shift() as unknown as JsonValue
              await new Promise<void>((resolve) => {
                wake = resolve
                signal.addEventListener('abort', () => resolve(), { once: true })
              })
              wake = undefined
            }
          } finally {
            unsubscribe()
          }
        }
        return ndjson(stream())
      },
    },
  ]
}

/** What `POST /v1/node/stop` calls. */
export interface NodeRoutesInput {
  stop(): Promise<void>
}

export function nodeRoutes(node: NodeRoutesInput): ApiRoute[] {
  return [
    {
      method: 'POST',
      path: '/v1/node/stop',
      handler: () => {
        setImmediate(() => void node.stop())
        return { stopping: true }
      },
    },
  ]
}

/** The API server whose routes `GET /v1` lists (every route, services' included). */
export type DiscoveryRoutesInput = Pick<ApiServer, 'list'>

export function discoveryRoutes(api: DiscoveryRoutesInput): ApiRoute[] {
  return [{ method: 'GET', path: '/v1', handler: () => ({ routes: api.list() }) }]
}

/**
 * The daemon process's memory, MiB (one decimal): what an operator watches after a flood. `heapUsed` counts
 * garbage not yet collected too; asked with `?gc=1`, a daemon started with `node --expose-gc` runs a full
 * collection first (`afterGc: true`; it pauses the node for a moment), so `heapUsed` is then the live heap
 * (tests compare it before and after a flood).
 */
function memoryMiB(collect: boolean): { rss: number; heapUsed: number; heapTotal: number; external: number; arrayBuffers: number; afterGc: boolean } {
  const gc = collect ? (globalThis as { gc?: () => void }).gc : undefined
  if (typeof gc === 'function') gc()
  const m = process.memoryUsage()
  const mib = (n: number): number => Math.round(n / 104_857.6) / 10
  return { rss: mib(m.rss), heapUsed: mib(m.heapUsed), heapTotal: mib(m.heapTotal), external: mib(m.external), arrayBuffers: mib(m.arrayBuffers), afterGc: typeof gc === 'function' }
}

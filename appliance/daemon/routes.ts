// The daemon's own API routes (spec/api.md): status, the actor tree, peers, join, ping, actor messaging,
// broadcast, stop.
import type { ApiRoute, JsonValue } from './service.ts'
import { ndjson } from './service.ts'
import { InvalidRequestError } from './errors.ts'
import type { Daemon } from './daemon.ts'
import type { BroadcastMessage } from '../../p2p/pubsub.ts'

type Obj = Record<string, JsonValue>

function obj(body: JsonValue | undefined): Obj {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new InvalidRequestError('the request body must be a JSON object')
  return body
}

function str(o: Obj, field: string): string {
  const v = o[field]
  if (typeof v !== 'string' || v.length === 0) throw new InvalidRequestError(`'${field}' must be a non-empty string`)
  return v
}

function optInt(o: Obj, field: string, min: number, max: number): number | undefined {
  const v = o[field]
  if (v === undefined || v === null) return undefined
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw new InvalidRequestError(`'${field}' must be an integer in [${min}, ${max}]`)
  return v
}

export const VERSION = '0.1.0'

export function coreRoutes(d: Daemon): ApiRoute[] {
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
    {
      // the live actor tree from the ActorSystem's inspection source (core/actor-tree.ts)
      method: 'GET',
      path: '/v1/node/actors',
      handler: () => ({ did: d.did, actors: d.system.actorTree() as unknown as JsonValue }),
    },
    {
      method: 'GET',
      path: '/v1/peers',
      handler: async () => ({ peers: (await d.mesh.peers.list()) as unknown as JsonValue }),
    },
    {
      method: 'POST',
      path: '/v1/peers/join',
      handler: async (req) => {
        const b = obj(req.body)
        return await d.mesh.peers.join(str(b, 'address'), optInt(b, 'timeoutMs', 1, 120_000))
      },
    },
    {
      method: 'POST',
      path: '/v1/peers/ping',
      handler: async (req) => {
        const b = obj(req.body)
        return await d.mesh.peers.ping(str(b, 'target'), optInt(b, 'timeoutMs', 1, 120_000))
      },
    },
    {
      method: 'POST',
      path: '/v1/actor/send',
      handler: async (req): Promise<JsonValue> => {
        const b = obj(req.body)
        const to = str(b, 'to')
        const behavior = str(b, 'behavior')
        const body = b.body === undefined ? null : b.body
        const timeoutMs = optInt(b, 'timeoutMs', 1, 600_000)
        const proofs = b.proofs
        if (proofs !== undefined && (!Array.isArray(proofs) || proofs.length > 16 || !proofs.every((p) => typeof p === 'string' && p.length > 0 && p.length < 65_536))) {
          throw new InvalidRequestError("'proofs' must be an array of at most 16 capability tokens")
        }
        const o = { ...(timeoutMs === undefined ? {} : { timeoutMs }), ...(proofs ? { proofs: proofs as string[] } : {}) }
        if (b.ask === true) {
          const reply = await d.system.ask(to, behavior, body, o)
          return { reply: (reply === undefined ? null : reply) as JsonValue }
        }
        // resolves once the envelope is handed to the transport: an unreachable node is an error, not { sent: true }
        await d.system.send(to, behavior, body, proofs ? { proofs: proofs as string[] } : undefined)
        return { sent: true }
      },
    },
    {
      // The owner revokes a capability token: signed with the node's key, kept, announced on the mesh.
      method: 'POST',
      path: '/v1/capabilities/revoke',
      handler: async (req) => {
        const token = str(obj(req.body), 'token')
        return { revocation: (await d.revocations.revoke(token)) as unknown as JsonValue }
      },
    },
    { method: 'GET', path: '/v1/revocations', handler: async () => ({ revocations: (await d.revocations.list()) as unknown as JsonValue }) },
    {
      method: 'POST',
      path: '/v1/pubsub/publish',
      handler: async (req) => {
        const b = obj(req.body)
        const topic = str(b, 'topic')
        const ttlMs = optInt(b, 'ttlMs', 1, 600_000)
        return await d.mesh.broadcast.publish(topic, b.body === undefined ? null : b.body, ttlMs === undefined ? {} : { ttlMs })
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
        const unsubscribe = d.mesh.broadcast.subscribe(topic, (m) => {
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
    {
      method: 'POST',
      path: '/v1/node/stop',
      handler: () => {
        setImmediate(() => void d.stop())
        return { stopping: true }
      },
    },
  ]
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

// Test and bench kit: an ingress and a provider in one process over real libp2p (TCP, Noise, yamux on
// 127.0.0.1), the provider's contracts and readiness given directly (unit tests of the surrounding code).
import { createHost, type NoirHost } from '../../p2p/host.ts'
import { NodeKey } from '../../identity/keys.ts'
import { silentLog, type Log } from '../../p2p/log.ts'
import type { TlsMaterial } from '../tls/certificate.ts'
import type { StoredContract } from '../../actors/contracts/store.ts'
import { IngressForwarder, type Readiness } from './forwarder.ts'
import { IngressServer } from './ingress-server.ts'
import type { RateLimitSpec } from './rate-limit.ts'
import { INGRESS_PROTOCOL } from './protocol.ts'
import type { Backend } from './backends.ts'
import type { PortAccess, PortRateLimit } from '../../actors/workload/workload.ts'
import type { IngressConfig, RouteSpec } from './config.ts'

export interface FakeReplica {
  contractId: string
  /** Loopback port the "workload" listens on. */
  hostPort: number
  ready?: Readiness
  /** Default true. */
  public?: boolean
}

export interface IngressPair {
  ingress: IngressServer
  forwarder: IngressForwarder
  provider: NoirHost
  client: NoirHost
  replicas: FakeReplica[]
  port: number
  /** The provider's address the ingress dials (a circuit address with `relay`). */
  providerAddress: string
  stop(): Promise<void>
}

export const DEPLOYMENT = 'web-00000001'

/**
 * `relay`: the provider listens on no address, only through a relay (a third host), and the ingress listens on
 * none: every byte between them crosses the relay's circuit (a limited connection), as for a provider behind NAT.
 */
export async function ingressPair(replicas: FakeReplica[], o: { tcp?: boolean; routes?: RouteSpec[]; relay?: boolean; rateLimit?: RateLimitSpec; tls?: TlsMaterial; log?: Log; access?: Record<number, PortAccess>; workloadRateLimit?: Record<number, PortRateLimit>; http2?: boolean; upstreamIdleMs?: number; balance?: 'request' } = {}): Promise<IngressPair> {
  const providerKey = NodeKey.generate()
  const consumer = NodeKey.generate()
  const relay = o.relay ? await createHost({ privateKey: NodeKey.generate().toLibp2pPrivateKey(), listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, natTraversal: false, relayServer: true }) : undefined
  await relay?.start()
  const provider = await createHost({ privateKey: providerKey.toLibp2pPrivateKey(), listen: relay ? ['/p2p-circuit'] : ['/ip4/127.0.0.1/tcp/0'], mdns: false, natTraversal: false })
  const client = await createHost({ privateKey: NodeKey.generate().toLibp2pPrivateKey(), listen: relay ? [] : ['/ip4/127.0.0.1/tcp/0'], mdns: false, natTraversal: false })
  await provider.start()
  await client.start()
  if (relay) {
    await provider.dial(relay.getMultiaddrs()[0]!)
    // the provider's only address: a reservation on the relay
    for (let i = 0; i < 200 && !provider.getMultiaddrs().some((m) => m.toString().includes('/p2p-circuit')); i++) await new Promise((r) => setTimeout(r, 50))
  }
  const ports = [...new Set([8080, ...(o.routes ?? []).map((r) => r.port)])]
  const contract = (r: FakeReplica): StoredContract => ({
    contract: { terms: { deploymentId: DEPLOYMENT, consumer: consumer.did } as never, consumerSig: '' },
    side: 'provider', status: 'active', updatedAt: 0,
    workload: { ports: ports.map((port) => ({ port, protocol: 'tcp', ...(r.public === false ? {} : { public: true as const }), ...(o.access?.[port] ? { access: o.access[port] } : {}) })) } as never,
  })
  const forwarder = new IngressForwarder({
    contract: async (id) => {
      const r = replicas.find((x) => x.contractId === id)
      return r ? contract(r) : undefined
    },
    orchestratorOf: async (c) => c,
    hostPort: (id) => replicas.find((x) => x.contractId === id)?.hostPort,
    readiness: (id) => replicas.find((x) => x.contractId === id)?.ready ?? { ready: true },
    log: silentLog,
  })
  await provider.handle(INGRESS_PROTOCOL, (s, c) => forwarder.handle(s, c), { maxInboundStreams: 1024, runOnLimitedConnection: true })
  const route: RouteSpec = { name: 'web', deploymentId: DEPLOYMENT, port: 8080, orchestrators: [] }
  const cfg: IngressConfig = { listen: { host: '127.0.0.1', port: 0 }, domain: 'localhost', routes: o.routes ?? [route], tcp: o.tcp ? [{ listen: { host: '127.0.0.1', port: 0 }, route: 'web' }] : [], ...(o.rateLimit ? { rateLimit: o.rateLimit } : {}), ...(o.http2 === false ? { http2: false } : {}), ...(o.upstreamIdleMs !== undefined ? { upstreamIdleMs: o.upstreamIdleMs } : {}), ...(o.balance ? { balance: o.balance } : {}) }
  const addr = provider.getMultiaddrs().find((m) => !relay || m.toString().includes('/p2p-circuit'))!
  const ingress = new IngressServer(cfg, {
    backends: async (r) => ({
      deploymentId: r.deploymentId, port: r.port, orchestrator: consumer.did,
      replicas: replicas.map((x, index): Backend => ({ index, node: providerKey.did, contractId: x.contractId })),
      ...(o.access?.[r.port] ? { access: o.access[r.port] } : {}),
      ...(o.workloadRateLimit?.[r.port] ? { rateLimit: o.workloadRateLimit[r.port] } : {}),
    }),
    openStream: async () => {
      const conn = client.getConnections(provider.peerId).find((c) => c.status === 'open')
      return conn ? conn.newStream(INGRESS_PROTOCOL, { runOnLimitedConnection: true }) : client.dialProtocol(addr, INGRESS_PROTOCOL, { runOnLimitedConnection: true })
    },
    log: o.log ?? silentLog,
  }, o.tls)
  await ingress.start()
  return {
    ingress, forwarder, provider, client, replicas, port: ingress.address!.port, providerAddress: addr.toString(),
    async stop() {
      await ingress.stop()
      await client.stop()
      await provider.stop()
      await relay?.stop()
    },
  }
}

// What a daemon's config makes of its mesh (p2p/mesh.ts): addresses, discovery, relay, timers and admission.
// The libp2p stack itself (TCP + Noise + yamux and their settings) is p2p/host.ts, the same for every Mesh;
// the daemon adds its key, log, tracer and persistent datastore. Benchmarks that compare a daemon with a bare
// libp2p process make that process's mesh from this too (bench/artifact-peer.ts), so the two differ only in
// being a daemon.
import type { MeshOptions } from '../../p2p/mesh.ts'
import type { NodeConfig } from './config.ts'

export type ConfiguredMeshOptions = Omit<MeshOptions, 'key' | 'log' | 'tracer' | 'datastore'>

/** libp2p's inbound connection rate limit of a daemon (connections/s): a node serves a whole mesh. */
export const DAEMON_INBOUND_CONNECTION_THRESHOLD = 100

export function meshOptionsOf(c: NodeConfig): ConfiguredMeshOptions {
  return {
    listen: c.listen,
    announce: c.announce.length > 0 ? c.announce : undefined,
    bootstrap: c.bootstrap,
    mdns: c.mdns,
    relayServer: c.relay,
    relayLimits: { durationMs: c.relayLimits.durationSeconds * 1000, dataBytes: c.relayLimits.dataBytes },
    pingIntervalMs: c.pingIntervalMs,
    frameTimeoutMs: c.frameTimeoutMs,
    quarantineMs: c.quarantineMs,
    addressAdmission: { allow: c.allowAddresses, maxNewIdentitiesPerMinute: c.maxNewIdentitiesPerMinute },
    inboundConnectionThreshold: DAEMON_INBOUND_CONNECTION_THRESHOLD,
  }
}

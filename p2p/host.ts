// The libp2p host of a NoirLedger node, made from the node's key: its peer id is the node's did:key.
// TCP + Noise + Yamux; identify, ping, kad-dht under the project prefix `/noir`, gossipsub, mDNS (on by
// default), a bootstrap list, circuit-relay-v2 (client always, server when asked), DCUtR and AutoNAT.
import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify, identifyPush, type Identify, type IdentifyPush } from '@libp2p/identify'
import { ping, type Ping } from '@libp2p/ping'
import { kadDHT, passthroughMapper, type KadDHT } from '@libp2p/kad-dht'
import { gossipsub, type GossipSub } from '@libp2p/gossipsub'
import { mdns } from '@libp2p/mdns'
import { circuitRelayServer, circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { dcutr } from '@libp2p/dcutr'
import { autoNAT } from '@libp2p/autonat'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import type { ConnectionGater, PeerDiscovery, PeerId, PrivateKey } from '@libp2p/interface'
import type { Datastore } from 'interface-datastore'
import { InvalidPeerAddressError } from './errors.ts'
import type { PeerQuarantine } from './quarantine.ts'
import { allowedBy, DEFAULT_ALLOW, type AddressAdmission } from './address-admission.ts'
import { pubsubScoreParams, SCORE_THRESHOLDS } from './pubsub-score.ts'
import { noiseCrypto } from './noise-crypto.ts'

/** The kad-dht protocol prefix: our DHT is its own network (`/noir/kad/1.0.0`), not the IPFS one. */
export const DHT_PROTOCOL_PREFIX = '/noir'
/** Default listen address: loopback only, an ephemeral port. Opening a node to the LAN is a choice. */
export const DEFAULT_LISTEN = ['/ip4/127.0.0.1/tcp/0']

// The services map must be a `type` (not an `interface`) for libp2p's generic ServiceMap constraint.
export type NoirServices = {
  identify: Identify
  identifyPush: IdentifyPush
  ping: Ping
  dht: KadDHT
  pubsub: GossipSub
  dcutr: unknown
  autonat: unknown
  relay?: unknown
}

export type NoirHost = Libp2p<NoirServices>

/** Whether the host has an open connection to `peer` (one that is closing does not count). */
export function hasOpenConnection(host: NoirHost, peer: PeerId): boolean {
  return host.getConnections(peer).some((c) => c.status === 'open')
}

/** Per relayed connection: how long it may stay open and how many bytes it may carry (each way). */
export interface RelayLimits {
  durationMs: number
  dataBytes: number
}

/** A relayed connection lasts up to an hour and carries up to 256 MiB; then the relay closes it and the peers dial again. */
export const RELAY_LIMITS: Readonly<RelayLimits> = { durationMs: 3_600_000, dataBytes: 256 * 1024 * 1024 }

export interface HostOptions {
  /** The node key as a libp2p private key (Ed25519): the peer id is the node's did:key. */
  privateKey: PrivateKey
  /** Multiaddrs to listen on. Default: DEFAULT_LISTEN. Add '/p2p-circuit' to be reachable through relays. */
  listen?: string[]
  /** Addresses to announce instead of the listen addresses. */
  announce?: string[]
  /** Peers to dial at start and keep in the routing table. */
  bootstrap?: string[]
  /** mDNS discovery on the LAN. Default true. */
  mdns?: boolean
  /** Act as a circuit-relay-v2 server for other nodes. Default false. */
  relayServer?: boolean
  /**
   * What one relayed connection may carry before the relay closes it (spec/wire.md "Relays"). Default
   * RELAY_LIMITS: fit for services (an ingress's streams to a provider behind NAT), where libp2p's own default
   * (2 minutes, 128 KiB) fits only the hole punching it was made for.
   */
  relayLimits?: RelayLimits
  /** libp2p's per-host inbound connection rate limit (connections/s). Default 5 (libp2p's). */
  inboundConnectionThreshold?: number
  /** Persistent peer store / DHT records. Default: in memory. */
  datastore?: Datastore
  /** Run DCUtR and AutoNAT (hole punching and reachability). Default true. */
  natTraversal?: boolean
  /** Peers refused at the connection gater (inbound after Noise, and dials) while quarantined. */
  quarantine?: PeerQuarantine
  /**
   * Source addresses refused while quarantined, and limited in the new peer ids they bring. Its exempt
   * prefixes (loopback, the operator's allowAddresses) are also exempt from gossipsub's IP-colocation penalty.
   */
  addresses?: AddressAdmission
}

function checkAddrs(what: string, addrs: readonly string[]): string[] {
  for (const a of addrs) {
    try {
      multiaddr(a)
    } catch (err) {
      throw new InvalidPeerAddressError(`${what}: '${a}' is not a multiaddr (${(err as Error).message})`)
    }
  }
  return [...addrs]
}

export const ipOf = (ma: Multiaddr): string | undefined =>
  ma.getComponents().find((c) => c.name === 'ip4' || c.name === 'ip6')?.value

function quarantineGater(q: PeerQuarantine | undefined, a: AddressAdmission | undefined): ConnectionGater {
  return {
    denyDialPeer: (peer) => q?.denies(peer) ?? false,
    // Before any handshake work: a quarantined source address costs nothing more.
    denyInboundConnection: (maConn) => {
      const ip = ipOf(maConn.remoteAddr)
      return ip !== undefined && (a?.deniesAddress(ip) ?? false)
    },
    denyInboundEncryptedConnection: (peer, maConn) => {
      if (q?.denies(peer)) return true
      const ip = ipOf(maConn.remoteAddr)
      return ip !== undefined && (a?.deniesIdentity(ip, peer.toString()) ?? false)
    },
    denyOutboundEncryptedConnection: (peer) => q?.denies(peer) ?? false,
  }
}

/** Creates (does not start) the host. */
export async function createHost(opts: HostOptions): Promise<NoirHost> {
  const listen = checkAddrs('listen', opts.listen ?? DEFAULT_LISTEN)
  // Bootstrap peers are not a discovery module here: p2p/mesh.ts dials them once the host has started.
  // @libp2p/bootstrap dials from a timer started with the services, and on a busy machine its connection
  // could finish identify before kad-dht registered its topology, leaving the DHT routing table empty.
  checkAddrs('bootstrap', opts.bootstrap ?? [])
  const peerDiscovery: Array<(components: never) => PeerDiscovery> = []
  if (opts.mdns ?? true) peerDiscovery.push(mdns({ interval: 10_000 }) as never)
  const nat = opts.natTraversal ?? true
  const addresses = opts.addresses
  const colocationExempt = addresses ? (ip: string) => addresses.exempt(ip) : allowedBy(DEFAULT_ALLOW)

  const services: Record<string, unknown> = {
    identify: identify({ runOnLimitedConnection: true }),
    // tells connected peers when our addresses change (e.g. a new relay reservation), so the DHT serves them
    identifyPush: identifyPush({ runOnLimitedConnection: true }),
    // latency samples (p2p/peers.ts) and user pings may overlap. A ping stream stays open (closing) until the
    // other side ends it too, so while that side is busy (refusing a flood) finished pings linger: at 4 a
    // bystander's pings to a flooded node failed at once ("Too many outbound protocol streams", then "Cannot
    // write to a stream that is closing") for seconds; at 32 all were answered (p2p/test/alone/flood-daemons.test.ts).
    // A ping stream costs its 32 bytes and a yamux stream: 32 per connection is cheap to hold.
    ping: ping({ runOnLimitedConnection: true, maxOutboundStreams: 32, maxInboundStreams: 32 }),
    dht: kadDHT({
      protocol: `${DHT_PROTOCOL_PREFIX}/kad/1.0.0`,
      // Every daemon serves the DHT: our nodes are participants, and libp2p's auto mode would keep
      // nodes on loopback / private LANs in client mode forever.
      clientMode: false,
      // Our DHT is a private network of nodes that may sit on a LAN or on loopback: keep every address.
      peerInfoMapper: passthroughMapper,
    }),
    pubsub: gossipsub({
      // Our own signed envelope inside `data` is what authenticates a broadcast (p2p/pubsub.ts); gossipsub
      // signing would be a second signature per message.
      globalSignaturePolicy: 'StrictNoSign',
      allowPublishToZeroTopicPeers: true,
      emitSelf: false,
      runOnLimitedConnection: true,
      // Peer scoring (p2p/pubsub-score.ts, spec/pubsub.md "Peer scoring"): peers that deliver what our
      // validator rejects, crowd one IP or break gossip promises are graylisted.
      scoreParams: pubsubScoreParams(colocationExempt),
      scoreThresholds: SCORE_THRESHOLDS,
      // No IDONTWANT (gossipsub 1.2): it is sent to every mesh peer for each message received, before the
      // message is validated, one write each. Under a flood that was most of a victim's time (3 of its 4 s of
      // socket writes in a 40k-message flood, measured with --cpu-prof) and silenced its beats for ~2 s; our
      // broadcasts are small (<= 64 KiB, most < 2 KiB), so what IDONTWANT saves is little. spec/pubsub.md.
      idontwantMinDataSize: Number.MAX_SAFE_INTEGER,
      // One RPC, and one message, of a peer at a time: a flood then waits in its own socket (TCP pushes back on
      // the flooder) instead of being decoded all at once, and our validator can hand the rest of a busy turn
      // to the timers (p2p/pubsub.ts validateInTurn)
      awaitRpcHandler: true,
      awaitRpcMessageHandler: true,
    }),
  }
  if (nat) {
    services.dcutr = dcutr()
    services.autonat = autoNAT()
  }
  if (opts.relayServer) {
    const limits = opts.relayLimits ?? RELAY_LIMITS
    services.relay = circuitRelayServer({ reservations: { maxReservations: 64, defaultDurationLimit: limits.durationMs, defaultDataLimit: BigInt(limits.dataBytes) } })
  }

  return createLibp2p({
    privateKey: opts.privateKey,
    start: false,
    addresses: { listen, announce: opts.announce ? checkAddrs('announce', opts.announce) : [] },
    transports: [tcp(), circuitRelayTransport()],
    connectionEncrypters: [noise({ crypto: noiseCrypto })],
    streamMuxers: [yamux()],
    peerDiscovery: peerDiscovery as never,
    connectionManager: {
      inboundConnectionThreshold: opts.inboundConnectionThreshold ?? 5,
    },
    ...(opts.quarantine || opts.addresses ? { connectionGater: quarantineGater(opts.quarantine, opts.addresses) } : {}),
    ...(opts.datastore ? { datastore: opts.datastore } : {}),
    services: services as never,
  }) as Promise<NoirHost>
}

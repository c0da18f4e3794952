// A node's whole presence on the mesh: the libp2p host, the actor wire + core Transport, broadcast,
// and the peer table, started and stopped together.
import type { MessageTracer } from '../core/types.ts'
import type { PrivateKey } from '@libp2p/interface'
import { BootstrapKeeper } from './bootstrap-keeper.ts'
import { createHost, ipOf, type HostOptions, type NoirHost } from './host.ts'
import { AddressAdmission, type AddressAdmissionOptions } from './address-admission.ts'
import { Libp2pTransport } from './libp2p-transport.ts'
import { DEFAULT_QUARANTINE_MS, PeerQuarantine } from './quarantine.ts'
import { Broadcast, FLOOD_HANGUP, type BroadcastSigner } from './pubsub.ts'
import { PeerFloodError } from './errors.ts'
import { PeerTable } from './peers.ts'
import { errorFields, silentLog, type Log } from './log.ts'
import { peerIdFromDid } from '../identity/did-key.ts'
import type { PeerId } from '@libp2p/interface'

/** A NodeKey fits: the host's identity and the broadcast signer are the same key. */
export interface MeshKey extends BroadcastSigner {
  toLibp2pPrivateKey(): PrivateKey
}

export interface MeshOptions extends Omit<HostOptions, 'privateKey'> {
  key: MeshKey
  log?: Log
  /** Largest envelope on the actor wire. Default 1 MiB. */
  maxFrameBytes?: number
  /** A frame must complete within this time once it starts arriving (else its stream is reset). Default 30 s. */
  frameTimeoutMs?: number
  /** How often connected peers are pinged for latency. Default 15 s; 0 turns it off. */
  pingIntervalMs?: number
  /** Longest wait between redials of a bootstrap peer that dropped (the first is after 100 ms). Default 5 s. */
  bootstrapRedialMaxMs?: number
  /** Broadcast rate limit per sender. */
  broadcastRate?: { perSecond: number; burst: number }
  /** Broadcasts carry the active trace and are handled in their publisher's (spec/pubsub.md "Trace"). */
  tracer?: MessageTracer
  /** How long a peer that sent a badly signed envelope is refused connections, ms. Default 60 s; 0 off. */
  quarantineMs?: number
  /** Admission by source address: new peer ids per address per minute, exempt prefixes (p2p/address-admission.ts). */
  addressAdmission?: AddressAdmissionOptions
}

export class Mesh {
  readonly host: NoirHost
  readonly transport: Libp2pTransport
  readonly broadcast: Broadcast
  readonly peers: PeerTable
  readonly did: string
  /** Peers refused for a while after a protocol violation (p2p/quarantine.ts). */
  readonly quarantine: PeerQuarantine
  /** Redials bootstrap peers that dropped, backing off while they keep refusing (p2p/bootstrap-keeper.ts). */
  readonly bootstrap: BootstrapKeeper
  #started = false

  /** Source addresses: quarantined with the peers that broke the protocol, limited in new identities. */
  readonly addresses: AddressAdmission

  private constructor(host: NoirHost, opts: MeshOptions, quarantine: PeerQuarantine, addresses: AddressAdmission) {
    this.host = host
    this.addresses = addresses
    const log = opts.log ?? silentLog
    this.did = opts.key.did
    this.quarantine = quarantine
    const quarantinePeer = (peer: PeerId): void => {
      const ms = opts.quarantineMs ?? DEFAULT_QUARANTINE_MS
      quarantine.add(peer, ms)
      // and where it came from: a fresh peer id from the same address is refused too
      for (const c of host.getConnections(peer)) {
        const ip = ipOf(c.remoteAddr)
        if (ip !== undefined) addresses.quarantine(ip, ms)
      }
    }
    this.transport = new Libp2pTransport({
      host,
      maxFrameBytes: opts.maxFrameBytes,
      frameTimeoutMs: opts.frameTimeoutMs,
      log,
      quarantine: quarantinePeer,
    })
    this.broadcast = new Broadcast({
      host, signer: opts.key, log, rate: opts.broadcastRate, isKnown: connectedDid(host), ...(opts.tracer ? { tracer: opts.tracer } : {}),
      // a neighbour flooding pubsub far over its budget: refused for a while, and its connection closed now
      onFlood: (peer) => {
        quarantinePeer(peer)
        log.warn('peer disconnected: pubsub flood', { peer: peer.toString() })
        // aborted, not closed gracefully: a graceful close keeps reading (and decrypting, and decoding) what the
        // flooder already sent until its streams end, which held a flooded node's beats back for ~0.9 s
        for (const c of host.getConnections(peer)) {
          try {
            c.abort(new PeerFloodError(`peer ${peer.toString()} sent ${FLOOD_HANGUP} pubsub messages over its budget`))
          } catch (err) {
            log.debug('abort failed', { peer: peer.toString(), ...errorFields(err) })
          }
        }
      },
    })
    this.peers = new PeerTable({ host, log, pingIntervalMs: opts.pingIntervalMs })
    this.bootstrap = new BootstrapKeeper({ host, addresses: opts.bootstrap ?? [], log, maxDelayMs: opts.bootstrapRedialMaxMs })
  }

  static async create(opts: MeshOptions): Promise<Mesh> {
    const quarantine = new PeerQuarantine()
    const addresses = new AddressAdmission(opts.addressAdmission)
    const host = await createHost({ ...opts, privateKey: opts.key.toLibp2pPrivateKey(), quarantine, addresses })
    return new Mesh(host, opts, quarantine, addresses)
  }

  get peerId(): string {
    return this.host.peerId.toString()
  }

  /** The addresses other nodes can dial, each ending in /p2p/<peer id>. */
  multiaddrs(): string[] {
    return this.host.getMultiaddrs().map((a) => a.toString())
  }

  async start(): Promise<void> {
    if (this.#started) return
    await this.host.start()
    await this.transport.start()
    await this.broadcast.start()
    this.peers.start()
    // dialled once the host (and so every service's protocol topology, kad-dht's included) has started
    await this.bootstrap.start()
    this.#started = true
  }

  async stop(): Promise<void> {
    if (!this.#started) return
    this.#started = false
    this.bootstrap.stop()
    this.peers.stop()
    await this.broadcast.stop().catch(() => {})
    await this.transport.stop().catch(() => {})
    await this.host.stop()
  }
}

/**
 * A sender is known when the node has an open connection to it: a peer that proved its key in a Noise
 * handshake, costs a connection, and falls under the connection limits. DID -> peer id conversions are
 * remembered for the last 4,096 senders.
 */
function connectedDid(host: NoirHost): (did: string) => boolean {
  const ids = new Map<string, PeerId>()
  return (did) => {
    let id = ids.get(did)
    if (!id) {
      try {
        id = peerIdFromDid(did)
      } catch {
        return false
      }
      if (ids.size >= 4096) ids.delete(ids.keys().next().value!)
      ids.set(did, id)
    }
    return host.getConnections(id).length > 0
  }
}

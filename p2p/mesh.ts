// A node's whole presence on the mesh: the libp2p host, the actor wire + core Transport, broadcast,
// and the peer table, started and stopped together.
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { KEEP_ALIVE } from '@libp2p/interface'
import { createHost, type HostOptions, type NoirHost } from './host.ts'
import { Libp2pTransport } from './libp2p-transport.ts'
import { DEFAULT_QUARANTINE_MS, PeerQuarantine } from './quarantine.ts'
import { Broadcast, type BroadcastSigner } from './pubsub.ts'
import { PeerTable } from './peers.ts'
import { errorFields, silentLog, type Log } from './log.ts'

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
  /** How often the node re-dials its bootstrap peers when it has lost them all. Default 5 s. */
  bootstrapCheckMs?: number
  /** Broadcast rate limit per sender. */
  broadcastRate?: { perSecond: number; burst: number }
  /** How long a peer that sent a badly signed envelope is refused connections, ms. Default 60 s; 0 off. */
  quarantineMs?: number
}

export class Mesh {
  readonly host: NoirHost
  readonly transport: Libp2pTransport
  readonly broadcast: Broadcast
  readonly peers: PeerTable
  readonly did: string
  /** Peers refused for a while after a protocol violation (p2p/quarantine.ts). */
  readonly quarantine: PeerQuarantine
  private readonly log: Log
  private readonly bootstrapList: string[]
  private readonly bootstrapCheckMs: number
  private bootstrapTimer: NodeJS.Timeout | undefined
  private started = false

  private constructor(host: NoirHost, opts: MeshOptions, quarantine: PeerQuarantine) {
    this.host = host
    this.log = opts.log ?? silentLog
    this.did = opts.key.did
    this.quarantine = quarantine
    this.transport = new Libp2pTransport({
      host,
      maxFrameBytes: opts.maxFrameBytes,
      frameTimeoutMs: opts.frameTimeoutMs,
      log: this.log,
      quarantine: (peer) => quarantine.add(peer, opts.quarantineMs ?? DEFAULT_QUARANTINE_MS),
    })
    this.broadcast = new Broadcast({ host, signer: opts.key, log: this.log, rate: opts.broadcastRate })
    this.peers = new PeerTable({ host, log: this.log, pingIntervalMs: opts.pingIntervalMs })
    this.bootstrapList = opts.bootstrap ?? []
    this.bootstrapCheckMs = opts.bootstrapCheckMs ?? 5_000
  }

  static async create(opts: MeshOptions): Promise<Mesh> {
    const quarantine = new PeerQuarantine()
    const host = await createHost({ ...opts, privateKey: opts.key.toLibp2pPrivateKey(), quarantine })
    return new Mesh(host, opts, quarantine)
  }

  get peerId(): string {
    return this.host.peerId.toString()
  }

  /** The addresses other nodes can dial, each ending in /p2p/<peer id>. */
  multiaddrs(): string[] {
    return this.host.getMultiaddrs().map((a) => a.toString())
  }

  async start(): Promise<void> {
    if (this.started) return
    await this.host.start()
    await this.transport.start()
    await this.broadcast.start()
    this.peers.start()
    await this.keepBootstrapPeers()
    await this.dialBootstrapPeers()
    this.started = true
    if (this.bootstrapList.length > 0 && this.bootstrapCheckMs > 0) {
      this.bootstrapTimer = setInterval(() => void this.redialBootstrapIfAlone(), this.bootstrapCheckMs)
      this.bootstrapTimer.unref()
    }
  }

  async stop(): Promise<void> {
    if (!this.started) return
    this.started = false
    if (this.bootstrapTimer) clearInterval(this.bootstrapTimer)
    this.peers.stop()
    await this.broadcast.stop().catch(() => {})
    await this.transport.stop().catch(() => {})
    await this.host.stop()
  }

  /** Tags bootstrap peers keep-alive, so libp2p's reconnect queue redials them when a link drops. */
  private async keepBootstrapPeers(): Promise<void> {
    for (const a of this.bootstrapList) {
      try {
        const ma = multiaddr(a)
        const id = ma.getComponents().findLast((c) => c.name === 'p2p')?.value
        if (!id) continue
        await this.host.peerStore.merge(peerIdFromString(id), {
          multiaddrs: [ma],
          tags: { [`${KEEP_ALIVE}-noir-bootstrap`]: { value: 50 } },
        })
      } catch (err) {
        this.log.warn('bootstrap address ignored', { address: a, ...errorFields(err) })
      }
    }
  }

  /**
   * Dials every bootstrap peer once the host (and so every service's protocol topology, kad-dht's
   * included) has started; a peer that cannot be reached is logged and redialled later by the timer.
   */
  private async dialBootstrapPeers(): Promise<void> {
    await Promise.all(this.bootstrapList.map(async (a) => {
      try {
        await this.host.dial(multiaddr(a), { signal: AbortSignal.timeout(5_000) })
      } catch (err) {
        this.log.warn('bootstrap peer not reached; will retry', { address: a, ...errorFields(err) })
      }
    }))
  }

  /** When no bootstrap peer is connected (a partition healed, a restart), dial them again. */
  private async redialBootstrapIfAlone(): Promise<void> {
    const connected = new Set(this.host.getConnections().map((c) => c.remotePeer.toString()))
    const ids = this.bootstrapList.map((a) => {
      try {
        return multiaddr(a).getComponents().findLast((c) => c.name === 'p2p')?.value
      } catch {
        return undefined
      }
    })
    if (ids.some((id) => id !== undefined && connected.has(id))) return
    for (const a of this.bootstrapList) {
      try {
        await this.host.dial(multiaddr(a), { signal: AbortSignal.timeout(3_000) })
        this.log.info('reconnected to bootstrap peer', { address: a })
      } catch (err) {
        this.log.debug('bootstrap redial failed', { address: a, ...errorFields(err) })
      }
    }
  }
}

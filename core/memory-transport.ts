// A Transport inside one process: nodes on a MemoryNetwork reach each other by DID. Bytes are copied (no
// shared buffers, as on a real wire), delivered asynchronously, in order per (sender, receiver), exactly
// once while both ends run. Sending to a node that is not on the network or not started rejects with
// UnreachableError. Tests use it to join ActorSystems without sockets; it passes the same compliance
// suite as the libp2p transport (core/test/transport-compliance.ts).
import { UnreachableError } from './errors.ts'
import type { InboundEnvelope, InboundHandler, Transport } from './transport.ts'

export class MemoryNetwork {
  readonly #nodes = new Map<string, MemoryTransport>()

  /** A transport for `localDid` on this network (not started yet). */
  transport(localDid: string, options: MemoryTransportOptions = {}): MemoryTransport {
    return new MemoryTransport(this, localDid, options)
  }

  /** @internal */
  attach(t: MemoryTransport): void {
    if (this.#nodes.has(t.localDid) && this.#nodes.get(t.localDid) !== t) throw new Error(`${t.localDid} is already on this network`)
    this.#nodes.set(t.localDid, t)
  }

  /** @internal A stopped transport leaves: every other node hears that peer gone (as a closed connection). */
  detach(t: MemoryTransport): void {
    if (this.#nodes.get(t.localDid) !== t) return
    this.#nodes.delete(t.localDid)
    for (const other of this.#nodes.values()) other.peerLeft(t.localDid)
  }

  /** @internal */
  find(did: string): MemoryTransport | undefined {
    return this.#nodes.get(did)
  }
}

export interface MemoryTransportOptions {
  /**
   * Claim that peers are authenticated, as libp2p's Noise sessions are. Inside one process a node is whoever
   * its code says, so this is for tests of the kernel paths that need it (concurrent signature checks and
   * sealed streams, spec/actors.md); default false.
   */
  authenticatesPeers?: boolean
}

export class MemoryTransport implements Transport {
  readonly localDid: string
  readonly authenticatesPeers: boolean
  readonly #network: MemoryNetwork
  #handler: InboundHandler | undefined
  #gone: ((peerDid: string) => void) | undefined
  #running = false
  readonly #inbox: InboundEnvelope[] = []
  #draining = false

  constructor(network: MemoryNetwork, localDid: string, options: MemoryTransportOptions = {}) {
    this.#network = network
    this.localDid = localDid
    this.authenticatesPeers = options.authenticatesPeers === true
  }

  async start(): Promise<void> {
    this.#network.attach(this)
    this.#running = true
  }

  async stop(): Promise<void> {
    this.#running = false
    this.#network.detach(this)
    this.#inbox.length = 0
  }

  onEnvelope(handler: InboundHandler): void {
    this.#handler = handler
  }

  onPeerGone(handler: (peerDid: string) => void): void {
    this.#gone = handler
  }

  /** @internal The network says `peerDid` left (its transport stopped): told after what it sent was delivered. */
  peerLeft(peerDid: string): void {
    if (!this.#running || this.#gone === undefined) return
    const gone = this.#gone
    setImmediate(() => setImmediate(() => gone(peerDid)))
  }

  async send(toNodeDid: string, bytes: Uint8Array): Promise<void> {
    if (!this.#running) throw new UnreachableError(toNodeDid, 'this transport is not started')
    const target = this.#network.find(toNodeDid)
    if (target === undefined || !target.#running) throw new UnreachableError(toNodeDid, 'not on the memory network')
    target.#accept({ bytes: bytes.slice(), peerDid: this.localDid })
  }

  #accept(inbound: InboundEnvelope): void {
    this.#inbox.push(inbound)
    if (this.#draining) return
    this.#draining = true
    setImmediate(this.#drain)
  }

  // Delivered on a later turn, as bytes from a socket would be; in arrival order.
  #drain = (): void => {
    this.#draining = false
    const batch = this.#inbox.splice(0, this.#inbox.length)
    for (const inbound of batch) {
      if (!this.#running) return
      try {
        this.#handler?.(inbound)
      } catch {
        // a handler's failure must not stop delivery of the rest
      }
    }
  }
}

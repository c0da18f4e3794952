// Keeps a node connected to its bootstrap peers, redialling one that drops after a delay that doubles while
// its connections keep failing or dropping at once (a node that refuses us, e.g. while it quarantines us,
// accepts the TCP connection and Noise, then closes: redialling at once would loop on it), and starts again
// from the shortest delay once a connection has lasted. Replaces libp2p's keep-alive reconnect queue, which
// redials at once after every drop and so spins against such a node (spec/wire.md, "The libp2p host").
import { KEEP_ALIVE, type PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { hasOpenConnection, type NoirHost } from './host.ts'
import { errorFields, silentLog, type Log } from './log.ts'

export interface BootstrapKeeperOptions {
  host: NoirHost
  /** Bootstrap multiaddrs, each ending in /p2p/<peer id> (others are logged and ignored). */
  addresses: readonly string[]
  log?: Log
  /** Wait before the first redial after a drop. Default 100 ms. */
  minDelayMs?: number
  /** Longest wait between redials. Default 5 s. */
  maxDelayMs?: number
  /** A connection that lasted this long was healthy: the next drop is redialled after minDelayMs. Default 10 s. */
  stableMs?: number
  /** Time allowed for one dial. Default 5 s. */
  dialTimeoutMs?: number
}

/** One bootstrap peer: its address, and how its redials are going. */
interface Kept {
  readonly peer: PeerId
  readonly address: Multiaddr
  /** When its current connection opened (undefined while not connected). */
  connectedAt: number | undefined
  /** Redials in a row that failed or whose connection dropped before stableMs. */
  failures: number
  timer: NodeJS.Timeout | undefined
  dialing: boolean
}

/** Peer-store tag that keeps bootstrap peers' connections from being pruned first (not keep-alive). */
export const BOOTSTRAP_TAG = 'noir-bootstrap'
const LEGACY_KEEP_ALIVE_TAG = `${KEEP_ALIVE}-noir-bootstrap`

export class BootstrapKeeper {
  readonly #host: NoirHost
  readonly #log: Log
  readonly #minDelayMs: number
  readonly #maxDelayMs: number
  readonly #stableMs: number
  readonly #dialTimeoutMs: number
  readonly #kept = new Map<string, Kept>()
  #running = false
  /** Dials made by the keeper so far (its own and redials), for status and tests. */
  dials = 0

  constructor(opts: BootstrapKeeperOptions) {
    this.#host = opts.host
    this.#log = opts.log ?? silentLog
    this.#minDelayMs = opts.minDelayMs ?? 100
    this.#maxDelayMs = Math.max(this.#minDelayMs, opts.maxDelayMs ?? 5_000)
    this.#stableMs = opts.stableMs ?? 10_000
    this.#dialTimeoutMs = opts.dialTimeoutMs ?? 5_000
    for (const a of opts.addresses) {
      try {
        const address = multiaddr(a)
        const id = address.getComponents().findLast((c) => c.name === 'p2p')?.value
        if (id === undefined) throw new Error('it does not end with /p2p/<peer id>')
        const peer = peerIdFromString(id)
        if (peer.equals(this.#host.peerId)) continue
        this.#kept.set(peer.toString(), { peer, address, connectedAt: undefined, failures: 0, timer: undefined, dialing: false })
      } catch (err) {
        this.#log.warn('bootstrap address ignored', { address: a, ...errorFields(err) })
      }
    }
  }

  /** Records the bootstrap peers' addresses and dials each once (a failure is logged and redialled later). */
  async start(): Promise<void> {
    if (this.#running) return
    this.#running = true
    this.#host.addEventListener('peer:connect', this.#onConnect)
    this.#host.addEventListener('peer:disconnect', this.#onDisconnect)
    // earlier versions tagged bootstrap peers keep-alive in the (persistent) peer store: libp2p would redial
    // them at once after every drop, so the tag goes, from every peer that has it
    const tagged = await this.#host.peerStore.all({ filters: [(p) => p.tags.has(LEGACY_KEEP_ALIVE_TAG)] }).catch(() => [])
    for (const p of tagged) await this.#host.peerStore.merge(p.id, { tags: { [LEGACY_KEEP_ALIVE_TAG]: undefined } }).catch(() => {})
    for (const k of this.#kept.values()) {
      await this.#host.peerStore.merge(k.peer, { multiaddrs: [k.address], tags: { [BOOTSTRAP_TAG]: { value: 50 } } })
        .catch((err: unknown) => this.#log.debug('bootstrap peer not recorded', { peer: k.peer.toString(), ...errorFields(err) }))
    }
    await Promise.all([...this.#kept.values()].map((k) => this.#dial(k, true)))
  }

  stop(): void {
    if (!this.#running) return
    this.#running = false
    this.#host.removeEventListener('peer:connect', this.#onConnect)
    this.#host.removeEventListener('peer:disconnect', this.#onDisconnect)
    for (const k of this.#kept.values()) {
      clearTimeout(k.timer)
      k.timer = undefined
    }
  }

  /** The peer ids of the bootstrap peers kept (addresses that were ignored are not among them). */
  get peers(): string[] {
    return [...this.#kept.keys()]
  }

  /** The delay before the next redial of a peer with `failures` failed or short-lived tries in a row. */
  delayFor(failures: number): number {
    return Math.min(this.#maxDelayMs, this.#minDelayMs * 2 ** Math.min(failures, 30))
  }

  readonly #onConnect = (e: CustomEvent<PeerId>): void => {
    const k = this.#kept.get(e.detail.toString())
    if (k === undefined) return
    k.connectedAt = Date.now()
    clearTimeout(k.timer)
    k.timer = undefined
  }

  readonly #onDisconnect = (e: CustomEvent<PeerId>): void => {
    const k = this.#kept.get(e.detail.toString())
    if (k === undefined || !this.#running) return
    const lasted = k.connectedAt === undefined ? 0 : Date.now() - k.connectedAt
    k.connectedAt = undefined
    if (lasted >= this.#stableMs) k.failures = 0
    this.#schedule(k)
  }

  #schedule(k: Kept): void {
    if (!this.#running || k.timer !== undefined) return
    const delay = this.delayFor(k.failures)
    k.failures++
    k.timer = setTimeout(() => {
      k.timer = undefined
      void this.#dial(k)
    }, delay)
    k.timer.unref()
  }

  async #dial(k: Kept, first = false): Promise<void> {
    if (!this.#running || k.dialing || hasOpenConnection(this.#host, k.peer)) return
    k.dialing = true
    this.dials++
    try {
      await this.#host.dial(k.address, { signal: AbortSignal.timeout(this.#dialTimeoutMs) })
      this.#log.debug('bootstrap peer connected', { address: k.address.toString() })
    } catch (err) {
      const fields = { address: k.address.toString(), retryInMs: this.delayFor(k.failures), ...errorFields(err) }
      if (first) this.#log.warn('bootstrap peer not reached; will retry', fields)
      else this.#log.debug('bootstrap redial failed; will retry', fields)
      this.#schedule(k)
    } finally {
      k.dialing = false
    }
  }
}

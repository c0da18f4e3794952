// Connected peers, their addresses, and round-trip latency measured with the ping service (refreshed
// periodically in the background, and on demand by `ping`).
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { didOfPeer, isDidKey, peerIdFromDid } from '../identity/did-key.ts'
import { hasOpenConnection, type NoirHost } from './host.ts'
import { InvalidPeerAddressError, UnreachableError } from './errors.ts'
import { connectToPeer } from './routing.ts'
import { errorFields, silentLog, type Log } from './log.ts'

export interface PeerSummary {
  peerId: string
  /** did:key of the peer (null when its key is not Ed25519, i.e. not a NoirLedger node). */
  did: string | null
  /** Remote addresses of the open connections. */
  addresses: string[]
  /** 'direct' when at least one connection is direct, else 'relayed'. */
  connection: 'direct' | 'relayed'
  /** Last measured ping round trip in ms (null until measured). */
  latencyMs: number | null
  /** When latencyMs was measured (ms since epoch), null until then. */
  measuredAt: number | null
  protocols: string[]
}

/** A DID, a peer id, or a multiaddr ending in /p2p/<peer id>. */
export type PeerTarget = { peer: PeerId; addr?: Multiaddr }

export function parsePeerTarget(target: string): PeerTarget {
  const s = target.trim()
  try {
    if (s.startsWith('did:')) {
      if (!isDidKey(s)) throw new Error('only did:key node DIDs are supported')
      return { peer: peerIdFromDid(s) }
    }
    if (s.startsWith('/')) {
      const addr = multiaddr(s)
      const id = addr.getComponents().findLast((c) => c.name === 'p2p')?.value
      if (!id) throw new Error('a multiaddr to dial must end with /p2p/<peer id>')
      return { peer: peerIdFromString(id), addr }
    }
    return { peer: peerIdFromString(s) }
  } catch (err) {
    throw new InvalidPeerAddressError(`'${target}' is not a DID, peer id or /p2p multiaddr: ${(err as Error).message}`)
  }
}

const didOrNull = (peer: PeerId): string | null => didOfPeer(peer) ?? null

export class PeerTable {
  readonly #host: NoirHost
  readonly #log: Log
  readonly #intervalMs: number
  readonly #latency = new Map<string, { ms: number; at: number }>()
  /** Consecutive failed pings per peer; at `maxMissedPings` the connection is closed as dead. */
  readonly #missed = new Map<string, number>()
  readonly #maxMissedPings: number
  readonly #pingTimeoutMs: number
  #timer: NodeJS.Timeout | undefined

  constructor(opts: { host: NoirHost; log?: Log; pingIntervalMs?: number; maxMissedPings?: number }) {
    this.#host = opts.host
    this.#log = opts.log ?? silentLog
    this.#intervalMs = opts.pingIntervalMs ?? 15_000
    this.#maxMissedPings = opts.maxMissedPings ?? 2
    this.#pingTimeoutMs = Math.max(1_000, Math.min(5_000, this.#intervalMs))
  }

  start(): void {
    if (this.#intervalMs > 0 && !this.#timer) {
      this.#timer = setInterval(() => void this.refresh(), this.#intervalMs)
      this.#timer.unref()
    }
    this.#host.addEventListener('peer:connect', this.#onConnect)
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer)
    this.#timer = undefined
    this.#host.removeEventListener('peer:connect', this.#onConnect)
  }

  readonly #onConnect = (evt: CustomEvent<PeerId>): void => {
    const peer = evt.detail
    // first latency sample shortly after connecting (let identify finish first); not if the connection is
    // gone by then: the ping would dial it again (a peer that refuses us would be dialled every 200 ms)
    setTimeout(() => {
      if (hasOpenConnection(this.#host, peer)) void this.#measure(peer).catch(() => {})
    }, 200).unref()
  }

  /**
   * Pings every connected peer once. A peer that misses `maxMissedPings` pings in a row is taken for dead
   * (a cut link leaves TCP connections open for many minutes): its connections are closed, so messages
   * fail fast with UnreachableError and the next send, or the reconnect logic, dials it afresh.
   */
  async refresh(): Promise<void> {
    const peers = new Map(this.#host.getConnections().map((c) => [c.remotePeer.toString(), c.remotePeer]))
    await Promise.all([...peers.values()].map(async (p) => {
      const k = p.toString()
      if (!hasOpenConnection(this.#host, p)) return // closed meanwhile: nothing to sample, and a ping would dial it
      try {
        await this.#measure(p)
        this.#missed.delete(k)
      } catch (err) {
        const n = (this.#missed.get(k) ?? 0) + 1
        this.#missed.set(k, n)
        this.#log.debug('ping failed', { peer: k, missed: n, ...errorFields(err) })
        if (n >= this.#maxMissedPings) {
          this.#missed.delete(k)
          this.#latency.delete(k)
          this.#log.warn('peer missed its pings; closing its connections', { peer: k, missed: n })
          await this.#host.hangUp(p).catch(() => {})
        }
      }
    }))
  }

  /** One ping per peer at a time: a caller arriving while one is in flight shares its result. */
  readonly #inFlight = new Map<string, Promise<number>>()

  #measure(peer: PeerId): Promise<number> {
    const k = peer.toString()
    let p = this.#inFlight.get(k)
    if (!p) {
      p = this.#host.services.ping.ping(peer, { signal: AbortSignal.timeout(this.#pingTimeoutMs), runOnLimitedConnection: true })
        .then((ms) => {
          this.#latency.set(k, { ms, at: Date.now() })
          return ms
        })
        .finally(() => this.#inFlight.delete(k))
      this.#inFlight.set(k, p)
    }
    return p
  }

  /** Pings a DID, peer id or multiaddr (connecting first, through the DHT when needed). */
  async ping(target: string, timeoutMs = 10_000): Promise<{ peerId: string; did: string | null; rttMs: number }> {
    const t = parsePeerTarget(target)
    const signal = AbortSignal.timeout(timeoutMs)
    try {
      if (t.addr) await this.#host.dial(t.addr, { signal })
      else await connectToPeer(this.#host, t.peer, signal, this.#log)
      const rttMs = await this.#measure(t.peer)
      return { peerId: t.peer.toString(), did: didOrNull(t.peer), rttMs }
    } catch (err) {
      if (err instanceof UnreachableError) throw err
      throw new UnreachableError(target, `cannot ping: ${(err as Error).message}`)
    }
  }

  /** Dials a multiaddr (with /p2p/<id>) or a known peer; returns who answered. */
  async join(target: string, timeoutMs = 10_000): Promise<{ peerId: string; did: string | null; address: string }> {
    const t = parsePeerTarget(target)
    const signal = AbortSignal.timeout(timeoutMs)
    try {
      const conn = t.addr ? await this.#host.dial(t.addr, { signal }) : await connectToPeer(this.#host, t.peer, signal, this.#log)
      return { peerId: conn.remotePeer.toString(), did: didOrNull(conn.remotePeer), address: conn.remoteAddr.toString() }
    } catch (err) {
      if (err instanceof UnreachableError) throw err
      throw new UnreachableError(target, `cannot join: ${(err as Error).message}`)
    }
  }

  async list(): Promise<PeerSummary[]> {
    const byPeer = new Map<string, { peer: PeerId; addrs: string[]; direct: boolean }>()
    for (const c of this.#host.getConnections()) {
      if (c.status !== 'open') continue
      const k = c.remotePeer.toString()
      const e = byPeer.get(k) ?? { peer: c.remotePeer, addrs: [], direct: false }
      e.addrs.push(c.remoteAddr.toString())
      if (c.limits == null) e.direct = true
      byPeer.set(k, e)
    }
    const out: PeerSummary[] = []
    for (const [k, e] of byPeer) {
      const lat = this.#latency.get(k)
      const protocols = await this.#host.peerStore.get(e.peer).then((p) => p.protocols, () => [] as string[])
      out.push({
        peerId: k,
        did: didOrNull(e.peer),
        addresses: e.addrs,
        connection: e.direct ? 'direct' : 'relayed',
        latencyMs: lat ? lat.ms : null,
        measuredAt: lat ? lat.at : null,
        protocols: [...protocols].sort(),
      })
    }
    return out.sort((a, b) => a.peerId.localeCompare(b.peerId))
  }
}

// Departure probe: when every connection to a watched peer closes, it tries a plain TCP connect to each
// address the peer listens on. If every one is refused (RST: nothing listens there any more), the peer's
// process is gone, and `onGone` says so at once, long before its silence would. A timeout, an unreachable
// network or an accepted connection is not evidence (a partition, a slow link, a restarted node): nothing
// is said, and the failure detector judges the peer by its silence as before.
//
// Only addresses the peer announced (identify's listen addresses in the peer store) are probed, on TCP only,
// and only for peers the caller watches (the nodes hosting its deployments): a disconnect of any other peer
// costs nothing.
import { connect } from 'node:net'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Log } from './log.ts'

export interface DepartureProbeOptions {
  /** Whether a peer's departure matters (called on each disconnect). */
  watched(peer: PeerId): boolean
  /** Called once per disconnect whose every probe was refused. */
  onGone(peer: PeerId, evidence: string): void
  log: Log
  /** A probe that neither connects nor is refused within this is not evidence. Default 500 ms. */
  probeTimeoutMs?: number
}

export type ProbeResult = 'refused' | 'accepted' | 'no-answer'

/** The host and port of a `/ip4|ip6|dns.../tcp/<port>` address, or undefined for any other transport. */
export function tcpTarget(ma: Multiaddr): { host: string; port: number } | undefined {
  let host: string | undefined
  let port: number | undefined
  for (const c of ma.getComponents()) {
    if ((c.name === 'ip4' || c.name === 'ip6') && host === undefined) host = c.value
    else if (c.name === 'tcp' && port === undefined && c.value !== undefined) port = Number(c.value)
    else if (c.name === 'p2p-circuit' || c.name === 'ws' || c.name === 'wss') return undefined
  }
  if (host === undefined || port === undefined || !Number.isInteger(port) || port <= 0) return undefined
  return { host, port }
}

/** One TCP connect: refused (nothing listens), accepted, or no answer in time (or any other error). */
export function probeTcp(target: { host: string; port: number }, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const socket = connect({ host: target.host, port: target.port })
    const done = (r: ProbeResult): void => {
      clearTimeout(timer)
      socket.destroy()
      resolve(r)
    }
    const timer = setTimeout(() => done('no-answer'), timeoutMs)
    socket.once('connect', () => done('accepted'))
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? 'refused' : 'no-answer'))
  })
}

export class DepartureProbe {
  readonly #host: Libp2p
  readonly #o: DepartureProbeOptions
  readonly #timeoutMs: number
  #running = false
  /** Probes run, and how many found the peer gone (for status and tests). */
  readonly stats = { probes: 0, gone: 0 }

  constructor(host: Libp2p, o: DepartureProbeOptions) {
    this.#host = host
    this.#o = o
    this.#timeoutMs = o.probeTimeoutMs ?? 500
  }

  start(): void {
    if (this.#running) return
    this.#running = true
    this.#host.addEventListener('peer:disconnect', this.#onDisconnect)
  }

  stop(): void {
    this.#running = false
    this.#host.removeEventListener('peer:disconnect', this.#onDisconnect)
  }

  /** Probes every TCP address `peer` announced: 'refused' only if there is one and all refused. */
  async probe(peer: PeerId): Promise<{ result: ProbeResult; targets: string[] }> {
    const addrs = await this.#host.peerStore.get(peer).then((p) => p.addresses.map((a) => a.multiaddr), () => [] as Multiaddr[])
    const targets = [...new Map(addrs.map(tcpTarget).filter((t) => t !== undefined).map((t) => [`${t.host}:${t.port}`, t])).values()]
    if (targets.length === 0) return { result: 'no-answer', targets: [] }
    const results = await Promise.all(targets.map((t) => probeTcp(t, this.#timeoutMs)))
    const result: ProbeResult = results.every((r) => r === 'refused') ? 'refused' : results.includes('accepted') ? 'accepted' : 'no-answer'
    return { result, targets: targets.map((t) => `${t.host}:${t.port}`) }
  }

  readonly #onDisconnect = (e: CustomEvent<PeerId>): void => {
    const peer = e.detail
    if (!this.#running || !this.#o.watched(peer)) return
    this.stats.probes++
    void this.probe(peer).then(({ result, targets }) => {
      // reconnected meanwhile: it is not gone, whatever the probe saw
      if (!this.#running || result !== 'refused' || this.#host.getConnections(peer).length > 0) return
      this.stats.gone++
      this.#o.onGone(peer, `connections closed and ${targets.length} listen address(es) refused`)
    }, (err: Error) => this.#o.log.debug('departure probe failed', { peer: peer.toString(), error: err.name, message: err.message }))
  }
}

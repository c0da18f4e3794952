// DID -> peer id -> connection: an open connection, else the peer store's known addresses, else a DHT
// peer lookup (peerRouting.findPeer), else UnreachableError.
import type { Connection, PeerId } from '@libp2p/interface'
import type { NoirHost } from './host.ts'
import { unreachablePeer } from './errors.ts'
import { errorFields, silentLog, type Log } from './log.ts'

export async function connectToPeer(host: NoirHost, peer: PeerId, signal: AbortSignal, log: Log = silentLog): Promise<Connection> {
  const open = host.getConnections(peer).filter((c) => c.status === 'open')
  const direct = open.find((c) => c.limits == null)
  if (direct) return direct
  if (open[0]) return open[0]
  if (peer.equals(host.peerId)) throw unreachablePeer(peer, 'cannot dial this node itself')
  let firstError: unknown
  const known = await host.peerStore.get(peer).then((p) => p.addresses.length, () => 0)
  if (known > 0) {
    try {
      return await host.dial(peer, { signal })
    } catch (err) {
      firstError = err
      log.debug('dial with known addresses failed; asking the DHT', { peer: peer.toString(), ...errorFields(err) })
    }
  }
  // The DHT: a node that just started (or a busy machine) may still be filling its routing table, so a
  // lookup that finds nothing is retried (0.25, 0.5, 1, then every 2 s) until the caller's deadline.
  let lastError: unknown
  for (let attempt = 0; !signal.aborted; attempt++) {
    try {
      const info = await host.peerRouting.findPeer(peer, { signal })
      if (info.multiaddrs.length === 0) throw new Error('the DHT knows no addresses for it')
      await host.peerStore.merge(peer, { multiaddrs: info.multiaddrs })
      // dial the peer id (not the bare addresses): a relay address from the DHT lacks the /p2p/<peer> suffix
      return await host.dial(peer, { signal })
    } catch (err) {
      lastError = err
      if (signal.aborted) break
      log.debug('DHT lookup failed; retrying', { peer: peer.toString(), attempt, ...errorFields(err) })
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(250 * 2 ** attempt, 2_000))
        signal.addEventListener('abort', () => {
          clearTimeout(timer)
          resolve()
        }, { once: true })
      })
    }
  }
  const dht = (lastError as Error | undefined)?.message ?? 'timed out'
  const why = firstError ? `${(firstError as Error).message}; DHT: ${dht}` : `not in the peer store; DHT: ${dht}`
  throw unreachablePeer(peer, `no route: ${why}`)
}

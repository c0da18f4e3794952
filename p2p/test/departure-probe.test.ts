// The departure probe on real libp2p meshes over TCP on 127.0.0.1: a watched peer that stops (its listener is
// closed, so a connect is refused) is reported gone; a watched peer that only hung up (still listening) is
// not; a peer nobody watches is not probed at all; relay and websocket addresses are never probe targets.
import t, { type Test } from 'tap'
import { multiaddr } from '@multiformats/multiaddr'
import { createServer } from 'node:net'
import { NodeKey } from '../../identity/keys.ts'
import { Mesh } from '../mesh.ts'
import { DepartureProbe, probeTcp, tcpTarget } from '../departure-probe.ts'
import { hasOpenConnection } from '../host.ts'
import { eventually } from '../../scripts/testing/daemons.ts'
import type { PeerId } from '@libp2p/interface'

const base = { mdns: false, natTraversal: false, pingIntervalMs: 0, listen: ['/ip4/127.0.0.1/tcp/0'] }
const quiet = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} }

async function pair(t: Test) {
  const a = await Mesh.create({ key: NodeKey.generate(), ...base })
  await a.start()
  const b = await Mesh.create({ key: NodeKey.generate(), ...base, bootstrap: a.multiaddrs() })
  await b.start()
  t.teardown(async () => {
    await b.stop().catch(() => {})
    await a.stop().catch(() => {})
  })
  await eventually(() => hasOpenConnection(a.host, b.host.peerId) && hasOpenConnection(b.host, a.host.peerId), 5_000, 10)
  // identify has recorded b's listen address in a's peer store
  await eventually(async () => (await a.host.peerStore.get(b.host.peerId)).addresses.length > 0, 5_000, 10)
  return { a, b }
}

t.test('a watched peer that stopped is reported gone', async (t) => {
  const { a, b } = await pair(t)
  const gone: { peer: PeerId; evidence: string }[] = []
  const probe = new DepartureProbe(a.host, { watched: () => true, onGone: (peer, evidence) => gone.push({ peer, evidence }), log: quiet })
  probe.start()
  t.teardown(() => probe.stop())
  const id = b.host.peerId
  await b.stop()
  await eventually(() => gone.length > 0, 5_000, 10)
  t.ok(gone[0]!.peer.equals(id), 'the stopped peer')
  t.match(gone[0]!.evidence, /refused/)
  t.same(probe.stats, { probes: 1, gone: 1 })
})

t.test('a watched peer that only hung up, still listening, is not gone', async (t) => {
  const { a, b } = await pair(t)
  const gone: PeerId[] = []
  const probe = new DepartureProbe(a.host, { watched: () => true, onGone: (peer) => gone.push(peer), log: quiet })
  probe.start()
  t.teardown(() => probe.stop())
  await b.host.hangUp(a.host.peerId)
  await eventually(() => probe.stats.probes > 0, 5_000, 10)
  const r = await probe.probe(b.host.peerId)
  t.equal(r.result, 'accepted', 'its listen address accepts a connection')
  await new Promise((r) => setTimeout(r, 300))
  t.same(gone, [], 'not reported gone')
})

t.test('a peer nobody watches is not probed', async (t) => {
  const { a, b } = await pair(t)
  const probe = new DepartureProbe(a.host, { watched: () => false, onGone: () => t.fail('not watched'), log: quiet })
  probe.start()
  t.teardown(() => probe.stop())
  await b.stop()
  await eventually(() => !hasOpenConnection(a.host, b.host.peerId), 5_000, 10)
  await new Promise((r) => setTimeout(r, 200))
  t.equal(probe.stats.probes, 0)
})

t.test('probe targets: TCP addresses only', async (t) => {
  t.same(tcpTarget(multiaddr('/ip4/127.0.0.1/tcp/4001')), { host: '127.0.0.1', port: 4001 })
  t.same(tcpTarget(multiaddr('/ip6/::1/tcp/4001/p2p/12D3KooWGzBxy3nm6uYvGtXmDpG7P7RMoX1LxVXqLhQx6dnuhGdz')), { host: '::1', port: 4001 })
  t.equal(tcpTarget(multiaddr('/ip4/127.0.0.1/udp/4001/quic-v1')), undefined, 'not TCP')
  t.equal(tcpTarget(multiaddr('/ip4/127.0.0.1/tcp/4001/ws')), undefined, 'websocket: a proxy may answer for it')
  t.equal(tcpTarget(multiaddr('/ip4/10.0.0.1/tcp/4001/p2p/12D3KooWGzBxy3nm6uYvGtXmDpG7P7RMoX1LxVXqLhQx6dnuhGdz/p2p-circuit')), undefined, 'a relayed address: the relay answers, not the peer')
})

t.test('a probe tells refused from accepted', async (t) => {
  const server = createServer((s) => s.destroy())
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  t.equal(await probeTcp({ host: '127.0.0.1', port }, 1000), 'accepted')
  await new Promise<void>((r) => server.close(() => r()))
  t.equal(await probeTcp({ host: '127.0.0.1', port }, 1000), 'refused', 'nothing listens there any more')
})

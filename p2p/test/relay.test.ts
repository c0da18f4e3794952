// Must show: a node that can be reached only through a relay (it listens on no transport address, only
// on /p2p-circuit through a relay daemon) is messaged through it.
import t from 'tap'
import { DaemonCluster, eventually } from '../../scripts/testing/daemons.ts'

const cluster = new DaemonCluster()
t.teardown(() => cluster.cleanup())

t.test('a node reachable only through a relay is messaged through it', async (t) => {
  const relay = await cluster.start({ relay: true })
  const hidden = await cluster.start({ listen: ['/p2p-circuit'], bootstrap: relay.multiaddrs })
  t.same(hidden.multiaddrs.filter((m) => !m.includes('/p2p-circuit')), [], 'the hidden node has no direct address')

  // it gets a reservation on the relay and announces a circuit address
  const circuit = await eventually(async () => {
    const s = await hidden.api.get<{ multiaddrs: string[] }>('/v1/status')
    return s.multiaddrs.find((m) => m.includes(`/p2p/${relay.peerId}/p2p-circuit/p2p/${hidden.peerId}`))
  }, 20_000)
  t.ok(circuit, `announces ${circuit}`)

  const sender = await cluster.start({ bootstrap: relay.multiaddrs })
  const r = await sender.api.post<{ reply: { pong: boolean; did: string } }>('/v1/actor/send', {
    to: `${hidden.did}/node`, behavior: '/noir/node/ping', body: {}, ask: true, timeoutMs: 20_000,
  })
  t.equal(r.reply.did, hidden.did, 'the hidden node\'s actor answered the sender')

  const peers = await sender.api.get<{ peers: Array<{ did: string; connection: string; addresses: string[] }> }>('/v1/peers')
  const toHidden = peers.peers.find((p) => p.did === hidden.did)
  t.ok(toHidden, 'the sender is connected to the hidden node')
  t.equal(toHidden?.connection, 'relayed', 'through the relay')
  t.ok(toHidden?.addresses.every((a) => a.includes('/p2p-circuit')), 'every connection to it is a circuit')

  const echo = await sender.api.post<{ reply: unknown }>('/v1/actor/send', { to: `${hidden.did}/node`, behavior: '/noir/node/echo', body: { via: 'relay' }, ask: true })
  t.same(echo.reply, { via: 'relay' }, 'the long-lived stream over the circuit keeps working')
})

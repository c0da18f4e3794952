// Must show: a node that can be reached only through a relay is messaged through it. The hidden node is a
// daemon that listens on no transport address, only on /p2p-circuit through a relay daemon; the sender is a
// test node that listens on nothing either, so neither can dial the other (and DCUtR has no direct address
// to upgrade to): every byte between them crosses the relay.
import t from 'tap'
import { signEnvelope } from '../../identity/envelope.ts'
import { peerIdFromString } from '@libp2p/peer-id'
import { DaemonCluster, eventually } from '../../scripts/testing/daemons.ts'
import { Probe } from './probe.ts'

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

  const sender = await Probe.start({ listen: [], bootstrap: relay.multiaddrs })
  t.teardown(() => sender.stop())
  t.same(sender.mesh.multiaddrs(), [], 'the sender has no address either')

  // found by DID through the DHT (the relay knows the hidden node's circuit address), dialled via the relay
  const ask = signEnvelope(sender.key, { from: sender.did, to: `${hidden.did}/node`, behavior: '/noir/node/echo', body: { via: 'relay' }, replyTo: sender.did })
  await sender.mesh.transport.send(hidden.did, ask.bytes)
  const answer = await sender.waitFor((e) => e.inReplyTo === ask.envelope.id, 20_000)
  t.same(answer.body, { ok: true, value: { via: 'relay' } }, 'the hidden node\'s actor answered the sender')
  t.equal(answer.from, `${hidden.did}/node`)

  const conns = sender.mesh.host.getConnections(peerIdFromString(hidden.peerId))
  t.ok(conns.length > 0, 'the sender is connected to the hidden node')
  t.ok(conns.every((c) => c.limits != null && c.remoteAddr.toString().includes('/p2p-circuit')), 'only through relay circuits')

  // the hidden node's daemon sees the sender as a relayed peer too
  const peers = await hidden.api.get<{ peers: Array<{ did: string; connection: string }> }>('/v1/peers')
  t.equal(peers.peers.find((p) => p.did === sender.did)?.connection, 'relayed')

  const again = signEnvelope(sender.key, { from: sender.did, to: `${hidden.did}/node`, behavior: '/noir/node/ping', body: {}, replyTo: sender.did })
  await sender.mesh.transport.send(hidden.did, again.bytes)
  const pong = await sender.waitFor((e) => e.inReplyTo === again.envelope.id, 20_000)
  t.equal((pong.body as { value: { did: string } }).value.did, hidden.did, 'the long-lived stream over the circuit keeps working')
})

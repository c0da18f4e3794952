// Must show: a stock js-libp2p node (libp2p packages only, no project code) dials a daemon, pings it, and
// identify lists /noir/actor/1.0.0 among the daemon's protocols.
import t from 'tap'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { DaemonCluster, eventually } from '../../scripts/testing/daemons.ts'

const cluster = new DaemonCluster()
t.teardown(() => cluster.cleanup())

t.test('a stock js-libp2p node dials and pings a daemon; identify lists /noir/actor/1.0.0', async (t) => {
  const d = await cluster.start()
  const stock = await createLibp2p({
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping() },
  })
  t.teardown(() => stock.stop())

  // Listen before dialling: the stock node runs identify on every new connection, and the event carries
  // the daemon's whole protocol list (the peer store alone may first hold only protocols seen on streams,
  // e.g. ping's, before identify's answer arrives).
  const identified = new Promise<string[]>((resolve) => {
    stock.addEventListener('peer:identify', (evt) => {
      if (evt.detail.peerId.toString() === d.peerId) resolve(evt.detail.protocols)
    })
  })
  const conn = await stock.dial(multiaddr(d.multiaddrs[0]!))
  t.equal(conn.remotePeer.toString(), d.peerId, 'the Noise handshake authenticates the daemon\'s peer id (its did:key)')

  const rtt = await stock.services.ping.ping(multiaddr(d.multiaddrs[0]!))
  t.ok(Number.isFinite(rtt) && rtt >= 0, `ping answered in ${rtt} ms`)

  const protocols = await identified
  t.ok(protocols.includes('/noir/actor/1.0.0'), 'identify lists the actor wire protocol')
  t.ok(protocols.includes('/noir/kad/1.0.0'), 'and the project DHT')
  const peer = await stock.peerStore.get(peerIdFromString(d.peerId))
  t.ok(peer.addresses.some((a) => d.multiaddrs.some((m) => m.startsWith(a.multiaddr.toString()))), 'and the daemon\'s listen address')
})

t.test('a peer whose key is not Ed25519 (no did:key) has its actor stream refused', async (t) => {
  const d = await cluster.start()
  const stock = await createLibp2p({
    privateKey: await generateKeyPair('secp256k1'),
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), ping: ping() },
  })
  t.teardown(() => stock.stop())
  const stream = await stock.dialProtocol(multiaddr(d.multiaddrs[0]!), '/noir/actor/1.0.0')
  // the reset can arrive in the same TCP read as the protocol's acceptance, i.e. before dialProtocol's caller
  // runs again: then the stream is already reset and its 'close' event has passed
  const closed = stream.status === 'open'
    ? new Promise<string>((resolve) => stream.addEventListener('close', () => resolve(stream.status), { once: true }))
    : Promise.resolve(stream.status)
  t.equal(await closed, 'reset', 'the daemon resets the stream')
  const line = await eventually(() => d.logLines().find((l) => l.msg === 'actor stream refused'), 10_000)
  t.equal(line.error, 'UnsupportedPeerKeyError', 'and logs why, with a typed error')
  t.equal(await stock.services.ping.ping(multiaddr(d.multiaddrs[0]!)) >= 0, true, 'the daemon still answers that peer\'s ping')
})

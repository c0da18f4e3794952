// Must show: a node redials a bootstrap peer that dropped it; a bootstrap peer that refuses it (it quarantines
// the node: the connection opens, then is closed at once) is redialled with a growing delay, not in a loop; once
// the refusal ends the node connects again. Real libp2p meshes on 127.0.0.1.
import t, { type Test } from 'tap'
import { NodeKey } from '../../identity/keys.ts'
import { Mesh } from '../mesh.ts'
import { BootstrapKeeper } from '../bootstrap-keeper.ts'
import { hasOpenConnection } from '../host.ts'
import { eventually } from '../../scripts/testing/daemons.ts'

const base = { mdns: false, natTraversal: false, pingIntervalMs: 0, listen: ['/ip4/127.0.0.1/tcp/0'] }

async function pair(t: Test, keeper: { bootstrapRedialMaxMs?: number } = {}): Promise<{ a: Mesh; b: Mesh }> {
  const a = await Mesh.create({ key: NodeKey.generate(), ...base })
  await a.start()
  const b = await Mesh.create({ key: NodeKey.generate(), ...base, bootstrap: a.multiaddrs(), ...keeper })
  t.teardown(async () => {
    await b.stop()
    await a.stop()
  })
  await b.start()
  // the dialler's side opens first: wait until the bootstrap peer has the connection too (else it hangs up on nothing)
  await eventually(() => connected(a, b), 5_000, 10)
  return { a, b }
}

const connected = (m: Mesh, peer: Mesh): boolean => hasOpenConnection(m.host, peer.host.peerId)

t.test('a bootstrap peer that hangs up is redialled', async (t) => {
  const { a, b } = await pair(t)
  t.ok(connected(b, a), 'connected at start')
  const dropped = new Promise<void>((resolve) => b.host.addEventListener('peer:disconnect', (e) => e.detail.equals(a.host.peerId) && resolve()))
  const back = new Promise<void>((resolve) => b.host.addEventListener('peer:connect', (e) => e.detail.equals(a.host.peerId) && resolve()))
  await a.host.hangUp(b.host.peerId)
  await dropped
  t.pass('the bootstrap peer hung up')
  await back
  await eventually(() => connected(b, a), 5_000, 20)
  t.pass('the node dialled it again')
  t.ok(b.bootstrap.dials >= 2, `the keeper dialled it (${b.bootstrap.dials} dials)`)
})

t.test('a bootstrap peer that refuses the node is redialled with a growing delay, and rejoined once it accepts', async (t) => {
  const { a, b } = await pair(t, { bootstrapRedialMaxMs: 800 })
  let opened = 0
  b.host.addEventListener('connection:open', (e) => {
    if (e.detail.remotePeer.equals(a.host.peerId)) opened++
  })
  // A refuses B after Noise (B sees each connection open, then closed), as after a protocol violation
  const refuseMs = 3_000
  a.quarantine.add(b.host.peerId, refuseMs)
  const refusedAt = Date.now()
  await a.host.hangUp(b.host.peerId)
  await new Promise((r) => setTimeout(r, refuseMs - 500))
  // delays 100, 200, 400, 800, 800... ms: about 5 tries in 2.5 s; redialling at once would make hundreds
  t.ok(opened >= 2, `the node kept trying (${opened} connections opened and refused)`)
  t.ok(opened <= 8, `with growing delays, not in a loop (${opened} connections in ${Date.now() - refusedAt} ms, keeper dials ${b.bootstrap.dials})`)
  await eventually(() => connected(b, a) && connected(a, b), 10_000, 50)
  t.pass('once the refusal ends, the node is connected again')
})

t.test('delays double from the shortest to the longest', async (t) => {
  const a = await Mesh.create({ key: NodeKey.generate(), ...base })
  t.teardown(() => a.stop())
  const k = new BootstrapKeeper({ host: a.host, addresses: [], minDelayMs: 100, maxDelayMs: 1_000 })
  t.same([0, 1, 2, 3, 4, 5, 60].map((n) => k.delayFor(n)), [100, 200, 400, 800, 1_000, 1_000, 1_000])
})

t.test('an address without /p2p/<peer id> is ignored with a warning; one with it is kept', async (t) => {
  const a = await Mesh.create({ key: NodeKey.generate(), ...base })
  t.teardown(() => a.stop())
  const warned: string[] = []
  const log = { debug: () => {}, info: () => {}, error: () => {}, warn: (msg: string, f?: Record<string, unknown>) => warned.push(`${msg} ${String(f?.address)}`) }
  const other = NodeKey.generate()
  const b = await Mesh.create({ key: other, ...base })
  t.teardown(() => b.stop())
  const k = new BootstrapKeeper({ host: a.host, addresses: ['/ip4/127.0.0.1/tcp/4001', `/ip4/127.0.0.1/tcp/4002/p2p/${b.peerId}`], log })
  t.same(warned, ['bootstrap address ignored /ip4/127.0.0.1/tcp/4001'])
  t.same(k.peers, [b.peerId], 'the address with a peer id is kept')
})

t.test('the keep-alive tag earlier versions kept in the peer store is removed at start (libp2p would loop on it)', async (t) => {
  const a = await Mesh.create({ key: NodeKey.generate(), ...base })
  t.teardown(() => a.stop())
  const old = await Mesh.create({ key: NodeKey.generate(), ...base })
  await a.host.peerStore.merge(old.host.peerId, { tags: { 'keep-alive-noir-bootstrap': { value: 50 } } })
  await a.start()
  const tags = (await a.host.peerStore.get(old.host.peerId)).tags
  t.notOk(tags.has('keep-alive-noir-bootstrap'), 'the tag is gone')
})

import t from 'tap'
import { NodeKey } from '../../../identity/index.ts'
import { ActorSystem, MemorySnapshotStore, CapabilityDeniedError } from '../../../core/index.ts'
import { TestKit } from '../../../core/testkit.ts'
import { counter } from '../counter.ts'

t.test('the counter counts, and a snapshot restored in a second system continues from the same count', async (t) => {
  const snapshots = new MemorySnapshotStore()
  const first = new ActorSystem({ key: NodeKey.generate(), snapshots })
  const second = new ActorSystem({ key: NodeKey.generate(), snapshots })
  t.teardown(async () => { await first.stop(); await second.stop() })

  const c = first.spawn(counter, { name: 'counter', input: { start: 40 } })
  c.tell('/counter/increment')
  t.equal(await c.ask('/counter/increment', { by: 1 }), 42)
  await first.stopActor(c) // persistent: its snapshot is saved on stop

  const moved = await second.restore(counter, { name: 'counter' })
  t.equal(await moved.ask('/counter/get'), 42)
  t.equal(await moved.ask('/counter/increment', { by: 8 }), 50)
})

t.test('another node may read the counter, but needs a capability to change it', async (t) => {
  const kit = new TestKit()
  t.teardown(() => kit.stop())
  const owner = await kit.node()
  const client = await kit.node()
  const address = owner.system.spawn(counter, { name: 'counter' }).address
  t.equal(await client.system.ask(address, '/counter/get'), 0, '/counter/get is public')
  await t.rejects(client.system.ask(address, '/counter/increment', { by: 1 }), CapabilityDeniedError)
  const token = await kit.grant(owner.key, client.system.did, ['/counter/increment'])
  t.equal(await client.system.ask(address, '/counter/increment', { by: 2 }, { proofs: [token] }), 2)
  await t.rejects(client.system.ask(address, '/counter/reset', null, { proofs: [token] }), CapabilityDeniedError, 'reset needs /counter/admin')
})

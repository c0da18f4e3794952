// The SnapshotStore compliance suite (core/snapshot-store.ts). Every store runs it: the memory store and the
// level store (core/test/snapshot-store.test.ts). `make` returns an open, empty store and a cleanup.
import type { Test } from 'tap'
import type { SnapshotStore, StoredSnapshot } from '../snapshot-store.ts'

export type MakeSnapshotStore = () => Promise<[SnapshotStore, () => Promise<void>]>

const record = (snapshot: unknown, definition = 'counter'): StoredSnapshot => ({ v: 1, definition, address: 'did:key:z6Mkexample/counter', snapshot, savedAt: 1_796_000_000_000 })

async function open(t: Test, make: MakeSnapshotStore): Promise<SnapshotStore> {
  const [store, cleanup] = await make()
  t.teardown(cleanup)
  return store
}

export function runSnapshotStoreCompliance(t: Test, make: MakeSnapshotStore): void {
  t.test('a saved record loads back equal, as JSON (a copy: changing the saved object changes nothing stored)', async (t) => {
    const store = await open(t, make)
    const snap = { status: 'active', value: 3, context: { n: 3, list: [1, 'two', { three: null }], text: 'ünïcødé ✓' } }
    const r = record(snap)
    await store.save('counter', r)
    snap.context.n = 99
    const back = await store.load('counter')
    t.same(back, { ...r, snapshot: { ...snap, context: { ...snap.context, n: 3 } } })
    t.not(back, r, 'not the object that was saved')
  })

  t.test('a key never saved loads as undefined; deleting it is no error', async (t) => {
    const store = await open(t, make)
    t.equal(await store.load('nobody'), undefined)
    await store.delete('nobody')
    t.same(await store.keys(), [])
  })

  t.test('saving again replaces; delete removes; keys are the saved paths, sorted, paths with slashes included', async (t) => {
    const store = await open(t, make)
    await store.save('b', record({ v: 1 }))
    await store.save('alloc/7f3a', record({ v: 2 }, 'allocation'))
    await store.save('a', record({ v: 3 }))
    await store.save('b', record({ v: 4 }))
    t.same((await store.load('b'))?.snapshot, { v: 4 }, 'the last save wins')
    t.same(await store.keys(), ['a', 'alloc/7f3a', 'b'])
    await store.delete('a')
    t.same(await store.keys(), ['alloc/7f3a', 'b'])
    t.equal(await store.load('a'), undefined)
    t.equal((await store.load('alloc/7f3a'))?.definition, 'allocation')
  })

  t.test('a large snapshot (1 MiB of context) round-trips intact', async (t) => {
    const store = await open(t, make)
    const big = { items: Array.from({ length: 16_384 }, (_, i) => ({ i, pad: 'x'.repeat(48) })) }
    await store.save('big', record(big))
    t.same((await store.load('big'))?.snapshot, big)
  })

  t.test('saves to many keys at once all land', async (t) => {
    const store = await open(t, make)
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.save(`k/${String(i).padStart(3, '0')}`, record({ i }))))
    const keys = await store.keys()
    t.equal(keys.length, 200)
    t.same((await store.load('k/123'))?.snapshot, { i: 123 })
  })
}

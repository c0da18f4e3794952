// The KvStore compliance suite (core/kv-store.ts). Every store runs it: the memory store and the level store,
// whole and as a sublevel (core/test/kv-store.test.ts). `make` returns an open, empty store and a cleanup.
import type { Test } from 'tap'
import type { KvStore } from '../kv-store.ts'

export type MakeKvStore = () => Promise<[KvStore, () => Promise<void>]>

async function open(t: Test, make: MakeKvStore): Promise<KvStore> {
  const [store, cleanup] = await make()
  t.teardown(cleanup)
  return store
}

async function all<V>(it: AsyncIterable<[string, V]>): Promise<[string, V][]> {
  const out: [string, V][] = []
  for await (const e of it) out.push(e)
  return out
}

export function runKvStoreCompliance(t: Test, make: MakeKvStore): void {
  t.test('a value comes back as a JSON copy of what was put, encoded once', async (t) => {
    const store = await open(t, make)
    const v = { n: 3, list: [1, 'two', { three: null }], text: 'ünïcødé ✓', gone: undefined }
    await store.put('k', v)
    v.n = 99
    t.same(await store.get('k'), { n: 3, list: [1, 'two', { three: null }], text: 'ünïcødé ✓' }, 'undefined fields are dropped, later changes are not stored')
    await store.put('s', 'text')
    t.equal(await store.get('s'), 'text', 'a string stays a string')
    await store.put('n', 5)
    t.equal(await store.get('n'), 5)
  })

  t.test('a missing key is undefined; deleting it is no error; put replaces, del removes', async (t) => {
    const store = await open(t, make)
    t.equal(await store.get('nobody'), undefined)
    await store.del('nobody')
    await store.put('a', 1)
    await store.put('a', 2)
    t.equal(await store.get('a'), 2)
    await store.del('a')
    t.equal(await store.get('a'), undefined)
    t.same(await all(store.entries()), [])
  })

  t.test('entries under a prefix: exactly the keys that start with it, in byte order, whatever follows the prefix', async (t) => {
    const store = await open(t, make)
    for (const k of ['res/b', 're', 'res0', 'res/a', 'res/ÿ', 'res/€', 'res/', 'alloc/x', 'res/a/1']) await store.put(k, k)
    t.same((await all(store.entries('res/'))).map(([k]) => k), ['res/', 'res/a', 'res/a/1', 'res/b', 'res/ÿ', 'res/€'])
    t.same((await all(store.entries())).map(([k]) => k), ['alloc/x', 're', 'res/', 'res/a', 'res/a/1', 'res/b', 'res/ÿ', 'res/€', 'res0'])
    t.same(await all(store.entries('nothing/')), [])
    for (const k of ['e/😀a', 'e/😁', 'e/😀b', 'e/😀']) await store.put(k, k)
    t.same((await all(store.entries('e/😀'))).map(([k]) => k), ['e/😀', 'e/😀a', 'e/😀b'], 'a prefix that ends outside the basic plane too')
  })

  t.test('a scope is the store under its prefix: keys without it, nested scopes add to it', async (t) => {
    const store = await open(t, make)
    const res = store.scope<{ id: string }>('res/')
    await res.put('r1', { id: 'r1' })
    t.same(await store.get('res/r1'), { id: 'r1' }, 'kept under the prefix')
    await store.put('res/r2', { id: 'r2' })
    await store.put('resx', { id: 'not in scope' })
    t.same(await all(res.entries()), [['r1', { id: 'r1' }], ['r2', { id: 'r2' }]])
    t.same(await res.get('r2'), { id: 'r2' })
    const deep = res.scope<number>('d/')
    await deep.put('1', 1)
    t.equal(await store.get('res/d/1'), 1)
    t.same(await all(res.entries('d/')), [['d/1', 1]])
    await res.del('r1')
    t.equal(await store.get('res/r1'), undefined)
  })
}

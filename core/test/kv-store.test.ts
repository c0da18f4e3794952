// Every KvStore passes the same compliance suite; the level store also keeps its entries across a close and
// a reopen, and a sublevel's entries are its own.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { MemoryKvStore } from '../kv-store.ts'
import { LevelKvStore } from '../level-kv-store.ts'
import { runKvStoreCompliance } from './kv-store-compliance.ts'

const tempDir = (): string => mkdtempSync(join(tmpdir(), 'noir-kv-'))

t.test('MemoryKvStore', async (t) => {
  runKvStoreCompliance(t, async () => [new MemoryKvStore(), async () => {}])
})

t.test('LevelKvStore', async (t) => {
  runKvStoreCompliance(t, async () => {
    const dir = tempDir()
    const s = await LevelKvStore.open(dir)
    return [s, async () => {
      await s.close()
      rmSync(dir, { recursive: true, force: true })
    }]
  })

  t.test('entries survive a close and a reopen; sync writes too', async (t) => {
    const dir = tempDir()
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const first = await LevelKvStore.open(dir, { sync: true })
    await first.put('c/1', { n: 7 })
    await first.close()
    const second = await LevelKvStore.open(dir)
    t.teardown(() => second.close())
    t.same(await second.get('c/1'), { n: 7 })
  })
})

t.test('LevelKvStore over a sublevel', async (t) => {
  runKvStoreCompliance(t, async () => {
    const dir = tempDir()
    const db = new Level<string, unknown>(dir, { valueEncoding: 'json' })
    await db.open()
    await db.put('outside', 1)
    const s = new LevelKvStore(db.sublevel<string, unknown>('svc:x', { valueEncoding: 'json' }))
    return [s, async () => {
      await db.close()
      rmSync(dir, { recursive: true, force: true })
    }]
  })

  t.test("a sublevel's entries are its own, under level's sublevel prefix on disk", async (t) => {
    const dir = tempDir()
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const db = new Level<string, unknown>(dir, { valueEncoding: 'json' })
    t.teardown(() => db.close())
    const s = new LevelKvStore(db.sublevel<string, unknown>('svc:x', { valueEncoding: 'json' }))
    await s.put('k', { a: 1 })
    t.same(await db.get('!svc:x!k'), { a: 1 })
    t.same(await new LevelKvStore(db).get('k'), undefined)
  })
})

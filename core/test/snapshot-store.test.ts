// Every SnapshotStore passes the same compliance suite; the level store also keeps its records across a
// close and a reopen (another process restores what this one saved).
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemorySnapshotStore } from '../snapshot-store.ts'
import { LevelSnapshotStore } from '../level-snapshot-store.ts'
import { runSnapshotStoreCompliance } from './snapshot-store-compliance.ts'

t.test('MemorySnapshotStore', async (t) => {
  runSnapshotStoreCompliance(t, async () => {
    const s = new MemorySnapshotStore()
    return [s, () => s.close()]
  })
})

t.test('LevelSnapshotStore', async (t) => {
  runSnapshotStoreCompliance(t, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'noir-snapshots-'))
    const s = new LevelSnapshotStore(dir)
    await s.open()
    return [s, async () => {
      await s.close()
      rmSync(dir, { recursive: true, force: true })
    }]
  })

  t.test('records survive a close and a reopen', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'noir-snapshots-'))
    t.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const first = new LevelSnapshotStore(dir)
    await first.open()
    await first.save('counter', { v: 1, definition: 'counter', address: 'did:key:z6Mkx/counter', snapshot: { n: 7 }, savedAt: 1 })
    await first.close()
    const second = new LevelSnapshotStore(dir)
    await second.open()
    t.teardown(() => second.close())
    t.same((await second.load('counter'))?.snapshot, { n: 7 })
  })
})

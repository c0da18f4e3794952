import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { fileURLToPath } from 'node:url'
import { NodeKey } from '../../identity/index.ts'
import { ActorSystem, LevelSnapshotStore, MemorySnapshotStore, SnapshotMismatchError, SnapshotNotFoundError } from '../index.ts'
import { counter } from '../../examples/counter/counter.ts'
import { recorder, rejection } from './helpers.ts'

const run = promisify(execFile)

t.test('a snapshot saved on request restores in a second system and continues from the same count', async (t) => {
  const store = new MemorySnapshotStore()
  const one = new ActorSystem({ key: NodeKey.generate(), snapshots: store })
  const two = new ActorSystem({ key: NodeKey.generate(), snapshots: store })
  t.teardown(async () => { await one.stop(); await two.stop() })
  const ref = one.spawn(counter, { name: 'counter' })
  for (let i = 0; i < 7; i++) ref.tell('/counter/increment', { by: 1 })
  const record = await one.saveSnapshot(ref)
  t.equal(record.definition, 'example/counter')
  t.equal(record.address, `${one.did}/counter`)
  const moved = await two.restore(counter, { name: 'counter' })
  t.equal(moved.address, `${two.did}/counter`, 'same path, new node')
  t.equal(await moved.ask('/counter/get'), 7)
  t.equal(await moved.ask('/counter/increment', { by: 1 }), 8)
  t.equal(await ref.ask('/counter/get'), 7, 'the original is unaffected')
})

t.test('a persistent actor saves its snapshot when it stops', async (t) => {
  const store = new MemorySnapshotStore()
  const one = new ActorSystem({ key: NodeKey.generate(), snapshots: store })
  t.teardown(() => one.stop())
  const ref = one.spawn(counter, { name: 'counter' })
  await ref.ask('/counter/increment', { by: 3 })
  await one.stopActor(ref)
  t.same(await store.keys(), ['counter'])
  const record = await store.load('counter')
  t.equal((record?.snapshot as { context: { count: number } } | undefined)?.context.count, 3)
})

t.test('restoring needs a stored snapshot of the same definition', async (t) => {
  const store = new MemorySnapshotStore()
  const s = new ActorSystem({ key: NodeKey.generate(), snapshots: store })
  t.teardown(() => s.stop())
  t.type(await rejection(s.restore(counter, { name: 'nothing' })), SnapshotNotFoundError)
  const r = s.spawn(recorder(), { name: 'rec' })
  await s.saveSnapshot(r)
  t.type(await rejection(s.restore(counter, { name: 'other', key: 'rec' })), SnapshotMismatchError)
})

t.test('a snapshot in a level store on disk is restored by another process, which continues counting', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'noir-snapshots-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const store = new LevelSnapshotStore(dir)
  await store.open()
  const s = new ActorSystem({ key: NodeKey.generate(), snapshots: store })
  const ref = s.spawn(counter, { name: 'counter' })
  await ref.ask('/counter/increment', { by: 5 })
  await s.stop()
  await store.close()

  const child = fileURLToPath(new URL('./restore-in-child.ts', import.meta.url))
  const { stdout } = await run(process.execPath, [child, dir], { timeout: 60_000 })
  const out = JSON.parse(stdout) as { before: number; after: number; pid: number }
  t.not(out.pid, process.pid, 'restored in another process')
  t.equal(out.before, 5)
  t.equal(out.after, 15)

  const again = new LevelSnapshotStore(dir)
  await again.open()
  t.teardown(() => again.close())
  const s2 = new ActorSystem({ key: NodeKey.generate(), snapshots: again })
  t.teardown(() => s2.stop())
  t.equal(await (await s2.restore(counter, { name: 'counter' })).ask('/counter/get'), 15, 'and its stop saved the new count to disk')
})

t.test('a snapshot that is not plain JSON is refused with SnapshotNotSavedError', async (t) => {
  const { setup, assign } = await import('xstate')
  const { defineActor, SnapshotNotSavedError } = await import('../index.ts')
  const machine = setup({ types: { context: {} as { self: unknown }, events: {} as { type: 'loop' } } }).createMachine({
    id: 'loopy',
    context: { self: null },
    on: { loop: { actions: assign({ self: ({ context }) => { const o: Record<string, unknown> = { context }; o.o = o; return o } }) } },
  })
  const def = defineActor(machine).with({ name: 'test/loopy', behaviors: { '/loop': { public: true, event: () => ({ type: 'loop' }) } } })
  const s = new ActorSystem({ key: NodeKey.generate(), snapshots: new MemorySnapshotStore() })
  t.teardown(() => s.stop())
  const ref = s.spawn(def, { name: 'loopy' })
  await s.saveSnapshot(ref)
  ref.tell('/loop')
  t.type(await rejection(s.saveSnapshot(ref)), SnapshotNotSavedError)
})

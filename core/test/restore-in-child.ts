// Run by snapshots.test.ts in a separate process: restores the counter from a level store on disk, counts
// on, prints the count it saw and the count after, and stops (which saves the snapshot again).
import { NodeKey } from '../../identity/index.ts'
import { ActorSystem, LevelSnapshotStore } from '../index.ts'
import { counter } from '../../examples/counter/counter.ts'

const dir = process.argv[2]
if (!dir) throw new Error('usage: restore-in-child.ts <level dir>')
const store = new LevelSnapshotStore(dir)
await store.open()
const system = new ActorSystem({ key: NodeKey.generate(), snapshots: store })
const ref = await system.restore(counter, { name: 'counter' })
const before = await ref.ask<number>('/counter/get')
const after = await ref.ask<number>('/counter/increment', { by: 10 })
await system.stop()
await store.close()
process.stdout.write(JSON.stringify({ before, after, pid: process.pid }))

// Snapshots on disk in a level database (one record per actor path, JSON values, each write synced).
// Survives the process, so an actor stopped in one process is restored in another.
import { KvSnapshotStore } from './snapshot-store.ts'
import { LevelKvStore } from './level-kv-store.ts'

export class LevelSnapshotStore extends KvSnapshotStore {
  readonly #kv: LevelKvStore

  /** The database in `location`, a directory (created if needed; opened by `open` or the first call). */
  constructor(location: string) {
    const kv = new LevelKvStore(location, { sync: true })
    super(kv)
    this.#kv = kv
  }

  async open(): Promise<void> {
    await this.#kv.open()
  }

  override async close(): Promise<void> {
    await this.#kv.close()
  }
}

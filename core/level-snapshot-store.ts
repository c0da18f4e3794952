// Snapshots on disk in a level database (one record per actor path, JSON values). Survives the process,
// so an actor stopped in one process is restored in another.
import { Level } from 'level'
import type { SnapshotStore, StoredSnapshot } from './snapshot-store.ts'

export class LevelSnapshotStore implements SnapshotStore {
  readonly #db: Level<string, StoredSnapshot>

  /** Opens (creating if needed) the database in `location`, a directory. */
  constructor(location: string) {
    this.#db = new Level<string, StoredSnapshot>(location, { valueEncoding: 'json' })
  }

  async open(): Promise<void> {
    await this.#db.open()
  }

  async save(key: string, record: StoredSnapshot): Promise<void> {
    await this.#db.put(key, record, { sync: true })
  }

  async load(key: string): Promise<StoredSnapshot | undefined> {
    return (await this.#db.get(key)) ?? undefined
  }

  async delete(key: string): Promise<void> {
    await this.#db.del(key)
  }

  async keys(): Promise<string[]> {
    return await this.#db.keys().all()
  }

  async close(): Promise<void> {
    await this.#db.close()
  }
}

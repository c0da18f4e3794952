// Where actor snapshots live between runs (and between nodes, for migration). A snapshot is XState's
// persisted snapshot (`actor.getPersistedSnapshot()`), a plain JSON value, kept with the definition name
// so it is restored into the same kind of actor. Keys are actor paths (`counter`, `alloc/7f3a`), not full
// addresses, so another node can restore the actor under its own DID.
import { MemoryKvStore, type KvStore } from './kv-store.ts'

export interface StoredSnapshot {
  /** Record format version. */
  v: 1
  /** The ActorDefinition name the snapshot belongs to. */
  definition: string
  /** The address the snapshot was taken at. */
  address: string
  /** XState's persisted snapshot, as JSON. */
  snapshot: unknown
  /** Epoch ms when saved. */
  savedAt: number
}

export interface SnapshotStore {
  save(key: string, record: StoredSnapshot): Promise<void>
  /** The record, or undefined when none is stored. */
  load(key: string): Promise<StoredSnapshot | undefined>
  delete(key: string): Promise<void>
  keys(): Promise<string[]>
  close(): Promise<void>
}

/** Round-trips through JSON: what is stored is exactly what a disk store would give back. */
export function toJsonValue<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T
}

/** Snapshots as entries of a KvStore (core/kv-store.ts), one per actor path. */
export class KvSnapshotStore implements SnapshotStore {
  readonly #records: KvStore<StoredSnapshot>

  constructor(kv: KvStore) {
    this.#records = kv.scope<StoredSnapshot>('')
  }

  async save(key: string, record: StoredSnapshot): Promise<void> {
    await this.#records.put(key, record)
  }

  async load(key: string): Promise<StoredSnapshot | undefined> {
    return await this.#records.get(key)
  }

  async delete(key: string): Promise<void> {
    await this.#records.del(key)
  }

  async keys(): Promise<string[]> {
    const out: string[] = []
    for await (const [k] of this.#records.entries()) out.push(k)
    return out
  }

  /** The KvStore's owner closes it. */
  async close(): Promise<void> {}
}

/** Keeps snapshots in memory (tests, single-process use). Values are JSON copies. */
export class MemorySnapshotStore extends KvSnapshotStore {
  constructor() {
    super(new MemoryKvStore())
  }
}

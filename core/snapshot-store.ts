// Where actor snapshots live between runs (and between nodes, for migration). A snapshot is XState's
// persisted snapshot (`actor.getPersistedSnapshot()`), a plain JSON value, kept with the definition name
// so it is restored into the same kind of actor. Keys are actor paths (`counter`, `alloc/7f3a`), not full
// addresses, so another node can restore the actor under its own DID.

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

/** Keeps snapshots in memory (tests, single-process use). Values are JSON copies. */
export class MemorySnapshotStore implements SnapshotStore {
  readonly #records = new Map<string, string>()

  async save(key: string, record: StoredSnapshot): Promise<void> {
    this.#records.set(key, JSON.stringify(record))
  }

  async load(key: string): Promise<StoredSnapshot | undefined> {
    const text = this.#records.get(key)
    return text === undefined ? undefined : (JSON.parse(text) as StoredSnapshot)
  }

  async delete(key: string): Promise<void> {
    this.#records.delete(key)
  }

  async keys(): Promise<string[]> {
    return [...this.#records.keys()].sort()
  }

  async close(): Promise<void> {}
}

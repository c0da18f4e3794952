// The KvStore (core/kv-store.ts) on level, on disk: the one place the code base reads and writes level for
// its records. A store is a whole database in a folder, or a sublevel of one (the daemon gives each node
// service the sublevel `svc:<name>` of NOIR_HOME/data). Values use level's JSON encoding: encoded once.
import { Level } from 'level'
import type { AbstractDelOptions, AbstractLevel, AbstractPutOptions } from 'abstract-level'
import { ScopedKvStore, type KvStore } from './kv-store.ts'

/** A level database or sublevel with string keys (values JSON-encoded by level). */
export type LevelDb<V> = AbstractLevel<string | Buffer | Uint8Array, string, V>

export interface LevelKvStoreOptions {
  /** Flush every write to disk before it resolves (snapshots want it). Default false. */
  sync?: boolean
}

export class LevelKvStore<V = unknown> implements KvStore<V> {
  readonly #db: LevelDb<V>
  /** Write options; `sync` is classic-level's (a sublevel hands it to its database). */
  readonly #write: AbstractPutOptions<string, V> & AbstractDelOptions<string> & { sync?: boolean }

  /** Over an open database or sublevel, or a database in the folder `location` (opened on first use). */
  constructor(db: string | LevelDb<V>, o: LevelKvStoreOptions = {}) {
    this.#db = typeof db === 'string' ? new Level<string, V>(db, { valueEncoding: 'json' }) : db
    this.#write = o.sync ? { sync: true } : {}
  }

  /** A database in the folder `location` (created when missing), opened. */
  static async open<V = unknown>(location: string, o: LevelKvStoreOptions = {}): Promise<LevelKvStore<V>> {
    const s = new LevelKvStore<V>(location, o)
    await s.open()
    return s
  }

  async open(): Promise<void> {
    await this.#db.open()
  }

  async close(): Promise<void> {
    await this.#db.close()
  }

  async get(key: string): Promise<V | undefined> {
    return (await this.#db.get(key)) ?? undefined
  }

  async put(key: string, value: V): Promise<void> {
    await this.#db.put(key, value, this.#write)
  }

  async del(key: string): Promise<void> {
    await this.#db.del(key, this.#write)
  }

  async *entries(prefix = ''): AsyncIterable<[string, V]> {
    for await (const [k, v] of this.#db.iterator(prefixRange(prefix))) {
      if (!k.startsWith(prefix)) break
      yield [k, v]
    }
  }

  scope<W>(prefix: string): KvStore<W> {
    return new ScopedKvStore<W>(this, prefix)
  }
}

/**
 * Level's range of the keys that start with `prefix`: from the prefix to the prefix with its last character
 * one higher. A last character past the basic plane's ordinary ones gets no upper bound (the caller stops
 * at the first key without the prefix).
 */
function prefixRange(prefix: string): { gte?: string; lt?: string } {
  if (prefix === '') return {}
  const last = prefix.charCodeAt(prefix.length - 1)
  return last >= 0xd800 ? { gte: prefix } : { gte: prefix, lt: prefix.slice(0, -1) + String.fromCharCode(last + 1) }
}

// The one key-value store contract of the code base: everything a node keeps (contracts, deployments,
// snapshots, revocations, reservations, allocations, the enrollment benchmark) goes through it, over the one
// level implementation (core/level-kv-store.ts) or the memory one below (tests, single-process use).
//
// Keys are strings, iterated in the order level keeps them (their UTF-8 bytes). Values are JSON, never
// bytes: every record kept is a JSON document, encoded exactly once by the store (`JSON.stringify` on put,
// `JSON.parse` on get), so what a user gets back is a JSON copy of what it put (undefined fields dropped).
// A user keeps its records under its own key prefix and reads them through a typed `scope`: the one place
// where stored JSON is taken to be the type that was put there.

export interface KvStore<V = unknown> {
  /** The value under `key`, or undefined when there is none. */
  get(key: string): Promise<V | undefined>
  /** Stores a JSON copy of `value` under `key`. */
  put(key: string, value: V): Promise<void>
  /** Removes `key`; removing a missing key is no error. */
  del(key: string): Promise<void>
  /** Every entry whose key starts with `prefix` (default: every entry), in key order, keys whole. */
  entries(prefix?: string): AsyncIterable<[key: string, value: V]>
  /** The entries under `prefix` as a store of their own: keys without the prefix, values of type `W`. */
  scope<W>(prefix: string): KvStore<W>
}

/**
 * The value of a record written, before 2026-12, as JSON text inside the store's JSON (encoded twice):
 * such a record is a string where an object is expected. Readers of those records pass what they read
 * through this, so records on disk from before still load; new writes are encoded once.
 */
export function decodedTwice<T extends object>(v: T | string | undefined): T | undefined {
  return typeof v === 'string' ? (JSON.parse(v) as T) : v
}

/** A view of `parent` under `prefix` (the implementation of every `scope`). */
export class ScopedKvStore<W> implements KvStore<W> {
  readonly #parent: KvStore
  readonly #prefix: string

  constructor(parent: KvStore, prefix: string) {
    this.#parent = parent
    this.#prefix = prefix
  }

  get(key: string): Promise<W | undefined> {
    return this.#parent.get(this.#prefix + key) as Promise<W | undefined>
  }

  put(key: string, value: W): Promise<void> {
    return this.#parent.put(this.#prefix + key, value)
  }

  del(key: string): Promise<void> {
    return this.#parent.del(this.#prefix + key)
  }

  async *entries(prefix = ''): AsyncIterable<[string, W]> {
    for await (const [k, v] of this.#parent.entries(this.#prefix + prefix)) yield [k.slice(this.#prefix.length), v as W]
  }

  scope<X>(prefix: string): KvStore<X> {
    return new ScopedKvStore<X>(this.#parent, this.#prefix + prefix)
  }
}

/** Level's order of string keys: by their UTF-8 bytes. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

/** Keeps entries in memory as JSON text, so it gives back exactly what a disk store would. */
export class MemoryKvStore<V = unknown> implements KvStore<V> {
  readonly #entries = new Map<string, string>()

  async get(key: string): Promise<V | undefined> {
    const text = this.#entries.get(key)
    return text === undefined ? undefined : (JSON.parse(text) as V)
  }

  async put(key: string, value: V): Promise<void> {
    this.#entries.set(key, JSON.stringify(value))
  }

  async del(key: string): Promise<void> {
    this.#entries.delete(key)
  }

  async *entries(prefix = ''): AsyncIterable<[string, V]> {
    const keys = [...this.#entries.keys()].filter((k) => k.startsWith(prefix)).sort(compareKeys)
    for (const k of keys) {
      const text = this.#entries.get(k)
      if (text !== undefined) yield [k, JSON.parse(text) as V]
    }
  }

  scope<W>(prefix: string): KvStore<W> {
    return new ScopedKvStore<W>(this, prefix)
  }
}

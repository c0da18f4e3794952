// libp2p's Datastore (interface-datastore) over a level database: the node's peer store and DHT records
// persist under NOIR_HOME/data (sublevel `libp2p`), so a restarted node remembers its peers' addresses.
import { Key, type Batch, type Datastore, type KeyQuery, type Pair, type Query } from 'interface-datastore'
import { NotFoundError, type AbortOptions } from '@libp2p/interface'

/** The part of a level database (or sublevel) this needs: string keys, Uint8Array values. */
export interface LevelStore {
  put(key: string, value: Uint8Array): Promise<void>
  get(key: string): Promise<Uint8Array | undefined>
  del(key: string): Promise<void>
  batch(ops: Array<{ type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string }>): Promise<void>
  iterator(opts: { gte?: string; lt?: string; keys?: boolean; values?: boolean }): AsyncIterable<[string, Uint8Array]>
}

function range(prefix: string | undefined): { gte?: string; lt?: string } {
  if (!prefix) return {}
  // every key that starts with prefix sorts between prefix and prefix + U+FFFF
  return { gte: prefix, lt: prefix + '\uffff' }
}

function applyQuery<T>(items: T[], filters: Array<(x: T) => boolean> | undefined, orders: Array<(a: T, b: T) => number> | undefined, offset?: number, limit?: number): T[] {
  let out = items
  for (const f of filters ?? []) out = out.filter(f)
  for (const o of [...(orders ?? [])].reverse()) out = [...out].sort(o)
  if (offset) out = out.slice(offset)
  if (limit !== undefined) out = out.slice(0, limit)
  return out
}

export class LevelDatastore implements Datastore {
  readonly #db: LevelStore

  constructor(db: LevelStore) {
    this.#db = db
  }

  async put(key: Key, val: Uint8Array, options?: AbortOptions): Promise<Key> {
    options?.signal?.throwIfAborted()
    await this.#db.put(key.toString(), val)
    return key
  }

  async get(key: Key, options?: AbortOptions): Promise<Uint8Array> {
    options?.signal?.throwIfAborted()
    const v = await this.#db.get(key.toString())
    if (v === undefined) throw new NotFoundError(`no datastore entry for ${key.toString()}`)
    return v
  }

  async has(key: Key, options?: AbortOptions): Promise<boolean> {
    options?.signal?.throwIfAborted()
    return (await this.#db.get(key.toString())) !== undefined
  }

  async delete(key: Key, options?: AbortOptions): Promise<void> {
    options?.signal?.throwIfAborted()
    await this.#db.del(key.toString())
  }

  async *putMany(source: Iterable<Pair> | AsyncIterable<Pair>, options?: AbortOptions): AsyncGenerator<Key> {
    for await (const { key, value } of source) yield await this.put(key, value, options)
  }

  async *getMany(source: Iterable<Key> | AsyncIterable<Key>, options?: AbortOptions): AsyncGenerator<Pair> {
    for await (const key of source) yield { key, value: await this.get(key, options) }
  }

  async *deleteMany(source: Iterable<Key> | AsyncIterable<Key>, options?: AbortOptions): AsyncGenerator<Key> {
    for await (const key of source) {
      await this.delete(key, options)
      yield key
    }
  }

  batch(): Batch {
    const ops: Array<{ type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string }> = []
    return {
      put: (key, value) => void ops.push({ type: 'put', key: key.toString(), value }),
      delete: (key) => void ops.push({ type: 'del', key: key.toString() }),
      commit: async () => {
        await this.#db.batch(ops.splice(0))
      },
    }
  }

  async *query(q: Query, options?: AbortOptions): AsyncGenerator<Pair> {
    const items: Pair[] = []
    for await (const [k, v] of this.#db.iterator(range(q.prefix))) {
      options?.signal?.throwIfAborted()
      items.push({ key: new Key(k), value: v })
    }
    yield* applyQuery(items, q.filters, q.orders, q.offset, q.limit)
  }

  async *queryKeys(q: KeyQuery, options?: AbortOptions): AsyncGenerator<Key> {
    const keys: Key[] = []
    for await (const [k] of this.#db.iterator(range(q.prefix))) {
      options?.signal?.throwIfAborted()
      keys.push(new Key(k))
    }
    yield* applyQuery(keys, q.filters, q.orders, q.offset, q.limit)
  }
}

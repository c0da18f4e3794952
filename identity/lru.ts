// A bounded map with least-recently-used eviction, for the hot-path caches (keys, DIDs, verified batches).
/** A small LRU map: Map keeps insertion order; a hit is moved to the end. */
export class LruCache<K, V> {
  readonly #max: number
  readonly #map = new Map<K, V>()
  constructor(max: number) {
    this.#max = Math.max(1, max)
  }
  get size(): number {
    return this.#map.size
  }
  get(key: K): V | undefined {
    const v = this.#map.get(key)
    if (v !== undefined) {
      this.#map.delete(key)
      this.#map.set(key, v)
    }
    return v
  }
  set(key: K, value: V): void {
    if (this.#map.has(key)) this.#map.delete(key)
    else if (this.#map.size >= this.#max) this.#map.delete(this.#map.keys().next().value as K)
    this.#map.set(key, value)
  }
  delete(key: K): void {
    this.#map.delete(key)
  }
  clear(): void {
    this.#map.clear()
  }
}


/**
 * A bounded map that evicts the oldest insertion (hits do not reorder): cheaper than LruCache on the hot path,
 * for caches of pure functions of their key (parsed addresses, key objects) where a rare re-computation is fine.
 */
export class BoundedMap<K, V> {
  #max: number
  readonly #map = new Map<K, V>()
  constructor(max: number) {
    this.#max = Math.max(1, max)
  }
  get size(): number {
    return this.#map.size
  }
  get max(): number {
    return this.#max
  }
  /** Changes the bound; shrinking evicts the oldest entries at once. */
  resize(max: number): void {
    this.#max = Math.max(1, max)
    while (this.#map.size > this.#max) this.#map.delete(this.#map.keys().next().value as K)
  }
  get(key: K): V | undefined {
    return this.#map.get(key)
  }
  set(key: K, value: V): void {
    if (!this.#map.has(key) && this.#map.size >= this.#max) this.#map.delete(this.#map.keys().next().value as K)
    this.#map.set(key, value)
  }
}

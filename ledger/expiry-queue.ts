// Open pending transfers by deadline (a binary min-heap): each group commit first expires those whose time
// is up. An entry whose transfer was posted or voided meanwhile is skipped when it comes out.
export class ExpiryQueue {
  readonly #at: number[] = []
  readonly #ids: string[] = []

  get size(): number {
    return this.#at.length
  }

  push(expiresAt: number, id: string): void {
    let i = this.#at.length
    this.#at.push(expiresAt)
    this.#ids.push(id)
    while (i > 0) {
      const p = (i - 1) >> 1
      if (this.#at[p]! <= this.#at[i]!) break
      this.#swap(i, p)
      i = p
    }
  }

  /** The ids whose deadline is at or before `now`, earliest first, removed from the queue. */
  popDue(now: number): string[] {
    const out: string[] = []
    while (this.#at.length > 0 && this.#at[0]! <= now) {
      out.push(this.#ids[0]!)
      const lastAt = this.#at.pop()!
      const lastId = this.#ids.pop()!
      if (this.#at.length === 0) break
      this.#at[0] = lastAt
      this.#ids[0] = lastId
      let i = 0
      for (;;) {
        const l = 2 * i + 1
        const r = l + 1
        let m = i
        if (l < this.#at.length && this.#at[l]! < this.#at[m]!) m = l
        if (r < this.#at.length && this.#at[r]! < this.#at[m]!) m = r
        if (m === i) break
        this.#swap(i, m)
        i = m
      }
    }
    return out
  }

  #swap(a: number, b: number): void {
    const t = this.#at[a]!
    this.#at[a] = this.#at[b]!
    this.#at[b] = t
    const u = this.#ids[a]!
    this.#ids[a] = this.#ids[b]!
    this.#ids[b] = u
  }
}

// Keeps messages from one sender in order while some of them wait for an asynchronous check (a capability
// verification). Checks run concurrently; their results are applied strictly in arrival order per key. A
// message whose check is synchronous and that has nothing queued ahead of it is applied at once, with no
// promise allocated (the local hot path).

interface Lane {
  tail: Promise<void>
  waiting: number
}

export class OrderedAdmission {
  readonly #lanes = new Map<string, Lane>()

  /** True when messages from `key` are waiting for a check (a new one must queue behind them). */
  busy(key: string): boolean {
    return this.#lanes.has(key)
  }

  /**
   * Applies `apply(undefined)` when `check` is undefined and nothing from `key` is waiting; otherwise
   * queues behind earlier messages and applies `apply(error?)` once `check` settles and every earlier
   * message was applied.
   */
  admit(key: string, check: Promise<void> | undefined, apply: (error: Error | undefined) => void): void {
    const lane = this.#lanes.get(key)
    if (lane === undefined && check === undefined) {
      apply(undefined)
      return
    }
    const outcome: Promise<Error | undefined> = (check ?? Promise.resolve()).then(
      () => undefined,
      (err: unknown) => (err instanceof Error ? err : new Error(String(err))),
    )
    const current: Lane = lane ?? { tail: Promise.resolve(), waiting: 0 }
    current.waiting++
    current.tail = current.tail
      .then(() => outcome)
      .then((err) => {
        try {
          apply(err)
        } finally {
          if (--current.waiting === 0 && this.#lanes.get(key) === current) this.#lanes.delete(key)
        }
      })
    this.#lanes.set(key, current)
  }
}

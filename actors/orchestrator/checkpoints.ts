// Where deployment snapshots go: one record per deployment, the latest snapshot wins. Writes are coalesced
// per deployment (a burst of transitions costs one write of the newest snapshot) and kept in order;
// `durable(id)` resolves once everything recorded for `id` so far is on disk (write-ahead for effects).

/** A deployment as persisted: the deployment actor's persisted XState snapshot (its context is plain JSON). */
export interface DeploymentRecord {
  v: 2
  id: string
  savedAt: number
  snapshot: unknown
}

export interface DeploymentStore {
  save(record: DeploymentRecord): Promise<void>
  /** Every record (older formats included: the caller skips what it cannot read). */
  loadAll(): Promise<{ v: number; id: string; snapshot?: unknown }[]>
}

interface Slot {
  /** Records put so far, and the number of the newest one on disk. */
  seq: number
  written: number
  next: DeploymentRecord | undefined
  busy: boolean
  waiters: { seq: number; resolve: () => void }[]
}

export class Checkpoints {
  readonly #store: DeploymentStore | undefined
  readonly #warn: (msg: string, fields?: Record<string, unknown>) => void
  readonly #slots = new Map<string, Slot>()
  readonly #memory = new Map<string, DeploymentRecord>()

  /** Without a store the records stay in memory (tests, a node that keeps nothing across restarts). */
  constructor(store: DeploymentStore | undefined, warn: (msg: string, fields?: Record<string, unknown>) => void) {
    this.#store = store
    this.#warn = warn
  }

  put(record: DeploymentRecord): void {
    const s = this.#slot(record.id)
    s.seq++
    s.next = record
    if (!s.busy) void this.#flush(record.id, s)
  }

  /** Resolves once every record put for `id` before this call is written. */
  durable(id: string): Promise<void> {
    const s = this.#slots.get(id)
    if (!s || s.written >= s.seq) return Promise.resolve()
    return new Promise((resolve) => s.waiters.push({ seq: s.seq, resolve }))
  }

  async flushAll(): Promise<void> {
    await Promise.all([...this.#slots.keys()].map((id) => this.durable(id)))
  }

  async loadAll(): Promise<{ v: number; id: string; snapshot?: unknown }[]> {
    return this.#store ? this.#store.loadAll() : [...this.#memory.values()]
  }

  #slot(id: string): Slot {
    let s = this.#slots.get(id)
    if (!s) this.#slots.set(id, (s = { seq: 0, written: 0, next: undefined, busy: false, waiters: [] }))
    return s
  }

  async #flush(id: string, s: Slot): Promise<void> {
    s.busy = true
    while (s.next !== undefined) {
      const record = s.next
      const seq = s.seq
      s.next = undefined
      try {
        if (this.#store) await this.#store.save(record)
        else this.#memory.set(id, structuredClone(record))
      } catch (err) {
        // Not durable: the waiters are still released (a step must not hang on a full disk), loudly.
        this.#warn('deployment snapshot not saved', { deployment: id, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) })
      }
      s.written = seq
      const ready = s.waiters.filter((w) => w.seq <= seq)
      s.waiters = s.waiters.filter((w) => w.seq > seq)
      for (const w of ready) w.resolve()
    }
    s.busy = false
  }
}

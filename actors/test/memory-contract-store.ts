// A ContractStore in memory, for unit tests (the daemon uses KvContractStore over its level store).
import type { ContractStore, StoredContract } from '../contracts/store.ts'

export class MemoryContractStore implements ContractStore {
  readonly #c = new Map<string, string>()
  readonly #e = new Map<string, number>()
  /** A slow disk: each put lands this many ms after it was called (default 0). */
  putDelayMs = 0
  async put(c: StoredContract): Promise<void> {
    const v = JSON.stringify(c)
    if (this.putDelayMs > 0) await new Promise((r) => setTimeout(r, this.putDelayMs))
    this.#c.set(`${c.contract.terms.id}/${c.side}`, v)
  }
  async get(id: string, side: StoredContract['side']): Promise<StoredContract | undefined> {
    const v = this.#c.get(`${id}/${side}`)
    return v ? (JSON.parse(v) as StoredContract) : undefined
  }
  async list(): Promise<StoredContract[]> {
    return [...this.#c.values()].map((v) => JSON.parse(v) as StoredContract)
  }
  async raiseEpoch(slot: string, epoch: number): Promise<number> {
    const v = Math.max(this.#e.get(slot) ?? 0, epoch)
    this.#e.set(slot, v)
    return v
  }
  async epoch(slot: string): Promise<number> {
    return this.#e.get(slot) ?? 0
  }
  readonly #m = new Map<string, string>()
  async putNote(key: string, value: string): Promise<void> {
    this.#m.set(key, value)
  }
  async note(key: string): Promise<string | undefined> {
    return this.#m.get(key)
  }
  /** How many slots have an epoch record (tests: nothing a stranger sends may grow this). */
  epochRecords(): number {
    return this.#e.size
  }
  async close(): Promise<void> {}
}

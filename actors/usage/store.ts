// Usage records kept by both sides in the node store (level): `u/<contractId>/<seq, 8 hex>/<side>` -> the
// record and its state, `o/<contractId>` -> what the consumer observed of the contract's replica, and
// `w/<provider>` -> the last checkpoint of the provider's ledger this node cosigned.
import type { KvStore } from '../../core/index.ts'
import type { Observation } from './judge.ts'
import type { UsageRecord } from './record.ts'

/**
 * `pending`: issued, not answered yet (provider). `accepted` / `disputed`: answered (both sides).
 * `unanswered`: the contract ended and the consumer never answered within the retries: not paid (spec/ledger.md).
 */
export type UsageStatus = 'pending' | 'accepted' | 'disputed' | 'unanswered'

export interface StoredUsage {
  side: 'consumer' | 'provider'
  record: UsageRecord
  status: UsageStatus
  /** The money moved on this node's ledger for it (consumer: posted from the hold; provider: credited). */
  settled?: 'paid' | 'unpaid' | 'nothing'
  tries?: number
  updatedAt: number
  note?: string
}

export interface ObservationRecord extends Observation {
  contractId: string
  deploymentId: string
}

const seqKey = (n: number): string => n.toString(16).padStart(8, '0')

export class KvUsageStore {
  readonly #records: KvStore<StoredUsage>
  readonly #seen: KvStore<ObservationRecord>
  /** `w/<provider DID>`: the last checkpoint of that provider's ledger this node cosigned (witness.ts). */
  readonly witnessed: KvStore<{ size: number; root: string }>

  constructor(kv: KvStore) {
    this.#records = kv.scope<StoredUsage>('u/')
    this.#seen = kv.scope<ObservationRecord>('o/')
    this.witnessed = kv.scope<{ size: number; root: string }>('w/')
  }

  async put(u: StoredUsage): Promise<void> {
    await this.#records.put(`${u.record.body.contractId}/${seqKey(u.record.body.seq)}/${u.side}`, u)
  }

  get(contractId: string, seq: number, side: StoredUsage['side']): Promise<StoredUsage | undefined> {
    return this.#records.get(`${contractId}/${seqKey(seq)}/${side}`)
  }

  /** The records of one contract (one side, or both), in seq order. */
  async ofContract(contractId: string, side?: StoredUsage['side']): Promise<StoredUsage[]> {
    const out: StoredUsage[] = []
    for await (const [, v] of this.#records.entries(`${contractId}/`)) if (!side || v.side === side) out.push(v)
    return out
  }

  async all(side?: StoredUsage['side']): Promise<StoredUsage[]> {
    const out: StoredUsage[] = []
    for await (const [, v] of this.#records.entries()) if (!side || v.side === side) out.push(v)
    return out
  }

  observation(contractId: string): Promise<ObservationRecord | undefined> {
    return this.#seen.get(contractId)
  }

  /** Records the first start and the first end seen (later ones change nothing). */
  async observe(o: { contractId: string; deploymentId: string; running?: number; ended?: number }): Promise<void> {
    const cur = (await this.#seen.get(o.contractId)) ?? { contractId: o.contractId, deploymentId: o.deploymentId, start: null, end: null }
    const next = { ...cur }
    if (o.running !== undefined && next.start === null && next.end === null) next.start = o.running
    if (o.ended !== undefined && next.end === null) next.end = o.ended
    if (next.start !== cur.start || next.end !== cur.end) await this.#seen.put(o.contractId, next)
  }
}

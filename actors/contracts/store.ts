// Contracts kept in level (on disk), by both sides. Keys: `c/<contractId>/<side>` -> the stored contract JSON, and
// `e/<slot>` -> the highest epoch seen for a slot (the fencing record).
import { Level } from 'level'
import type { Workload } from '../workload/workload.ts'
import type { Contract, ContractTerms } from './contract.ts'

/** `expired`: a reservation never started (records written before it existed never carry it). */
export type ContractStatus = 'reserved' | 'standby' | 'active' | 'ended' | 'superseded' | 'refused' | 'expired'

export interface StoredContract {
  contract: Contract
  /** Which side this node is on. */
  side: 'consumer' | 'provider'
  status: ContractStatus
  updatedAt: number
  note?: string
  /** Provider side: the workload (checked against the contract's digest), the reservation and the instance. */
  workload?: Workload
  reservationId?: string
  instanceId?: string
  /** Last known instance state (both sides). */
  instanceState?: string
  exitCode?: number | null
}

/** Where contracts live: a level database, or any sublevel with the same shape. */
export interface ContractStore {
  put(c: StoredContract): Promise<void>
  /** One side's record of a contract (a node that is both consumer and provider keeps two). */
  get(id: string, side: StoredContract['side']): Promise<StoredContract | undefined>
  list(): Promise<StoredContract[]>
  /** Records an epoch for a slot if higher than the one held; returns the highest held afterwards. */
  raiseEpoch(slot: string, epoch: number): Promise<number>
  epoch(slot: string): Promise<number>
  close(): Promise<void>
}

/** The little of a level database (or sublevel) the store uses; values are JSON text. */
export interface StringKv {
  get(key: string): Promise<unknown>
  put(key: string, value: string): Promise<void>
  values(o: { gte: string; lt: string }): AsyncIterable<unknown>
  close?(): Promise<void>
}

type Db = StringKv

export class LevelContractStore implements ContractStore {
  readonly #db: Db
  readonly #owned: boolean
  #chain: Promise<unknown> = Promise.resolve()

  /** Opens (creating) a level database at `path`, or wraps an open one (e.g. a daemon's sublevel). */
  constructor(pathOrDb: string | Db) {
    this.#owned = typeof pathOrDb === 'string'
    this.#db = typeof pathOrDb === 'string' ? new Level<string, string>(pathOrDb, { valueEncoding: 'utf8' }) : pathOrDb
  }

  async put(c: StoredContract): Promise<void> {
    await this.#db.put(`c/${c.contract.terms.id}/${c.side}`, JSON.stringify(c))
  }

  async get(id: string, side: StoredContract['side']): Promise<StoredContract | undefined> {
    const v = await this.#db.get(`c/${id}/${side}`)
    return typeof v === 'string' ? (JSON.parse(v) as StoredContract) : undefined
  }

  async list(): Promise<StoredContract[]> {
    const out: StoredContract[] = []
    for await (const v of this.#db.values({ gte: 'c/', lt: 'c0' })) if (typeof v === 'string') out.push(JSON.parse(v) as StoredContract)
    return out.sort((a, b) => a.contract.terms.startsAt - b.contract.terms.startsAt)
  }

  raiseEpoch(slot: string, epoch: number): Promise<number> {
    // Serialized so two concurrent raises cannot both win.
    const next = this.#chain.then(async () => {
      const held = Number((await this.#db.get(`e/${slot}`)) ?? 0)
      if (epoch > held) await this.#db.put(`e/${slot}`, String(epoch))
      return Math.max(held, epoch)
    })
    // The caller gets the failure through `next`; the chain only has to go on to the next raise.
    this.#chain = next.catch(() => undefined)
    return next
  }

  async epoch(slot: string): Promise<number> {
    return Number((await this.#db.get(`e/${slot}`)) ?? 0)
  }

  async close(): Promise<void> {
    if (this.#owned) await this.#db.close?.()
  }
}

/** The line `noir contracts` prints per contract. */
export function contractSummary(s: StoredContract): Record<string, unknown> {
  const t: ContractTerms = s.contract.terms
  return {
    id: t.id, side: s.side, status: s.status, deploymentId: t.deploymentId, workload: t.workloadName, slot: t.slot, epoch: t.epoch,
    role: t.role, lane: t.lane, consumer: t.consumer, provider: t.provider, pricePerHour: t.pricePerHour, resources: t.resources,
    startsAt: t.startsAt, endsAt: t.endsAt, instanceState: s.instanceState ?? null, note: s.note ?? null, signedByConsumer: Boolean(s.contract.consumerSig), signedByProvider: Boolean(s.contract.providerSig),
  }
}

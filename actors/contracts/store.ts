// Contracts kept on disk by both sides, in a KvStore. Keys: `c/<contractId>/<side>` -> the stored contract, and
// `e/<slot>` -> the highest epoch seen for a slot (the fencing record), `m/<key>` -> a small named value.
import { decodedTwice, type KvStore } from '../../core/index.ts'
import type { Workload } from '../workload/workload.ts'
import { upgradeStoredTerms, type Contract, type ContractTerms, type ContractTermsV1 } from './contract.ts'

/**
 * `expired`: a reservation never started (records written before it existed never carry it).
 * `lease-expired`: the consumer stopped renewing the lease; the work was stopped and its hold released.
 */
export type ContractStatus = 'reserved' | 'standby' | 'active' | 'ended' | 'superseded' | 'refused' | 'expired' | 'lease-expired'

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
  /** Provider side: the state archive the instance was started from (spec/migration.md). */
  restore?: { digest: string; from: string[] }
  /** Last known instance state (both sides). */
  instanceState?: string
  exitCode?: number | null
  /**
   * A contract made before terms v2: the terms both sides signed (v1, price a float of NLC), kept because the
   * signatures cover these bytes; `contract.terms` holds them read as v2 (spec/contracts.md "Terms v2").
   */
  signedV1Terms?: ContractTermsV1
}

/**
 * A record as read from a store: v1 terms (written before v2) are upgraded, once, here, and the signed v1
 * terms kept beside them. Records already v2 come back as they are.
 */
export function upgradeStoredContract(s: StoredContract): StoredContract {
  const terms = s.contract.terms as ContractTerms | ContractTermsV1
  if (terms.v !== 1) return s
  return { ...s, contract: { ...s.contract, terms: upgradeStoredTerms(terms) }, signedV1Terms: terms }
}

/** Where contracts live, on both sides. */
export interface ContractStore {
  put(c: StoredContract): Promise<void>
  /** One side's record of a contract (a node that is both consumer and provider keeps two). */
  get(id: string, side: StoredContract['side']): Promise<StoredContract | undefined>
  list(): Promise<StoredContract[]>
  /** Records an epoch for a slot if higher than the one held; returns the highest held afterwards. */
  raiseEpoch(slot: string, epoch: number): Promise<number>
  epoch(slot: string): Promise<number>
  /** A small named value (who orchestrates a deployment after a handover): `m/<key>`. */
  putNote(key: string, value: string): Promise<void>
  note(key: string): Promise<string | undefined>
}

/**
 * Contracts in a KvStore (core/kv-store.ts): the orchestration service's own store in the daemon. Records
 * written before 2026-12 hold the contract as JSON text (encoded twice) and the epoch as text: both still read.
 */
export class KvContractStore implements ContractStore {
  readonly #contracts: KvStore<StoredContract | string>
  readonly #epochs: KvStore<number | string>
  readonly #notes: KvStore<string>
  #chain: Promise<unknown> = Promise.resolve()

  constructor(kv: KvStore) {
    this.#contracts = kv.scope<StoredContract | string>('c/')
    this.#epochs = kv.scope<number | string>('e/')
    this.#notes = kv.scope<string>('m/')
  }

  async put(c: StoredContract): Promise<void> {
    await this.#contracts.put(`${c.contract.terms.id}/${c.side}`, c)
  }

  async get(id: string, side: StoredContract['side']): Promise<StoredContract | undefined> {
    const s = decodedTwice(await this.#contracts.get(`${id}/${side}`))
    return s && upgradeStoredContract(s)
  }

  async list(): Promise<StoredContract[]> {
    const out: StoredContract[] = []
    for await (const [, v] of this.#contracts.entries()) out.push(upgradeStoredContract(decodedTwice(v)!))
    return out.sort((a, b) => a.contract.terms.startsAt - b.contract.terms.startsAt)
  }

  raiseEpoch(slot: string, epoch: number): Promise<number> {
    // Serialized so two concurrent raises cannot both win.
    const next = this.#chain.then(async () => {
      const held = await this.epoch(slot)
      if (epoch > held) await this.#epochs.put(slot, epoch)
      return Math.max(held, epoch)
    })
    // The caller gets the failure through `next`; the chain only has to go on to the next raise.
    this.#chain = next.catch(() => undefined)
    return next
  }

  async epoch(slot: string): Promise<number> {
    return Number((await this.#epochs.get(slot)) ?? 0)
  }

  async putNote(key: string, value: string): Promise<void> {
    await this.#notes.put(key, value)
  }

  async note(key: string): Promise<string | undefined> {
    return (await this.#notes.get(key)) ?? undefined
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

// The consumer side of metering (spec/ledger.md "Escrow", "Metering"): holds the first prepaid window of a
// countersigned contract before its start is asked for, takes usage records from providers (checked,
// judged against what this node observed, countersigned or disputed), pays the accepted amount out of the
// record's window and holds the next window while the contract runs. Everything it does to the ledger goes
// through the Escrow port with deterministic ids; a record answered before is answered the same way again.
import { canonicalJsonBytes } from '../../identity/canonical-json.ts'
import type { NodeKey } from '../../identity/keys.ts'
import type { ContractTerms } from '../contracts/contract.ts'
import type { ContractStore } from '../contracts/store.ts'
import { InvalidUsageError, UsageConflictError } from '../errors.ts'
import type { Escrow } from './escrow.ts'
import { judgeUsage, type Tolerance } from './judge.ts'
import { answerUsage, contractPricePerHour, usageAmount, verifyUsage, type UsageRecord } from './record.ts'
import type { KvUsageStore, StoredUsage } from './store.ts'

export interface UsageDeskPorts {
  key: NodeKey
  contracts: ContractStore
  store: KvUsageStore
  /** The node's wallet; absent (unit tests of other things): nothing is held or paid. */
  escrow?: Escrow
  now(): number
  /**
   * A contract of a deployment this node took over as standby orchestrator (its consumer is the node it took
   * over from): its terms, or undefined when this node did not take that deployment over from `consumer`.
   */
  adopted?(consumer: string, deploymentId: string, contractId: string): ContractTerms | undefined
  /** The wallet could not hold the next window of a running contract (InsufficientFundsError): its deployment should stop. */
  outOfFunds?(terms: ContractTerms, err: Error): void
  log(level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>): void
}

export interface UsageDeskOptions {
  /** The prepaid window each hold covers (ms). Default 120,000. */
  windowMs?: number
  tolerance?: Tolerance
}

export const DEFAULT_WINDOW_MS = 120_000
/** A hold times out this long after its window (a record on its way still finds it). */
const HOLD_MARGIN_S = 30

const same = (a: unknown, b: unknown): boolean => Buffer.from(canonicalJsonBytes(a)).equals(Buffer.from(canonicalJsonBytes(b)))

export class UsageDesk {
  readonly #p: UsageDeskPorts
  readonly #windowMs: number
  readonly #tolerance: Tolerance | undefined
  /** One record of a contract at a time (a replay racing its first delivery waits for it). */
  readonly #chains = new Map<string, Promise<unknown>>()

  constructor(ports: UsageDeskPorts, o: UsageDeskOptions = {}) {
    this.#p = ports
    this.#windowMs = o.windowMs ?? DEFAULT_WINDOW_MS
    this.#tolerance = o.tolerance
  }

  get windowMs(): number {
    return this.#windowMs
  }

  /** µNLC one window of a contract holds (0: a free contract holds nothing). */
  windowAmount(terms: Pick<ContractTerms, 'pricePerHour'>): bigint {
    return usageAmount(contractPricePerHour(terms), this.#windowMs)
  }

  /** µNLC one window at `pricePerHour` µNLC holds, for `replicas` replicas (the estimate at create). */
  estimate(pricePerHour: bigint, replicas: number): bigint {
    return usageAmount(pricePerHour, this.#windowMs) * BigInt(replicas)
  }

  /** The wallet's available µNLC; undefined without a wallet (nothing is held then). */
  available(): bigint | undefined {
    return this.#p.escrow?.available()
  }

  /** Holds window `window` of a contract; InsufficientFundsError when the wallet cannot. Free contracts: nothing. */
  async hold(terms: ContractTerms, window: number): Promise<void> {
    const amount = this.windowAmount(terms)
    if (!this.#p.escrow || amount === 0n) return
    await this.#p.escrow.hold(terms.id, window, amount, Math.ceil(this.#windowMs / 1000) + HOLD_MARGIN_S)
  }

  /** Releases the open hold of window `window` (a contract released before it ran). */
  async release(contractId: string, window: number): Promise<void> {
    await this.#p.escrow?.release(contractId, window)
  }

  /**
   * A contract lost with its provider (the failure detector holds the node lost and the slot is being
   * re-placed): the hold of its open window is voided now instead of at its timeout, so the money is free for
   * the replacement. A record the provider sends after all (it was cut off, not dead) is paid the late way
   * (spec/ledger.md "Escrow"), from what the wallet has then. Returns the window released; undefined when
   * nothing was open (a final record came, or no wallet). Serialized with the contract's records.
   */
  async releaseLost(contractId: string): Promise<number | undefined> {
    const escrow = this.#p.escrow
    if (!escrow) return undefined
    return this.#serial(contractId, async () => {
      const records = await this.#p.store.ofContract(contractId, 'consumer')
      if (records.some((r) => r.record.body.final)) return undefined
      const open = records.reduce((m, r) => Math.max(m, r.record.body.seq + 1), 0)
      await escrow.release(contractId, open)
      return open
    })
  }

  /** What this node saw of a contract's replica (its own clock): the first running, the first end. */
  observe(o: { contractId: string; deploymentId: string; running?: number; ended?: number }): void {
    void this.#serial(o.contractId, () => this.#p.store.observe(o)).catch((err: Error) => this.#p.log('warn', 'usage observation not stored', { contractId: o.contractId, error: err.message }))
  }

  /**
   * A usage record from `fromDid`: checked (signature, sender, consumer, contract), judged, answered and paid.
   * Returns the answered record (both signatures). A record answered before gets the same answer again and
   * changes nothing; the same (contract, seq) with other content is UsageConflictError.
   */
  async receive(x: unknown, fromDid: string): Promise<UsageRecord> {
    const body = verifyUsage(x)
    if (body.provider !== fromDid) throw new InvalidUsageError(`usage record of ${body.provider} sent by ${fromDid}`)
    let terms: ContractTerms
    if (body.consumer !== this.#p.key.did) {
      // after a takeover: records of the deployment's contracts come to its standby orchestrator, which pays them
      const adopted = this.#p.adopted?.(body.consumer, body.deploymentId, body.contractId)
      if (!adopted) throw new InvalidUsageError(`usage record for a contract of ${body.consumer}, not of this node`)
      terms = adopted
    } else {
      const stored = await this.#p.contracts.get(body.contractId, 'consumer')
      if (!stored) throw new InvalidUsageError(`no contract ${body.contractId} of this node`, { contractId: body.contractId })
      terms = stored.contract.terms
    }
    if (terms.provider !== body.provider || terms.deploymentId !== body.deploymentId || terms.slot !== body.slot) {
      throw new InvalidUsageError(`usage record does not match contract ${terms.id} (provider, deployment or slot)`)
    }
    if (terms.role !== 'replica') throw new InvalidUsageError(`contract ${terms.id} is a standby reservation: nothing runs under it`)
    const record: UsageRecord = { body, providerSig: (x as UsageRecord).providerSig }
    return this.#serial(body.contractId, () => this.#answer(record, terms))
  }

  /** Records of this node's contracts (consumer side) for a deployment. */
  async ofDeployment(deploymentId: string): Promise<StoredUsage[]> {
    return (await this.#p.store.all()).filter((u) => u.record.body.deploymentId === deploymentId)
  }

  async #answer(record: UsageRecord, terms: ContractTerms): Promise<UsageRecord> {
    const body = record.body
    const before = await this.#p.store.get(body.contractId, body.seq, 'consumer')
    if (before) {
      if (!same(before.record.body, body)) throw new UsageConflictError(`record ${body.seq} of contract ${body.contractId} was answered before with other content`, { contractId: body.contractId, seq: body.seq })
      // a replay: the same answer; money moves only if the first delivery was cut before it moved
      if (before.settled === undefined) await this.#settle(before, terms)
      return before.record
    }
    for (const o of await this.#p.store.ofContract(body.contractId, 'consumer')) {
      const r = o.record.body
      if (body.from < r.to && r.from < body.to) throw new UsageConflictError(`record ${body.seq} of contract ${body.contractId} overlaps record ${r.seq} [${r.from}, ${r.to})`, { contractId: body.contractId, seq: body.seq, overlaps: r.seq })
    }
    const now = this.#p.now()
    const seen = (await this.#p.store.observation(body.contractId)) ?? { start: null, end: null }
    const price = contractPricePerHour(terms)
    const cap = this.#p.escrow && price > 0n ? this.windowAmount(terms) : undefined
    const j = judgeUsage({ body, price, observation: seen, now, ...(this.#tolerance ? { tolerance: this.#tolerance } : {}), ...(cap !== undefined ? { cap } : {}) })
    const answered = answerUsage(this.#p.key, record, { ...j, at: now })
    const u: StoredUsage = { side: 'consumer', record: answered, status: j.verdict, updatedAt: now }
    // recorded before any money moves: a crash in between is finished by the provider's retry (a replay)
    await this.#p.store.put(u)
    if (j.verdict === 'disputed') this.#p.log('warn', 'usage record disputed', { contractId: body.contractId, seq: body.seq, claimed: body.amount, accepted: j.acceptedAmount, reason: j.reason })
    await this.#settle(u, terms)
    return answered
  }

  async #settle(u: StoredUsage, terms: ContractTerms): Promise<void> {
    const b = u.record.body
    const amount = BigInt(u.record.answer!.acceptedAmount)
    let settled: StoredUsage['settled'] = amount === 0n ? 'nothing' : 'paid'
    if (this.#p.escrow) {
      settled = await this.#p.escrow.settle(b.contractId, b.seq, amount)
      // the next window is held while the contract runs (the final record holds none)
      const live = b.consumer === this.#p.key.did ? (await this.#p.contracts.get(b.contractId, 'consumer'))?.status : this.#p.adopted?.(b.consumer, b.deploymentId, b.contractId) ? 'active' : undefined
      if (!b.final && (live === 'active' || live === 'reserved')) {
        await this.hold(terms, b.seq + 1).catch((err: Error) => {
          this.#p.log('warn', 'next usage window not held', { contractId: b.contractId, window: b.seq + 1, error: err.name, message: err.message })
          if (err.name === 'InsufficientFundsError') this.#p.outOfFunds?.(terms, err)
        })
      }
    }
    await this.#p.store.put({ ...u, settled, updatedAt: this.#p.now() })
  }

  #serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#chains.get(key) ?? Promise.resolve()
    const next = prev.then(fn, fn)
    const tail = next.catch(() => undefined)
    this.#chains.set(key, tail)
    void tail.then(() => {
      if (this.#chains.get(key) === tail) this.#chains.delete(key)
    })
    return next
  }
}

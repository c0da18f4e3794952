// The settlement layer's LedgerPort (settlement/ledger-port.ts) over this node's own Ledger
// (spec/settlement.md "The daemon's settlement service"). Amounts cross the port in the chain's base units;
// the ledger keeps µNLC / µNLR, so every amount is scaled by `unitsPerMicro` (10^12 for an 18-decimal token).
//
//   top-up   topup:<ref>                 external:NLC -> self:NLC          (Ledger.topup: once per ref)
//   hold     payout:<receipt id>         self:NLR -> settlement:NLR        pending, linked per batch
//   post     payout:<receipt id>:post    post_pending                      linked per batch
//   void     payout:<receipt id>:void    void_pending                      linked per batch
//
// The batch records (root, receipts, state, anchor) live in the service's store: written before the hold,
// updated after the post or void, so a batch whose process died in between is found and finished at the next
// start (SettlementService.recover). The ledger decides what happened: a post or void replayed is a replay.
import type { KvStore } from '../../core/index.ts'
import type { Ledger } from '../../ledger/ledger.ts'
import type { Result, TransferInit } from '../../ledger/types.ts'
import { okOrThrow } from '../../ledger/ledger.ts'
import type { ExternalRef } from '../../settlement/external-ref.ts'
import type { LedgerPayout, LedgerPort, LedgerTopup, TopupResult } from '../../settlement/ledger-port.ts'
import type { PayoutReceipt } from '../../settlement/types.ts'
import { InvalidPayoutBatchError } from '../../settlement/errors.ts'

export const SETTLEMENT_NLR = 'settlement:NLR'

/** A payout batch as the node keeps it (amounts in chain units, as decimal strings). */
export interface StoredBatch {
  chain: string
  root: string
  receipts: Array<{ id: string; account: string; payee: string; amount: string }>
  state: LedgerPayout['state']
  anchor?: string
  reason?: string
  /** ms since the epoch when the batch was recorded. */
  at: number
}

export interface SettlementLedgerInit {
  ledger: () => Ledger
  /** This node's DID: the one account whose deposits it credits and whose NLR it pays out. */
  did: string
  /** Chain base units per µNLC / µNLR (10^(decimals - 6)). */
  unitsPerMicro: bigint
  /** The service's store, scope `batch/`. */
  batches: KvStore<StoredBatch>
  now?: () => number
}

const refused = (r: Result | undefined): r is Extract<Result, { ok: false }> => r !== undefined && !r.ok

export class SettlementLedger implements LedgerPort {
  readonly #init: SettlementLedgerInit

  constructor(init: SettlementLedgerInit) {
    this.#init = init
  }

  /** Chain units -> ledger units; an amount that is not a whole number of µ units is refused. */
  toLedger(amount: bigint, what: string): bigint {
    const { unitsPerMicro } = this.#init
    if (amount <= 0n || amount % unitsPerMicro !== 0n) throw new InvalidPayoutBatchError(`${what} ${amount} is not a positive whole number of micro units (${unitsPerMicro} base units each)`, { amount: String(amount) })
    return amount / unitsPerMicro
  }

  toChain(micro: bigint): bigint {
    return micro * this.#init.unitsPerMicro
  }

  #account(did: string): string | undefined {
    return did === this.#init.did ? 'self:NLC' : undefined
  }

  /**
   * Credits the whole µNLC of a deposit (a remainder below one µNLC is not credited: reconciliation shows
   * it as an amount mismatch). The same ref again is a duplicate, with another amount a conflict.
   */
  async topup(ref: ExternalRef, account: string, amount: bigint): Promise<TopupResult> {
    const ledgerAccount = this.#account(account)
    const micro = amount / this.#init.unitsPerMicro
    const id = `topup:${ref}`
    if (!ledgerAccount || micro <= 0n) return { status: 'conflict', ref, account, amount: 0n }
    const [r] = await this.#init.ledger().createTransfers([{ id, debit: 'external:NLC', credit: ledgerAccount, amount: micro, currency: 'NLC', ref }])
    if (r?.ok) return r.replay ? { status: 'duplicate', ref } : { status: 'credited', ref }
    const [had] = await this.#init.ledger().transfersWithIdPrefix(id, 1)
    return had && had.id === id
      ? { status: 'conflict', ref, account: had.credit === 'self:NLC' ? this.#init.did : had.credit, amount: this.toChain(had.amount) }
      : { status: 'conflict', ref, account, amount: 0n }
  }

  async holdPayout(chain: string, root: string, receipts: readonly PayoutReceipt[]): Promise<void> {
    const existing = await this.#init.batches.get(root)
    if (existing && existing.state !== 'held') throw new InvalidPayoutBatchError(`batch ${root} is already ${existing.state}`, { root, state: existing.state })
    const holds: TransferInit[] = receipts.map((r, i) => {
      if (r.account !== this.#init.did) throw new InvalidPayoutBatchError(`receipt ${r.id} pays ${r.account}, not this node`, { receipt: r.id })
      return { id: `payout:${r.id}`, debit: 'self:NLR', credit: SETTLEMENT_NLR, amount: this.toLedger(r.amount, `receipt ${r.id}`), currency: 'NLR', flags: i < receipts.length - 1 ? ['pending', 'linked'] : ['pending'], ref: `batch:${root.slice(0, 64)}` }
    })
    // write-ahead: the batch is on disk before its hold, so a crash after the hold finds it
    const batch: StoredBatch = existing ?? { chain, root, receipts: receipts.map((r) => ({ id: r.id, account: r.account, payee: r.payee, amount: String(r.amount) })), state: 'held', at: (this.#init.now ?? Date.now)() }
    if (!existing) await this.#init.batches.put(root, batch)
    // held again after a crash: the same holds are replays
    const results = await this.#init.ledger().createTransfers(holds)
    const bad = results.find(refused)
    if (bad) {
      // linked: nothing was held; the record goes (the refused ids stay refused in the ledger: retry with new ids)
      if (!existing) await this.#init.batches.del(root)
      okOrThrow(bad)
    }
  }

  async postPayout(root: string, anchor: ExternalRef): Promise<void> {
    await this.#resolve(root, 'post', { anchor })
  }

  async voidPayout(root: string, reason: string): Promise<void> {
    await this.#resolve(root, 'void', { reason })
  }

  async #resolve(root: string, how: 'post' | 'void', extra: { anchor?: string; reason?: string }): Promise<void> {
    const b = await this.#init.batches.get(root)
    if (!b) throw new InvalidPayoutBatchError(`no batch ${root}`, { root })
    const n = b.receipts.length
    const transfers: TransferInit[] = b.receipts.map((r, i) => ({
      id: `payout:${r.id}:${how}`,
      pendingId: `payout:${r.id}`,
      flags: i < n - 1 ? [how === 'post' ? 'post_pending' : 'void_pending', 'linked'] : [how === 'post' ? 'post_pending' : 'void_pending'],
    }))
    const results = await this.#init.ledger().createTransfers(transfers)
    for (const r of results) okOrThrow(r)
    await this.#init.batches.put(root, { ...b, state: how === 'post' ? 'posted' : 'voided', ...extra })
  }

  async topups(chain: string): Promise<LedgerTopup[]> {
    const entries = await this.#init.ledger().transfersWithIdPrefix(`topup:${chain}:`)
    return entries.map((e) => ({ ref: e.id.slice('topup:'.length) as ExternalRef, account: e.credit === 'self:NLC' ? this.#init.did : e.credit, amount: this.toChain(e.amount) }))
  }

  async payouts(chain: string): Promise<LedgerPayout[]> {
    const out: LedgerPayout[] = []
    for await (const [, b] of this.#init.batches.entries()) {
      if (b.chain !== chain) continue
      out.push({ chain, root: b.root, total: b.receipts.reduce((s, r) => s + BigInt(r.amount), 0n), count: b.receipts.length, state: b.state, ...(b.anchor ? { anchor: b.anchor as ExternalRef } : {}) })
    }
    return out
  }

  /** Batches recorded as held (a payout a crash interrupted, or one in flight). */
  async held(): Promise<StoredBatch[]> {
    const out: StoredBatch[] = []
    for await (const [, b] of this.#init.batches.entries()) if (b.state === 'held') out.push(b)
    return out
  }
}

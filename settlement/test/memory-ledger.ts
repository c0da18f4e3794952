// TEST DOUBLE of the ledger (ledger/ is built separately): just enough of LedgerPort to drive the settlement
// code in tests, with the ledger's promised rules: one top-up per external reference, two-phase payouts, a
// receipt held or paid in at most one batch. Balances are plain maps; nothing is hash-chained or durable.
import type { ExternalRef } from '../external-ref.ts'
import type { LedgerPayout, LedgerPort, LedgerTopup, TopupResult } from '../ledger-port.ts'
import type { PayoutReceipt } from '../types.ts'

interface HeldBatch extends LedgerPayout {
  receipts: PayoutReceipt[]
}

export class MemoryLedger implements LedgerPort {
  readonly #topups = new Map<string, LedgerTopup & { chain: string }>()
  readonly #nlc = new Map<string, bigint>()
  readonly #nlr = new Map<string, bigint>()
  readonly #batches = new Map<string, HeldBatch>()
  readonly #receiptBatch = new Map<string, string>()

  /** NLC balance of an account. */
  nlc(account: string): bigint {
    return this.#nlc.get(account) ?? 0n
  }

  /** NLR an account can still be paid (earned minus held or paid). */
  nlr(account: string): bigint {
    return this.#nlr.get(account) ?? 0n
  }

  /** Test set-up: NLR a worker earned. */
  earn(account: string, amount: bigint): void {
    this.#nlr.set(account, this.nlr(account) + amount)
  }

  /** Test set-up: writes a top-up as a broken ledger might (no deposit behind it, or altered). */
  forceTopup(chain: string, ref: ExternalRef, account: string, amount: bigint): void {
    this.#topups.set(ref, { chain, ref, account, amount })
  }

  async topup(ref: ExternalRef, account: string, amount: bigint): Promise<TopupResult> {
    const had = this.#topups.get(ref)
    if (had) {
      return had.account === account && had.amount === amount ? { status: 'duplicate', ref } : { status: 'conflict', ref, account: had.account, amount: had.amount }
    }
    this.#topups.set(ref, { chain: ref.slice(0, ref.indexOf(':')), ref, account, amount })
    this.#nlc.set(account, this.nlc(account) + amount)
    return { status: 'credited', ref }
  }

  async holdPayout(chain: string, root: string, receipts: readonly PayoutReceipt[]): Promise<void> {
    if (this.#batches.has(root)) return
    for (const r of receipts) {
      const other = this.#receiptBatch.get(r.id)
      if (other !== undefined) throw new Error(`receipt ${r.id} is already in batch ${other}`)
    }
    const need = new Map<string, bigint>()
    for (const r of receipts) need.set(r.account, (need.get(r.account) ?? 0n) + r.amount)
    for (const [account, amount] of need) if (this.nlr(account) < amount) throw new Error(`${account} has ${this.nlr(account)} NLR, the batch pays ${amount}`)
    for (const [account, amount] of need) this.#nlr.set(account, this.nlr(account) - amount)
    for (const r of receipts) this.#receiptBatch.set(r.id, root)
    const total = receipts.reduce((s, r) => s + r.amount, 0n)
    this.#batches.set(root, { chain, root, total, count: receipts.length, state: 'held', receipts: [...receipts] })
  }

  async postPayout(root: string, anchor: ExternalRef): Promise<void> {
    const b = this.#batches.get(root)
    if (!b || b.state !== 'held') throw new Error(`no held batch ${root}`)
    b.state = 'posted'
    b.anchor = anchor
  }

  async voidPayout(root: string): Promise<void> {
    const b = this.#batches.get(root)
    if (!b || b.state !== 'held') throw new Error(`no held batch ${root}`)
    b.state = 'voided'
    for (const r of b.receipts) {
      this.#nlr.set(r.account, this.nlr(r.account) + r.amount)
      this.#receiptBatch.delete(r.id)
    }
  }

  async topups(chain: string): Promise<LedgerTopup[]> {
    return [...this.#topups.values()].filter((t) => t.chain === chain).map(({ ref, account, amount }) => ({ ref, account, amount }))
  }

  async payouts(chain: string): Promise<LedgerPayout[]> {
    return [...this.#batches.values()]
      .filter((b) => b.chain === chain)
      .map(({ chain, root, total, count, state, anchor }) => ({ chain, root, total, count, state, ...(anchor ? { anchor } : {}) }))
  }
}

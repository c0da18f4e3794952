// The settlement layer's view of the ledger: the few calls it makes into ledger/ (built separately). The
// ledger owns idempotency: a top-up is credited once per external reference, whatever calls it.
import type { ExternalRef } from './external-ref.ts'
import type { PayoutReceipt } from './types.ts'

export type TopupResult =
  /** Credited now. */
  | { status: 'credited'; ref: ExternalRef }
  /** Already credited under this reference with the same account and amount: nothing changed. */
  | { status: 'duplicate'; ref: ExternalRef }
  /** Already credited under this reference with another account or amount: nothing changed. */
  | { status: 'conflict'; ref: ExternalRef; account: string; amount: bigint }

/** A top-up as the ledger recorded it. */
export interface LedgerTopup {
  ref: ExternalRef
  account: string
  amount: bigint
}

/** A payout batch as the ledger recorded it: held (pending transfer), then posted or voided. */
export interface LedgerPayout {
  chain: string
  root: string
  total: bigint
  count: number
  state: 'held' | 'posted' | 'voided'
  /** The paying transaction once posted. */
  anchor?: ExternalRef
}

export interface LedgerPort {
  /** Credits `amount` NLC to `account` once per `ref` (idempotent). */
  topup(ref: ExternalRef, account: string, amount: bigint): Promise<TopupResult>
  /**
   * Holds the NLR of every receipt in the batch (the first phase of a two-phase transfer). Holding the same
   * root again is a no-op; a receipt already held or paid in another batch is refused.
   */
  holdPayout(chain: string, root: string, receipts: readonly PayoutReceipt[]): Promise<void>
  /** Posts a held batch once the chain paid it. */
  postPayout(root: string, anchor: ExternalRef): Promise<void>
  /** Voids a held batch the chain did not pay: its NLR returns to the workers. */
  voidPayout(root: string, reason: string): Promise<void>
  /** Every top-up credited from `chain`, for reconciliation. */
  topups(chain: string): Promise<LedgerTopup[]>
  /** Every payout batch recorded for `chain`. */
  payouts(chain: string): Promise<LedgerPayout[]>
}

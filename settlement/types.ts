// The values that cross the settlement layer: deposits seen on a chain, payout receipts and batches, and
// what a chain shows for reconciliation. Amounts are bigint base units (never floats).
import type { AccountKey } from './accounts.ts'
import type { ExternalRef } from './external-ref.ts'

/** A point on a chain: a block height and that block's hash (Cardano emulator: a synthetic hash). */
export interface BlockPoint {
  height: bigint
  hash: string
}

/** A deposit as the chain shows it, at some depth. */
export interface ObservedDeposit {
  ref: ExternalRef
  /** The account key the deposit names (its Deposit event / its datum), not the sender. */
  accountKey: AccountKey
  amount: bigint
  /** The block that includes it. */
  block: BlockPoint
}

/** A deposit with its confirmations: 1 when in the tip block. */
export interface PendingDeposit extends ObservedDeposit {
  confirmations: bigint
}

/** What one poll of a chain found. */
export interface DepositPoll {
  tip: BlockPoint
  /** Deposits that reached the confirmation depth since the last poll, in chain order: credit these. */
  confirmed: ObservedDeposit[]
  /** Deposits seen but not yet deep enough. */
  pending: PendingDeposit[]
  /** Deposits pending at the last poll that the chain no longer shows (a reorganisation): never credited. */
  dropped: ExternalRef[]
}

/** One payout the ledger owes: NLR for a worker, paid on chain to `payee`. */
export interface PayoutReceipt {
  /** The ledger's receipt id (unique per receipt); on chain as sha256(id). */
  id: string
  /** The account (DID) being paid. */
  account: string
  /** The chain address that receives the tokens (EVM 0x address, Cardano bech32). */
  payee: string
  amount: bigint
}

/** A batch of receipts paid in one transaction and anchored by the RFC 6962 root of its leaves. */
export interface PayoutBatch {
  receipts: PayoutReceipt[]
  /** Leaf data per receipt (spec/settlement.md "Payout leaves"). */
  leaves: Uint8Array[]
  /** Root, lowercase hex without 0x. */
  root: string
  total: bigint
}

/** A batch as paid on a chain. */
export interface PayoutAnchor {
  chain: string
  root: string
  total: bigint
  count: number
  /** The transaction that paid it, `chain:txhash:index` (index: the PayoutBatch log / 0 on Cardano). */
  ref: ExternalRef
  block: BlockPoint
  /** True when the root recomputed from what the chain paid equals the anchored root. */
  rootMatches: boolean
}

/** What a chain shows, read back from the chain itself (not from any tracker state). */
export interface ChainView {
  chain: string
  tip: BlockPoint
  /** Deposits at or below the confirmation depth. */
  deposits: ObservedDeposit[]
  /** Deposits above it (not yet expected in the ledger). */
  pending: PendingDeposit[]
  payouts: PayoutAnchor[]
}

export interface SettlementStatus {
  chain: string
  depth: number
  tip: BlockPoint
  /** Every block at or below this height has been credited. */
  creditedThrough: bigint
  pending: PendingDeposit[]
}

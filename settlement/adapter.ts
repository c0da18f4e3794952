// The contract every chain implements (EVM through viem, Cardano through Lucid Evolution). Implementations
// pass one compliance suite (settlement/test/adapter-compliance.ts) against a real local chain.
import type { ChainView, DepositPoll, PayoutAnchor, PayoutBatch, PayoutReceipt, SettlementStatus } from './types.ts'

export interface SettlementAdapter {
  /** Chain name used in external references, e.g. `evm-31337`. */
  readonly chain: string
  /** Confirmations a deposit needs before it is credited. */
  readonly depth: number
  /** Reads the chain above the credited cursor: deposits newly confirmed, pending, dropped by a reorg. */
  poll(): Promise<DepositPoll>
  /** The batch this chain would pay for these receipts (leaves, root, total), without paying it. */
  prepareBatch(receipts: readonly PayoutReceipt[]): PayoutBatch
  /** Pays a batch in one transaction anchored by its root; resolves once it is included. */
  payBatch(batch: PayoutBatch): Promise<PayoutAnchor>
  /** Reads every deposit and payout batch back from the chain (not from the tracker) for reconciliation. */
  chainView(): Promise<ChainView>
  status(): Promise<SettlementStatus>
}

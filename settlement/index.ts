// settlement/: deposits on a chain become NLC top-ups after a confirmation depth; NLR payouts are paid in
// batches anchored by the RFC 6962 root of their receipts; reconciliation lists every difference between
// the ledger and the chain. spec/settlement.md.
export type { SettlementAdapter } from './adapter.ts'
export type { LedgerPort, LedgerPayout, LedgerTopup, TopupResult } from './ledger-port.ts'
export type * from './types.ts'
export { accountKey, ListedAccounts, type AccountDirectory, type AccountKey } from './accounts.ts'
export { positiveAmount, parseAmount, formatAmount, MAX_AMOUNT } from './amount.ts'
export { externalRef, parseExternalRef, asExternalRef, isChainName, type ExternalRef, type ExternalRefParts } from './external-ref.ts'
export { merkleRoot, leafHash, nodeHash, inclusionProof, verifyInclusion } from './merkle.ts'
export { buildPayoutBatch, payoutLeaf, receiptKey, MAX_BATCH_RECEIPTS } from './payout-batch.ts'
export { ConfirmationTracker, type DepositSource, type TrackerCursor, type ConfirmationTrackerInit } from './confirmation-tracker.ts'
export { creditConfirmedDeposits, type CreditReport } from './deposit-crediter.ts'
export { settlePayouts } from './payouts.ts'
export { reconcile, reconcileChain, reconciliationToJson, formatDifference, type Difference, type LedgerView, type Reconciliation } from './reconcile.ts'
export * from './errors.ts'

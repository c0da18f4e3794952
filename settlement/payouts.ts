// Pays NLR receipts on chain as one batch, in two phases against the ledger: hold the receipts' NLR, pay the
// batch, then post the hold (paid) or void it (not paid, the NLR goes back).
import type { SettlementAdapter } from './adapter.ts'
import { PayoutFailedError } from './errors.ts'
import type { LedgerPort } from './ledger-port.ts'
import type { PayoutAnchor, PayoutReceipt } from './types.ts'

/** Called at the step boundaries of a payout (the daemon's failpoints: spec/failpoints.md). */
export interface PayoutSteps {
  /** The NLR is held, nothing paid yet. */
  held?(): void
  /** The chain paid the batch, the hold is not posted yet. */
  paid?(): void
}

export async function settlePayouts(adapter: SettlementAdapter, ledger: LedgerPort, receipts: readonly PayoutReceipt[], steps: PayoutSteps = {}): Promise<PayoutAnchor> {
  const batch = adapter.prepareBatch(receipts)
  await ledger.holdPayout(adapter.chain, batch.root, batch.receipts)
  steps.held?.()
  let anchor: PayoutAnchor
  try {
    anchor = await adapter.payBatch(batch)
  } catch (err) {
    await ledger.voidPayout(batch.root, err instanceof Error ? err.message : String(err))
    throw err instanceof PayoutFailedError ? err : new PayoutFailedError(adapter.chain, batch.root, err instanceof Error ? err.message : String(err), { cause: err })
  }
  steps.paid?.()
  await ledger.postPayout(batch.root, anchor.ref)
  return anchor
}

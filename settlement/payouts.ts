// Pays NLR receipts on chain as one batch, in two phases against the ledger: hold the receipts' NLR, pay the
// batch, then post the hold (paid) or void it (not paid, the NLR goes back).
import type { SettlementAdapter } from './adapter.ts'
import { PayoutFailedError } from './errors.ts'
import type { LedgerPort } from './ledger-port.ts'
import type { PayoutAnchor, PayoutReceipt } from './types.ts'

export async function settlePayouts(adapter: SettlementAdapter, ledger: LedgerPort, receipts: readonly PayoutReceipt[]): Promise<PayoutAnchor> {
  const batch = adapter.prepareBatch(receipts)
  await ledger.holdPayout(adapter.chain, batch.root, batch.receipts)
  let anchor: PayoutAnchor
  try {
    anchor = await adapter.payBatch(batch)
  } catch (err) {
    await ledger.voidPayout(batch.root, err instanceof Error ? err.message : String(err))
    throw err instanceof PayoutFailedError ? err : new PayoutFailedError(adapter.chain, batch.root, err instanceof Error ? err.message : String(err), { cause: err })
  }
  await ledger.postPayout(batch.root, anchor.ref)
  return anchor
}

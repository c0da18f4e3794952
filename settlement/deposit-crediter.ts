// Turns confirmed deposits into top-ups: one poll of the adapter, one `topup` per confirmed deposit, the
// account taken from the deposit itself (its event or datum), never from whoever sent it.
import type { AccountDirectory } from './accounts.ts'
import type { SettlementAdapter } from './adapter.ts'
import type { ExternalRef } from './external-ref.ts'
import type { LedgerPort } from './ledger-port.ts'
import type { DepositPoll } from './types.ts'

export interface CreditReport {
  poll: DepositPoll
  credited: ExternalRef[]
  /** Already credited under the same reference: nothing changed (a replay, or a rescan after a restart). */
  duplicates: ExternalRef[]
  /** Same reference, other account or amount: nothing changed; reconciliation lists it. */
  conflicts: ExternalRef[]
  /** The deposit names an account key no account has: not credited; reconciliation lists it. */
  unknownAccount: ExternalRef[]
}

export async function creditConfirmedDeposits(adapter: Pick<SettlementAdapter, 'poll'>, ledger: Pick<LedgerPort, 'topup'>, accounts: AccountDirectory): Promise<CreditReport> {
  const poll = await adapter.poll()
  const report: CreditReport = { poll, credited: [], duplicates: [], conflicts: [], unknownAccount: [] }
  for (const d of poll.confirmed) {
    const account = accounts.lookup(d.accountKey)
    if (account === undefined) {
      report.unknownAccount.push(d.ref)
      continue
    }
    const r = await ledger.topup(d.ref, account, d.amount)
    if (r.status === 'credited') report.credited.push(d.ref)
    else if (r.status === 'duplicate') report.duplicates.push(d.ref)
    else report.conflicts.push(d.ref)
  }
  return report
}

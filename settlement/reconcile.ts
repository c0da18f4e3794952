// Compares what the ledger recorded with what the chain shows and lists every difference. Pure: both sides
// are read first (see reconcileChain), so the same inputs always give the same list, in a stable order.
import type { AccountDirectory } from './accounts.ts'
import { formatAmount } from './amount.ts'
import type { LedgerPayout, LedgerTopup } from './ledger-port.ts'
import type { ChainView } from './types.ts'

export type Difference =
  /** A confirmed deposit the ledger never credited. */
  | { kind: 'missing-credit'; ref: string; account: string | null; accountKey: string; amount: bigint }
  /** A top-up with no confirmed deposit behind it (or one a reorganisation removed). */
  | { kind: 'credit-without-deposit'; ref: string; account: string; amount: bigint }
  /** Both exist, with different amounts. */
  | { kind: 'amount-mismatch'; ref: string; ledgerAmount: bigint; chainAmount: bigint }
  /** Both exist, credited to another account than the deposit names. */
  | { kind: 'account-mismatch'; ref: string; ledgerAccount: string; chainAccount: string | null; accountKey: string }
  /** A batch the ledger posted (or still holds) that the chain did not pay. */
  | { kind: 'payout-not-on-chain'; root: string; state: LedgerPayout['state']; total: bigint }
  /** A batch paid on chain that the ledger does not record as posted. */
  | { kind: 'payout-not-in-ledger'; root: string; total: bigint; ref: string }
  /** Both exist with different totals or receipt counts. */
  | { kind: 'payout-total-mismatch'; root: string; ledgerTotal: bigint; chainTotal: bigint; ledgerCount: number; chainCount: number }
  /** A batch whose anchored root does not match the receipts the transaction paid. */
  | { kind: 'payout-root-mismatch'; root: string; ref: string }

export interface LedgerView {
  topups: readonly LedgerTopup[]
  payouts: readonly LedgerPayout[]
}

export interface Reconciliation {
  chain: string
  tipHeight: bigint
  /** Confirmed deposits and paid batches compared. */
  checked: { deposits: number; topups: number; payouts: number }
  /** Deposits not yet at the confirmation depth: expected to be missing from the ledger, not a difference. */
  pending: number
  differences: Difference[]
}

const key = (d: Difference): string => ('ref' in d && !d.kind.startsWith('payout') ? `0:${d.ref}` : `1:${'root' in d ? d.root : ''}`) + `:${d.kind}`

export function reconcile(ledger: LedgerView, chain: ChainView, accounts: AccountDirectory): Reconciliation {
  const differences: Difference[] = []
  const byRef = new Map(ledger.topups.map((t) => [t.ref as string, t]))
  const pendingRefs = new Set<string>(chain.pending.map((p) => p.ref))
  const seen = new Set<string>()
  for (const d of chain.deposits) {
    seen.add(d.ref)
    const account = accounts.lookup(d.accountKey) ?? null
    const t = byRef.get(d.ref)
    if (!t) {
      differences.push({ kind: 'missing-credit', ref: d.ref, account, accountKey: d.accountKey, amount: d.amount })
      continue
    }
    if (t.account !== account) differences.push({ kind: 'account-mismatch', ref: d.ref, ledgerAccount: t.account, chainAccount: account, accountKey: d.accountKey })
    if (t.amount !== d.amount) differences.push({ kind: 'amount-mismatch', ref: d.ref, ledgerAmount: t.amount, chainAmount: d.amount })
  }
  for (const t of ledger.topups) {
    // a top-up whose deposit is still shallower than the depth was credited early: still a difference
    if (!seen.has(t.ref)) differences.push({ kind: 'credit-without-deposit', ref: t.ref, account: t.account, amount: t.amount })
  }
  const paid = new Map(chain.payouts.map((p) => [p.root, p]))
  const recorded = new Map(ledger.payouts.map((p) => [p.root, p]))
  for (const p of chain.payouts) {
    if (!p.rootMatches) differences.push({ kind: 'payout-root-mismatch', root: p.root, ref: p.ref })
    const l = recorded.get(p.root)
    if (!l || l.state === 'voided') differences.push({ kind: 'payout-not-in-ledger', root: p.root, total: p.total, ref: p.ref })
    else if (l.total !== p.total || l.count !== p.count) {
      differences.push({ kind: 'payout-total-mismatch', root: p.root, ledgerTotal: l.total, chainTotal: p.total, ledgerCount: l.count, chainCount: p.count })
    }
  }
  for (const l of ledger.payouts) {
    if (l.state !== 'voided' && !paid.has(l.root)) differences.push({ kind: 'payout-not-on-chain', root: l.root, state: l.state, total: l.total })
  }
  differences.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0))
  return {
    chain: chain.chain,
    tipHeight: chain.tip.height,
    checked: { deposits: chain.deposits.length, topups: ledger.topups.length, payouts: chain.payouts.length },
    pending: pendingRefs.size,
    differences,
  }
}

/** The reconciliation as JSON-safe values (bigint as decimal strings), for `noir settle reconcile --json`. */
export function reconciliationToJson(r: Reconciliation): unknown {
  return JSON.parse(JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? formatAmount(v) : v)))
}

/** One line per difference, for people. */
export function formatDifference(d: Difference): string {
  switch (d.kind) {
    case 'missing-credit':
      return `missing credit: ${d.ref} deposited ${d.amount} for ${d.account ?? `unknown account ${d.accountKey}`}, not in the ledger`
    case 'credit-without-deposit':
      return `credit without deposit: ${d.ref} credited ${d.amount} to ${d.account}, no confirmed deposit on chain`
    case 'amount-mismatch':
      return `amount mismatch: ${d.ref} ledger ${d.ledgerAmount}, chain ${d.chainAmount}`
    case 'account-mismatch':
      return `account mismatch: ${d.ref} ledger credited ${d.ledgerAccount}, the deposit names ${d.chainAccount ?? `unknown account ${d.accountKey}`}`
    case 'payout-not-on-chain':
      return `payout not on chain: batch ${d.root} (${d.state}, total ${d.total})`
    case 'payout-not-in-ledger':
      return `payout not in ledger: batch ${d.root} paid ${d.total} in ${d.ref}`
    case 'payout-total-mismatch':
      return `payout total mismatch: batch ${d.root} ledger ${d.ledgerTotal} (${d.ledgerCount}), chain ${d.chainTotal} (${d.chainCount})`
    case 'payout-root-mismatch':
      return `payout root mismatch: batch ${d.root} in ${d.ref} does not match the receipts it paid`
  }
}

/** Reads the chain and the ledger and reconciles them (the body of `noir settle reconcile`). */
export async function reconcileChain(
  adapter: { chain: string; chainView(): Promise<ChainView> },
  ledger: { topups(chain: string): Promise<LedgerTopup[]>; payouts(chain: string): Promise<LedgerPayout[]> },
  accounts: AccountDirectory,
): Promise<Reconciliation> {
  const chain = await adapter.chainView()
  const [topups, payouts] = await Promise.all([ledger.topups(adapter.chain), ledger.payouts(adapter.chain)])
  return reconcile({ topups, payouts }, chain, accounts)
}

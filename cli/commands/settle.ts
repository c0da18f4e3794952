// `noir settle`, `noir settle poll`, `noir settle reconcile`, `noir settle payout`: this node's settlement on
// its configured chain (spec/settlement.md "The daemon's settlement service"). Thin clients of the
// settlement service's API (spec/api.md "Settlement").
import { ApiClient } from '../api-client.ts'
import { parseCommandArgs, printJson, printLine, UsageError, type Command } from '../command.ts'

interface StatusDoc {
  chain: string | null
  contract: string
  depth?: number
  tip?: string | null
  creditedThrough?: string
  canPayOut?: boolean
  pending?: Array<{ ref: string; amount: string; confirmations: string }>
  lastPoll?: { at: number; credited: number; pending: number; tip: string } | null
  lastError: string | null
  stopped: string | null
}

interface ReconcileDoc {
  chain: string
  tipHeight: string
  checked: { deposits: number; topups: number; payouts: number }
  pending: number
  differences: Array<{ kind: string; ref?: string; root?: string } & Record<string, unknown>>
}

export const settleStatusCommand: Command = {
  path: ['settle'],
  summary: 'show this node\'s settlement chain: tip, credited cursor, deposits waiting for confirmations',
  usage: `Usage: noir settle [--json]

The chain this node settles on (config.json settlement.evm), its tip, the block through which deposits
are credited, the deposits still short of the confirmation depth, the last poll, and whether this node can
pay out (an operator key). See also: noir settle poll, noir settle reconcile, noir settle payout.
--json prints { chain, contract, depth, tip, creditedThrough, canPayOut, pending: [{ ref, accountKey, amount,
confirmations, block }], lastPoll, lastError, stopped } (amounts and heights as decimal strings).`,
  async run(ctx, argv) {
    parseCommandArgs(argv, {}, { min: 0, max: 0, usage: 'usage: noir settle [--json] (see also: noir settle poll | reconcile | payout)' })
    const s = await ApiClient.forHome(ctx.home).get<StatusDoc>('/v1/settlement')
    if (ctx.json) return printJson(ctx, s)
    if (s.chain === null) {
      printLine(ctx, `settlement contract ${s.contract}: chain not reachable${s.lastError ? ` (${s.lastError})` : ''}`)
      return 1
    }
    printLine(ctx, `${s.chain}  contract ${s.contract}  tip ${s.tip ?? '?'}  credited through ${s.creditedThrough}  depth ${s.depth}  ${s.canPayOut ? 'can pay out' : 'credits only (no operator key)'}`)
    for (const p of s.pending ?? []) printLine(ctx, `  pending ${p.ref}  ${p.amount}  ${p.confirmations}/${s.depth} confirmations`)
    if (s.lastPoll) printLine(ctx, `last poll ${new Date(s.lastPoll.at).toISOString()}: ${s.lastPoll.credited} credited, ${s.lastPoll.pending} pending at tip ${s.lastPoll.tip}`)
    if (s.lastError) printLine(ctx, `last error: ${s.lastError}`)
    if (s.stopped) printLine(ctx, `STOPPED: ${s.stopped}`)
    return s.stopped ? 1 : 0
  },
}

export const settlePollCommand: Command = {
  path: ['settle', 'poll'],
  summary: 'read the chain now and credit the deposits that reached the confirmation depth',
  usage: `Usage: noir settle poll [--json]

The daemon does this every settlement.evm.pollMs; this asks for one poll now. A deposit is credited once per
external reference (chain:txhash:index) whatever polls it.
--json prints { poll: { tip, confirmed, pending, dropped }, credited, duplicates, conflicts, unknownAccount }.`,
  async run(ctx, argv) {
    parseCommandArgs(argv, {}, { min: 0, max: 0, usage: 'usage: noir settle poll [--json]' })
    const r = await ApiClient.forHome(ctx.home).post<{ poll: { tip: { height: string }; pending: unknown[]; dropped: string[] }; credited: string[]; duplicates: string[]; conflicts: string[]; unknownAccount: string[] }>('/v1/settlement/poll', {})
    if (ctx.json) return printJson(ctx, r)
    printLine(ctx, `tip ${r.poll.tip.height}: ${r.credited.length} credited, ${r.duplicates.length} already credited, ${r.poll.pending.length} pending, ${r.poll.dropped.length} dropped by a reorganisation`)
    for (const ref of r.credited) printLine(ctx, `  credited ${ref}`)
    for (const ref of r.conflicts) printLine(ctx, `  CONFLICT ${ref} (see noir settle reconcile)`)
  },
}

export const settleReconcileCommand: Command = {
  path: ['settle', 'reconcile'],
  summary: 'compare the ledger with the chain and list every difference; exit 1 when there is one',
  usage: `Usage: noir settle reconcile [--json]

Reads every confirmed deposit and paid payout batch back from the chain and every top-up and payout batch
from this node's ledger, and lists each difference (missing-credit, credit-without-deposit, amount-mismatch,
account-mismatch, payout-not-on-chain, payout-not-in-ledger, payout-total-mismatch, payout-root-mismatch:
spec/settlement.md "Reconciliation output"). Exit 0 when there is none, 1 otherwise.
--json prints { chain, tipHeight, checked: { deposits, topups, payouts }, pending, differences: [...] }.`,
  async run(ctx, argv) {
    parseCommandArgs(argv, {}, { min: 0, max: 0, usage: 'usage: noir settle reconcile [--json]' })
    const r = await ApiClient.forHome(ctx.home).get<ReconcileDoc>('/v1/settlement/reconcile')
    if (ctx.json) printJson(ctx, r)
    else {
      printLine(ctx, `${r.chain} at ${r.tipHeight}: ${r.checked.deposits} deposits, ${r.checked.topups} top-ups, ${r.checked.payouts} payouts checked; ${r.pending} deposits pending; ${r.differences.length} difference(s)`)
      for (const d of r.differences) printLine(ctx, `  ${d.kind}  ${d.ref ?? d.root ?? ''}  ${JSON.stringify(Object.fromEntries(Object.entries(d).filter(([k]) => k !== 'kind' && k !== 'ref' && k !== 'root')))}`)
    }
    return r.differences.length === 0 ? 0 : 1
  },
}

export const settlePayoutCommand: Command = {
  path: ['settle', 'payout'],
  summary: 'pay this node\'s NLR out on the chain to an address (hold, pay, post)',
  usage: `Usage: noir settle payout --to ADDRESS [--amount UNITS] [--id ID] [--json]

Pays UNITS µNLR (default: all available NLR) to ADDRESS on the settlement chain in one batch anchored by its
Merkle root: the NLR is held first, then paid, then the hold is posted (or voided when the chain refuses).
ID names the receipt (default: a new one); repeating a paid ID answers the same payment and pays nothing
more; the chain itself refuses a receipt paid before. Needs an operator key (settlement.evm.operatorKeyFile).
--json prints { receipt: { id, account, payee, amount }, root, anchor, block?, replay }.`,
  async run(ctx, argv) {
    const { values } = parseCommandArgs(argv, { to: { type: 'string' }, amount: { type: 'string' }, id: { type: 'string' } }, { min: 0, max: 0, usage: 'usage: noir settle payout --to ADDRESS [--amount UNITS] [--id ID]' })
    if (typeof values.to !== 'string') throw new UsageError('--to ADDRESS is required')
    if (values.amount !== undefined && (typeof values.amount !== 'string' || !/^[1-9][0-9]{0,30}$/.test(values.amount))) throw new UsageError('--amount is a whole number of µNLR')
    const body = { payee: values.to, ...(typeof values.amount === 'string' ? { amount: values.amount } : {}), ...(typeof values.id === 'string' ? { id: values.id } : {}) }
    const r = await ApiClient.forHome(ctx.home).post<{ receipt: { id: string; amount: string; payee: string }; root: string; anchor: string; replay: boolean }>('/v1/settlement/payouts', body)
    if (ctx.json) return printJson(ctx, r)
    printLine(ctx, `${r.replay ? 'already paid' : 'paid'}: receipt ${r.receipt.id} to ${r.receipt.payee} (${r.receipt.amount} base units), batch ${r.root.slice(0, 16)}…, ${r.anchor}`)
  },
}

export const settleCommands: Command[] = [settleStatusCommand, settlePollCommand, settleReconcileCommand, settlePayoutCommand]

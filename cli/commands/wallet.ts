// `noir wallet`, `noir wallet history`, `noir wallet topup`: this node's balances (NLC to spend, NLR earned),
// what is held by pending transfers, the entries that moved them, and development funding (once per
// reference). Thin clients of the ledger service's API (spec/cli.md, spec/api.md).
import { ApiClient } from '../api-client.ts'
import { nlcDecimal } from '../../ledger/units.ts'
import { intOption, parseCommandArgs, printJson, printLine, UsageError, type Command } from '../command.ts'

interface Balance {
  account: string
  currency: string
  posted: string
  held: string
  incoming: string
  available: string
}

interface WalletDoc {
  did: string
  balances: Balance[]
  entries: number
  checkpoint: { size: number; root: string } | null
}

interface EntryDoc {
  kind: string
  seq: number
  ts: number
  id?: string
  pendingId?: string
  debit?: string
  credit?: string
  amount?: string
  currency: string
  flags?: string[]
  ref?: string
}

function printWallet(out: (l: string) => void, w: WalletDoc): void {
  for (const b of w.balances) {
    // NLC in NLC with its six decimals (whole µNLC underneath: spec/ledger.md "Amounts"); NLR in its units
    const show = (x: string): string => (b.currency === 'NLC' ? nlcDecimal(BigInt(x)) : x)
    out(`${b.currency}  available ${show(b.available)}  (posted ${show(b.posted)}, held ${show(b.held)}, incoming ${show(b.incoming)})`)
  }
  out(`ledger: ${w.entries} entries${w.checkpoint ? `, checkpoint at ${w.checkpoint.size} root ${w.checkpoint.root.slice(0, 16)}…` : ''}`)
}

export const walletCommand: Command = {
  path: ['wallet'],
  summary: 'show this node\'s balances (NLC, NLR) and what pending transfers hold',
  usage: `Usage: noir wallet [--json]

NLC is shown in NLC (up to six decimals; --json and the API give whole µNLC); NLR in its smallest unit. available = posted - held; held is what pending
(two-phase) transfers reserve; incoming is what pending transfers will credit.
--json prints { did, balances: [{ account, currency, posted, held, incoming, available }], entries,
checkpoint: { v, log, size, root, ts } | null } (amounts as decimal strings).`,
  async run(ctx, argv) {
    parseCommandArgs(argv, {}, { min: 0, max: 0, usage: 'usage: noir wallet [--json] (see also: noir wallet history, noir wallet topup)' })
    const w = await ApiClient.forHome(ctx.home).get<WalletDoc>('/v1/wallet')
    if (ctx.json) return printJson(ctx, w)
    printWallet((l) => printLine(ctx, l), w)
  },
}

export const walletHistoryCommand: Command = {
  path: ['wallet', 'history'],
  summary: 'list the ledger entries that moved this node\'s balances, newest first',
  usage: `Usage: noir wallet history [--limit N] [--before SEQ] [--account ID] [--json]

--json prints { entries: [{ kind, seq, ts, id, debit, credit, amount, currency, flags, pendingId?, ref?, v }] }.`,
  async run(ctx, argv) {
    const { values } = parseCommandArgs(argv, { limit: { type: 'string' }, before: { type: 'string' }, account: { type: 'string' } }, { min: 0, max: 0, usage: 'usage: noir wallet history [--limit N] [--before SEQ] [--account ID] [--json]' })
    const q = new URLSearchParams()
    const limit = intOption(values.limit, '--limit', 1, 1000)
    const before = intOption(values.before, '--before', 0)
    if (limit !== undefined) q.set('limit', String(limit))
    if (before !== undefined) q.set('before', String(before))
    if (typeof values.account === 'string') q.set('account', values.account)
    const r = await ApiClient.forHome(ctx.home).get<{ entries: EntryDoc[] }>(`/v1/wallet/history?${q}`)
    if (ctx.json) return printJson(ctx, r)
    if (r.entries.length === 0) return printLine(ctx, 'no entries')
    for (const e of r.entries) {
      const when = new Date(e.ts).toISOString()
      const what = e.kind === 'expire' ? `expired ${e.pendingId}` : e.kind === 'account' ? `account ${e.id} opened` : `${e.id}${e.flags && e.flags.length > 0 ? ` [${e.flags.join(',')}]` : ''}`
      const move = e.amount ? `  ${e.amount} ${e.currency}  ${e.debit} -> ${e.credit}` : ''
      printLine(ctx, `#${e.seq}  ${when}  ${what}${move}${e.ref ? `  ref ${e.ref}` : ''}`)
    }
  },
}

export const walletTopupCommand: Command = {
  path: ['wallet', 'topup'],
  summary: 'credit NLC for development funding, once per reference',
  usage: `Usage: noir wallet topup --amount A --ref R [--account ID] [--json]

Credits A (a whole number of the smallest NLC unit) to the wallet (or ID) from external:NLC, once per
external reference R: repeating it changes nothing, and R with another amount is refused
(IdempotencyConflictError naming 'amount').
--json prints { result: { id, ok, entry, ts, replay }, wallet: <as noir wallet --json> }.`,
  async run(ctx, argv) {
    const { values } = parseCommandArgs(argv, { amount: { type: 'string' }, ref: { type: 'string' }, account: { type: 'string' } }, { min: 0, max: 0, usage: 'usage: noir wallet topup --amount A --ref R' })
    if (typeof values.amount !== 'string' || !/^[0-9]{1,39}$/.test(values.amount)) throw new UsageError('--amount must be a whole number of the smallest unit')
    if (typeof values.ref !== 'string' || values.ref.length === 0) throw new UsageError('--ref (the external reference) is required')
    const body = { amount: values.amount, ref: values.ref, ...(typeof values.account === 'string' ? { account: values.account } : {}) }
    const r = await ApiClient.forHome(ctx.home).post<{ result: { entry: number; replay: boolean }; wallet: WalletDoc }>('/v1/wallet/topup', body)
    if (ctx.json) return printJson(ctx, r)
    printLine(ctx, r.result.replay ? `top-up ${values.ref} was already applied (entry ${r.result.entry}); nothing changed` : `top-up ${values.ref}: entry ${r.result.entry}`)
    printWallet((l) => printLine(ctx, l), r.wallet)
  },
}

export const walletCommands: Command[] = [walletCommand, walletHistoryCommand, walletTopupCommand]

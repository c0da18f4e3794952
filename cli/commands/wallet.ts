// `noir wallet`, `noir wallet history`, `noir wallet topup`: this node's balances (NLC to spend, NLR earned),
// what is held by pending transfers, the entries that moved them, and development funding (once per
// reference). Thin clients of the ledger service's API (spec/cli.md, spec/api.md).
import { ApiClient } from '../api-client.ts'
import { clientOf, readLogin } from '../gateway-login.ts'
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

After \`noir login --gateway URL\`: the account's wallet at the gateway (spec/billing.md): available, pending
(held by deploys) and posted NLC, each open hold (SHORT when the account cannot refill it, with when its
deployment stops), and where to deposit (--json: { did, currency, available, pending, posted, holds,
deposit: { chain, contract, accountKey } | null }, µNLC). Otherwise this node's:
NLC is shown in NLC (up to six decimals; --json and the API give whole µNLC); NLR in its smallest unit. available = posted - held; held is what pending
(two-phase) transfers reserve; incoming is what pending transfers will credit.
--json prints { did, balances: [{ account, currency, posted, held, incoming, available }], entries,
checkpoint: { v, log, size, root, ts } | null } (amounts as decimal strings).`,
  async run(ctx, argv) {
    parseCommandArgs(argv, {}, { min: 0, max: 0, usage: 'usage: noir wallet [--json] (see also: noir wallet history, noir wallet topup)' })
    const login = readLogin(ctx.home)
    if (login) {
      const g = await clientOf(login).wallet()
      if (ctx.json) return printJson(ctx, g)
      printLine(ctx, `NLC  available ${nlcDecimal(BigInt(g.available))}  (posted ${nlcDecimal(BigInt(g.posted))}, held by deploys ${nlcDecimal(BigInt(g.pending))})  at ${login.url}`)
      printLine(ctx, `wallet ${g.did}`)
      for (const h of g.holds ?? []) {
        const state = h.stoppedAt !== null ? 'stopped for want of funds' : h.short ? `SHORT of funds: stops at ${new Date(h.stopsAt ?? 0).toISOString()} unless you top up` : 'covered'
        printLine(ctx, `hold  ${h.workload} (${h.deploymentId ?? 'not deployed yet'})  holds ${nlcDecimal(BigInt(h.held))}, used ${nlcDecimal(BigInt(h.used))}  ${state}`)
      }
      if (g.deposit) printLine(ctx, `deposit: call deposit(0x${g.deposit.accountKey}, amount) on ${g.deposit.contract} (${g.deposit.chain})`)
      return
    }
    const w = await ApiClient.forHome(ctx.home).get<WalletDoc>('/v1/wallet')
    if (ctx.json) return printJson(ctx, w)
    printWallet((l) => printLine(ctx, l), w)
  },
}

export const invoicesCommand: Command = {
  path: ['invoices'],
  summary: 'the account\'s monthly invoices at the gateway (after noir login)',
  usage: `Usage: noir invoices [ID] [--json]

After \`noir login --gateway URL\`: the account's invoices (spec/billing.md), one line each, or one invoice's
lines by its id (inv-YYYY-MM). Amounts in NLC. --json prints the gateway's answer.`,
  async run(ctx, argv) {
    const { positionals } = parseCommandArgs(argv, {}, { min: 0, max: 1, usage: 'usage: noir invoices [ID] [--json]' })
    const login = readLogin(ctx.home)
    if (!login) throw new UsageError('invoices are kept by a gateway: noir login --gateway URL first')
    const c = clientOf(login)
    if (positionals[0] !== undefined) {
      const inv = await c.invoice(positionals[0])
      if (ctx.json) return printJson(ctx, inv)
      printLine(ctx, `${inv.id}  ${inv.period}  ${inv.status}  total ${nlcDecimal(BigInt(inv.total))} NLC`)
      for (const l of inv.lines) printLine(ctx, `  ${l.deploymentId}  ${l.workload}  ${l.records} record(s)  ${nlcDecimal(BigInt(l.amount))} NLC`)
      return
    }
    const list = await c.invoices()
    if (ctx.json) return printJson(ctx, { invoices: list })
    if (list.length === 0) return printLine(ctx, 'no invoices yet')
    for (const inv of list) printLine(ctx, `${inv.id}  ${inv.period}  ${inv.status.padEnd(6)}  ${nlcDecimal(BigInt(inv.total))} NLC  ${inv.lines.length} line(s)`)
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

export const walletCommands: Command[] = [walletCommand, walletHistoryCommand, walletTopupCommand, invoicesCommand]

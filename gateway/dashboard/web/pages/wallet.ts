// The account's wallet (GET /v1/wallet: available, pending and posted NLC, the open holds, a notice for each
// deployment short of funds with when it stops) and its top-ups (on-chain deposits
// naming the account key, GET /v1/wallet/top-ups), with the deposit instructions, and the invoices (GET /v1/invoices). When the gateway has no
// billing routes (404), the page says so instead of showing zeros.
import { optional, units } from '../../../../appliance/web/kit/api.ts'
import { h, table, when } from '../../../../appliance/web/kit/dom.ts'

interface Hold { deploymentId: string | null; workload: string; held: string; used: string; short: boolean; stopsAt: number | null; stoppedAt: number | null }
interface Wallet { did: string; currency: string; available: string; pending: string; posted: string; holds?: Hold[]; deposit: { chain: string; contract: string; accountKey: string } | null }
interface Invoices { invoices: Array<{ id: string; period: string; total: string; lines: unknown[]; issuedAt: number | string }> }
interface TopUps { topUps: Array<{ ref: string; amount: string; at: number | string }> }

export async function walletPage(main: HTMLElement): Promise<void> {
  main.append(h('h1', {}, 'Wallet'))
  const w = await optional<Wallet>('GET', '/v1/wallet')
  if (!w) {
    main.append(h('p', { class: 'notice', id: 'wallet-unavailable' }, 'Billing is not available on this gateway yet: there is no wallet to show.'))
    return
  }
  const card = (label: string, amount: string, id: string) => h('div', { class: 'card' }, h('div', {}, label), h('div', { class: 'big', id }, `${units(amount, 6)} ${w.currency}`))
  const holds = w.holds ?? []
  const stateOf = (x: Hold): string => (x.stoppedAt !== null ? 'stopped for want of funds' : x.short ? `short of funds: stops ${when(x.stopsAt ?? 0)}` : 'covered')
  main.append(
    ...holds.filter((x) => x.short && x.stoppedAt === null).map((x) => h('p', { class: 'notice', role: 'alert' }, `${x.workload} is short of funds and stops ${when(x.stopsAt ?? 0)} unless you top up.`)),
    h('div', { class: 'cards' }, card('Available', w.available, 'wallet-available'), card('Pending', w.pending, 'wallet-pending'), card('Posted', w.posted, 'wallet-posted')),
    h('h2', {}, 'Held for your deployments'),
    holds.length === 0
      ? h('p', { class: 'muted', id: 'holds-empty' }, 'Nothing is held: no deployment is running.')
      : h('div', { class: 'scroll' }, table(['Workload', 'Holds', 'Used', 'State'], holds.map((x) => [x.workload, `${units(x.held, 6)} ${w.currency}`, `${units(x.used, 6)} ${w.currency}`, stateOf(x)]), 'Holds')),
    h('h2', {}, 'Top up'),
    w.deposit
      ? h('div', { class: 'notice' },
        h('p', {}, `Send a deposit to the contract below on ${w.deposit.chain}, naming your account key. It appears here once the chain confirms it.`),
        h('dl', { class: 'facts' }, h('dt', {}, 'Chain'), h('dd', {}, w.deposit.chain), h('dt', {}, 'Contract'), h('dd', { id: 'deposit-contract' }, w.deposit.contract), h('dt', {}, 'Account key'), h('dd', { id: 'deposit-key' }, w.deposit.accountKey)))
      : h('p', { class: 'muted' }, 'Deposits are not configured on this gateway.'),
  )
  const t = await optional<TopUps>('GET', '/v1/wallet/top-ups')
  main.append(h('h2', {}, 'Top-ups'), !t || t.topUps.length === 0
    ? h('p', { class: 'muted', id: 'topups-empty' }, 'No top-ups yet.')
    : h('div', { class: 'scroll' }, table(['When', 'Amount', 'Reference'], t.topUps.map((x) => [when(x.at), `${units(x.amount, 6)} ${w.currency}`, x.ref]), 'Top-ups')))
  const inv = await optional<Invoices>('GET', '/v1/invoices')
  main.append(h('h2', {}, 'Invoices'), !inv || inv.invoices.length === 0
    ? h('p', { class: 'muted', id: 'invoices-empty' }, 'No invoices yet.')
    : h('div', { class: 'scroll' }, table(['Period', 'Total', 'Lines', 'Issued', 'Id'], inv.invoices.map((x) => [x.period, `${units(x.total, 6)} ${w.currency}`, x.lines.length, when(x.issuedAt), x.id]), 'Invoices')))
}

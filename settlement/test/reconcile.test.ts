// Reconciliation lists every difference once, in a stable order, and nothing when the two sides agree.
import t from 'tap'
import { accountKey, ListedAccounts } from '../accounts.ts'
import { asExternalRef } from '../external-ref.ts'
import { reconcile, reconciliationToJson } from '../reconcile.ts'
import type { ChainView, ObservedDeposit } from '../types.ts'

const alice = 'did:key:z6MkAlice'
const bob = 'did:key:z6MkBob'
const accounts = new ListedAccounts([alice, bob])
const ref = (n: number) => asExternalRef(`evm-1:0x${n.toString(16).padStart(64, '0')}:0`)
const block = { height: 1n, hash: '0x01' }
const dep = (n: number, account: string, amount: bigint): ObservedDeposit => ({ ref: ref(n), accountKey: accountKey(account), amount, block })
const view = (deposits: ObservedDeposit[], payouts: ChainView['payouts'] = []): ChainView => ({ chain: 'evm-1', tip: { height: 10n, hash: '0x0a' }, deposits, pending: [], payouts })
const anchor = (root: string, total: bigint, rootMatches = true): ChainView['payouts'][number] => ({ chain: 'evm-1', root, total, count: 1, ref: ref(99), block, rootMatches })

t.test('agreeing sides give no difference', async (t) => {
  const r = reconcile({ topups: [{ ref: ref(1), account: alice, amount: 5n }], payouts: [{ chain: 'evm-1', root: 'aa', total: 3n, count: 1, state: 'posted' }] }, view([dep(1, alice, 5n)], [anchor('aa', 3n)]), accounts)
  t.same(r.differences, [])
})

t.test('every kind of difference is listed', async (t) => {
  const r = reconcile(
    {
      topups: [
        { ref: ref(2), account: alice, amount: 6n }, // amount mismatch (chain 7)
        { ref: ref(3), account: alice, amount: 1n }, // account mismatch (chain: bob)
        { ref: ref(4), account: bob, amount: 9n }, // credit without deposit
      ],
      payouts: [
        { chain: 'evm-1', root: 'bb', total: 4n, count: 1, state: 'posted' }, // not on chain
        { chain: 'evm-1', root: 'cc', total: 5n, count: 1, state: 'posted' }, // total mismatch (chain 6)
      ],
    },
    view([dep(1, alice, 5n), dep(2, alice, 7n), dep(3, bob, 1n)], [anchor('cc', 6n), anchor('dd', 2n), anchor('ee', 1n, false)]),
    accounts,
  )
  t.same(
    r.differences.map((d) => d.kind),
    ['missing-credit', 'amount-mismatch', 'account-mismatch', 'credit-without-deposit', 'payout-not-on-chain', 'payout-total-mismatch', 'payout-not-in-ledger', 'payout-not-in-ledger', 'payout-root-mismatch'],
  )
  const json = JSON.stringify(reconciliationToJson(r))
  t.match(json, /"amount":"5"/, 'amounts are decimal strings in JSON')
})

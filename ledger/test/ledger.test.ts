// The ledger's rules as a client meets them: accounts, top-ups once per reference, idempotent transfers,
// two-phase transfers (post in full or in part, void, time out), account flags, linked chains, NLC/NLR
// conversion, and everything surviving a reopen.
import t from 'tap'
import { openTestLedger } from './helpers.ts'
import { IdempotencyConflictError, TransferRefusedError } from '../errors.ts'
import { conversionTransfers } from '../conversion.ts'
import type { Result } from '../types.ts'

const failed = (r: Result | undefined): string | undefined => (r && !r.ok ? r.result : undefined)

t.test('a top-up credits NLC once per external reference; a replay changes nothing; another amount is refused naming it', async (t) => {
  const { ledger } = await openTestLedger(t)
  const first = await ledger.topup('stripe-pi-1', 500n)
  t.equal(first.replay, false)
  const size = ledger.size
  const again = await ledger.topup('stripe-pi-1', 500n)
  t.equal(again.replay, true, 'the replay is answered as the first result')
  t.equal(again.entry, first.entry)
  t.equal(ledger.size, size, 'no entry added')
  t.equal(ledger.balance('self:NLC')!.available, '500')
  const err = await ledger.topup('stripe-pi-1', 501n).catch((e: unknown) => e)
  t.ok(err instanceof IdempotencyConflictError)
  t.equal((err as IdempotencyConflictError).field, 'amount')
  t.equal((err as IdempotencyConflictError).result, 'exists_with_different_amount')
  t.equal(ledger.balance('self:NLC')!.available, '500')
  await ledger.topup('stripe-pi-2', 1n)
  t.equal(ledger.balance('self:NLC')!.available, '501')
})

t.test('idempotency: same id same fields is the first result, other fields are refused by name, a failed id stays failed', async (t) => {
  const { ledger } = await openTestLedger(t)
  await ledger.createAccounts([{ id: 'alice', currency: 'NLC', flags: ['debits_must_not_exceed_credits'] }, { id: 'bob', currency: 'NLC' }])
  await ledger.topup('r1', 100n, 'alice')
  const r1 = await ledger.transfer({ id: 'pay-1', debit: 'alice', credit: 'bob', amount: 30n, currency: 'NLC', ref: 'order-9' })
  const r2 = await ledger.transfer({ id: 'pay-1', debit: 'alice', credit: 'bob', amount: 30n, currency: 'NLC', ref: 'order-9' })
  t.same({ entry: r2.entry, ts: r2.ts, replay: r2.replay }, { entry: r1.entry, ts: r1.ts, replay: true })
  for (const [field, change] of [['amount', { amount: 31n }], ['credit', { credit: 'self:NLC' }], ['debit', { debit: 'external:NLC' }], ['ref', { ref: 'order-8' }], ['flags', { flags: ['pending' as const] }]] as const) {
    const [r] = await ledger.createTransfers([{ id: 'pay-1', debit: 'alice', credit: 'bob', amount: 30n, currency: 'NLC', ref: 'order-9', ...change }])
    t.equal(r!.ok ? undefined : r!.field, field, `a retry with another ${field} names it`)
    t.match(failed(r), /^exists_with_different_/)
  }
  // a transfer that fails on the state stays failed, even once it could succeed
  const [f1] = await ledger.createTransfers([{ id: 'pay-2', debit: 'alice', credit: 'bob', amount: 1000n, currency: 'NLC' }])
  t.equal(failed(f1), 'exceeds_credits')
  await ledger.topup('r2', 5000n, 'alice')
  const [f2] = await ledger.createTransfers([{ id: 'pay-2', debit: 'alice', credit: 'bob', amount: 1000n, currency: 'NLC' }])
  t.equal(failed(f2), 'id_already_failed')
  t.equal(ledger.balance('bob')!.posted, '30')
  // a request refused on its own fields is not recorded: the same id may come back corrected
  const [v1] = await ledger.createTransfers([{ id: 'pay-3', debit: 'alice', credit: 'bob', amount: 0n, currency: 'NLC' }])
  t.equal(failed(v1), 'amount_invalid')
  const [v2] = await ledger.createTransfers([{ id: 'pay-3', debit: 'alice', credit: 'bob', amount: 5n, currency: 'NLC' }])
  t.ok(v2!.ok)
  // and all of it after a reopen
})

t.test('two-phase: pending holds, post in part releases the rest, void releases all, an expired one cannot be posted', async (t) => {
  const tl = await openTestLedger(t)
  const { ledger } = tl
  await ledger.topup('r', 1000n)
  await ledger.createAccounts([{ id: 'provider', currency: 'NLC' }])
  await ledger.transfer({ id: 'hold-1', debit: 'self:NLC', credit: 'provider', amount: 600n, currency: 'NLC', flags: ['pending'], timeout: 60 })
  t.same(ledger.balance('self:NLC'), { account: 'self:NLC', currency: 'NLC', posted: '1000', held: '600', incoming: '0', available: '400' })
  const [over] = await ledger.createTransfers([{ id: 'hold-2', debit: 'self:NLC', credit: 'provider', amount: 401n, currency: 'NLC', flags: ['pending'] }])
  t.equal(failed(over), 'exceeds_credits', 'held amounts count against what may be spent')
  const [tooMuch] = await ledger.createTransfers([{ id: 'post-1x', pendingId: 'hold-1', amount: 601n, flags: ['post_pending'] }])
  t.equal(failed(tooMuch), 'exceeds_pending_transfer_amount')
  await ledger.transfer({ id: 'post-1', pendingId: 'hold-1', amount: 250n, flags: ['post_pending'] })
  t.same(ledger.balance('self:NLC'), { account: 'self:NLC', currency: 'NLC', posted: '750', held: '0', incoming: '0', available: '750' })
  t.equal(ledger.balance('provider')!.posted, '250')
  const [twice] = await ledger.createTransfers([{ id: 'void-1', pendingId: 'hold-1', flags: ['void_pending'] }])
  t.equal(failed(twice), 'pending_transfer_already_posted')
  await ledger.transfer({ id: 'hold-3', debit: 'self:NLC', credit: 'provider', amount: 100n, currency: 'NLC', flags: ['pending'] })
  await ledger.transfer({ id: 'void-3', pendingId: 'hold-3', flags: ['void_pending'] })
  t.equal(ledger.balance('self:NLC')!.available, '750')
  const [notPending] = await ledger.createTransfers([{ id: 'post-x', pendingId: 'post-1', flags: ['post_pending'] }])
  t.equal(failed(notPending), 'pending_transfer_not_pending')
  const [missing] = await ledger.createTransfers([{ id: 'post-y', pendingId: 'nothing', flags: ['post_pending'] }])
  t.equal(failed(missing), 'pending_transfer_not_found')
  // time out
  await ledger.transfer({ id: 'hold-4', debit: 'self:NLC', credit: 'provider', amount: 700n, currency: 'NLC', flags: ['pending'], timeout: 5 })
  t.equal(ledger.balance('self:NLC')!.held, '700')
  tl.clock.now += 4_999
  t.equal(await ledger.expireDue(), 0)
  tl.clock.now += 1
  t.equal(await ledger.expireDue(), 1)
  t.equal(ledger.balance('self:NLC')!.held, '0')
  const [late] = await ledger.createTransfers([{ id: 'post-4', pendingId: 'hold-4', flags: ['post_pending'] }])
  t.equal(failed(late), 'pending_transfer_expired')
  // a pending transfer due while no tick ran is expired by the next commit, before anything else in it
  await ledger.transfer({ id: 'hold-5', debit: 'self:NLC', credit: 'provider', amount: 10n, currency: 'NLC', flags: ['pending'], timeout: 1 })
  tl.clock.now += 1000
  const [late5] = await ledger.createTransfers([{ id: 'post-5', pendingId: 'hold-5', flags: ['post_pending'] }])
  t.equal(failed(late5), 'pending_transfer_expired')
  const report = await ledger.verify()
  t.same(report.problems, [])
  // the whole state comes back after a reopen, the open pending with its deadline
  await ledger.transfer({ id: 'hold-6', debit: 'self:NLC', credit: 'provider', amount: 11n, currency: 'NLC', flags: ['pending'], timeout: 2 })
  const reopened = await tl.reopen()
  t.equal(reopened.balance('self:NLC')!.held, '11')
  tl.clock.now += 2000
  t.equal(await reopened.expireDue(), 1)
  t.equal(reopened.balance('self:NLC')!.held, '0')
  t.same((await reopened.verify()).problems, [])
})

t.test('flags: debits must not exceed credits, credits must not exceed debits', async (t) => {
  const { ledger } = await openTestLedger(t)
  await ledger.createAccounts([
    { id: 'capped', currency: 'NLC', flags: ['credits_must_not_exceed_debits'] },
    { id: 'src', currency: 'NLC' },
  ])
  const [r] = await ledger.createTransfers([{ id: 'x1', debit: 'src', credit: 'capped', amount: 1n, currency: 'NLC' }])
  t.equal(failed(r), 'exceeds_debits')
  await ledger.transfer({ id: 'x2', debit: 'capped', credit: 'src', amount: 10n, currency: 'NLC' })
  await ledger.transfer({ id: 'x3', debit: 'src', credit: 'capped', amount: 10n, currency: 'NLC' })
  const [r2] = await ledger.createTransfers([{ id: 'x4', debit: 'src', credit: 'capped', amount: 1n, currency: 'NLC' }])
  t.equal(failed(r2), 'exceeds_debits')
  const [both] = await ledger.createAccounts([{ id: 'both', currency: 'NLC', flags: ['debits_must_not_exceed_credits', 'credits_must_not_exceed_debits'] }])
  t.equal(failed(both), 'flags_are_mutually_exclusive')
  const [again] = await ledger.createAccounts([{ id: 'capped', currency: 'NLR', flags: ['credits_must_not_exceed_debits'] }])
  t.equal(failed(again), 'exists_with_different_currency')
})

t.test('a linked chain is applied whole or not at all; an open chain is refused', async (t) => {
  const { ledger } = await openTestLedger(t)
  await ledger.topup('r', 100n)
  await ledger.createAccounts([{ id: 'a', currency: 'NLC' }, { id: 'b', currency: 'NLC' }])
  const size = ledger.size
  const rs = await ledger.createTransfers([
    { id: 'c1', debit: 'self:NLC', credit: 'a', amount: 60n, currency: 'NLC', flags: ['linked'] },
    { id: 'c2', debit: 'self:NLC', credit: 'b', amount: 60n, currency: 'NLC' },
  ])
  t.same(rs.map(failed), ['linked_event_failed', 'exceeds_credits'])
  t.equal(ledger.size, size, 'nothing of the chain was logged')
  t.equal(ledger.balance('self:NLC')!.available, '100')
  const open = await ledger.createTransfers([{ id: 'c3', debit: 'self:NLC', credit: 'a', amount: 1n, currency: 'NLC', flags: ['linked'] }])
  t.same(open.map(failed), ['linked_event_chain_open'])
  // a pending transfer and its post in one chain
  const ok = await ledger.createTransfers([
    { id: 'c4', debit: 'self:NLC', credit: 'a', amount: 40n, currency: 'NLC', flags: ['pending', 'linked'] },
    { id: 'c5', pendingId: 'c4', flags: ['post_pending'] },
  ])
  t.ok(ok.every((r) => r.ok))
  t.equal(ledger.balance('a')!.posted, '40')
  // the retried chain is the first result
  const retry = await ledger.createTransfers([
    { id: 'c4', debit: 'self:NLC', credit: 'a', amount: 40n, currency: 'NLC', flags: ['pending', 'linked'] },
    { id: 'c5', pendingId: 'c4', flags: ['post_pending'] },
  ])
  t.ok(retry.every((r) => r.ok && r.replay))
})

t.test('NLC becomes NLR only through the treasury at the published rate less the fee, in one linked chain', async (t) => {
  const { ledger } = await openTestLedger(t)
  await ledger.topup('r', 1000n)
  const policy = { nlrPerNlc: 3n, feeBps: 250 }
  const rs = await ledger.createTransfers(conversionTransfers({ id: 'conv-1', from: 'self:NLC', to: 'self:NLR', nlc: 333n, policy }))
  t.ok(rs.every((r) => r.ok), JSON.stringify(rs))
  // gross 999, fee ceil(999 * 250 / 10000) = 25, net 974
  t.equal(ledger.balance('self:NLR')!.posted, '974')
  t.equal(ledger.balance('fees:NLR')!.posted, '25')
  t.equal(ledger.balance('self:NLC')!.posted, '667')
  const tooMuch = await ledger.createTransfers(conversionTransfers({ id: 'conv-2', from: 'self:NLC', to: 'self:NLR', nlc: 668n, policy }))
  t.same(tooMuch.map(failed), ['exceeds_credits', 'linked_event_failed', 'linked_event_failed'])
  t.equal(ledger.balance('self:NLR')!.posted, '974', 'no NLR was paid for NLC not taken')
  t.same((await ledger.verify()).problems, [])
})

t.test('the typed errors of a refused transfer carry its result and field', async (t) => {
  const { ledger } = await openTestLedger(t)
  const err = await ledger.transfer({ id: 'p', debit: 'self:NLC', credit: 'self:NLR', amount: 1n, currency: 'NLC' }).catch((e: unknown) => e)
  t.ok(err instanceof TransferRefusedError)
  t.equal((err as TransferRefusedError).result, 'accounts_must_have_the_same_currency')
})

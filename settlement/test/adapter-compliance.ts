// One suite every SettlementAdapter passes against its real local chain (Anvil, the Lucid emulator). A
// harness gives the suite a chain: deposits as a user makes them, blocks, and payees it can read back.
import type { Test } from 'tap'
import type { SettlementAdapter } from '../adapter.ts'
import { accountKey, ListedAccounts } from '../accounts.ts'
import { creditConfirmedDeposits } from '../deposit-crediter.ts'
import { merkleRoot } from '../merkle.ts'
import { settlePayouts } from '../payouts.ts'
import { reconcileChain } from '../reconcile.ts'
import type { PayoutReceipt } from '../types.ts'
import { MemoryLedger } from './memory-ledger.ts'

export interface ChainHarness {
  /** A new adapter over the same chain, with a fresh cursor (what a restarted node has). */
  adapter(): Promise<SettlementAdapter>
  depth: number
  /** A user deposits `amount` naming `accountKey`; resolves once the deposit is in a block. */
  deposit(user: number, accountKey: string, amount: bigint): Promise<void>
  /** Adds `n` blocks. */
  mine(n: number): Promise<void>
  /** A chain address for worker `i` that receives payouts. */
  payee(i: number): string
  /** The settlement token a chain address holds. */
  balance(address: string): Promise<bigint>
}

let seq = 0
const fresh = (what: string): string => `did:key:z6Mk${what}${process.pid}x${++seq}`

export function runAdapterCompliance(t: Test, name: string, harness: () => ChainHarness): void {
  t.test(`${name}: a deposit is credited once it has the confirmation depth, not before, to the account it names`, async (t) => {
    const h = harness()
    const adapter = await h.adapter()
    const ledger = new MemoryLedger()
    const alice = fresh('alice')
    const accounts = new ListedAccounts([alice])
    await creditConfirmedDeposits(adapter, ledger, accounts) // move the cursor past earlier tests' deposits
    const before = ledger.nlc(alice)
    await h.deposit(1, accountKey(alice), 1_500n)
    for (let c = 1; c < h.depth; c++) {
      const r = await creditConfirmedDeposits(adapter, ledger, accounts)
      t.equal(r.credited.length, 0, `not credited at ${c} confirmation(s)`)
      t.equal(r.poll.pending.length, 1, 'seen as pending')
      t.equal(r.poll.pending[0]?.confirmations, BigInt(c))
      await h.mine(1)
    }
    const r = await creditConfirmedDeposits(adapter, ledger, accounts)
    t.equal(r.credited.length, 1, `credited at ${h.depth} confirmations`)
    t.match(r.credited[0], new RegExp(`^${adapter.chain}:(0x)?[0-9a-f]{64}:\\d+$`), 'the reference is chain:txhash:index')
    t.equal(ledger.nlc(alice) - before, 1_500n)
    const again = await creditConfirmedDeposits(adapter, ledger, accounts)
    t.equal(again.credited.length + again.duplicates.length, 0, 'the next poll hands out nothing again')
  })

  t.test(`${name}: a replayed deposit credits nothing (a restarted adapter rescans the chain)`, async (t) => {
    const h = harness()
    const ledger = new MemoryLedger()
    const bob = fresh('bob')
    const accounts = new ListedAccounts([bob])
    await h.deposit(1, accountKey(bob), 700n)
    await h.mine(h.depth)
    const first = await creditConfirmedDeposits(await h.adapter(), ledger, accounts)
    t.equal(first.credited.length, 1)
    const replay = await creditConfirmedDeposits(await h.adapter(), ledger, accounts)
    t.equal(replay.credited.length, 0, 'nothing credited on the replay')
    t.same(replay.duplicates, first.credited, 'the same reference comes back as a duplicate')
    t.equal(ledger.nlc(bob), 700n, 'credited once')
  })

  t.test(`${name}: a deposit naming no known account is not credited and reconciliation lists it`, async (t) => {
    const h = harness()
    const adapter = await h.adapter()
    const ledger = new MemoryLedger()
    const accounts = new ListedAccounts()
    const stranger = accountKey(fresh('nobody'))
    await h.deposit(2, stranger, 42n)
    await h.mine(h.depth)
    const r = await creditConfirmedDeposits(adapter, ledger, accounts)
    t.ok(r.unknownAccount.length >= 1, 'not credited')
    const rec = await reconcileChain(adapter, ledger, accounts)
    t.ok(rec.differences.some((d) => d.kind === 'missing-credit' && d.accountKey === stranger && d.amount === 42n), 'listed as a missing credit with its key')
  })

  t.test(`${name}: NLR receipts are paid in one batch anchored by the RFC 6962 root of their leaves`, async (t) => {
    const h = harness()
    const adapter = await h.adapter()
    const ledger = new MemoryLedger()
    const workers = [fresh('w1'), fresh('w2'), fresh('w3')]
    const receipts: PayoutReceipt[] = workers.map((account, i) => ({ id: `${account}/usage/${i}`, account, payee: h.payee(i), amount: BigInt(100 + i) }))
    for (const r of receipts) ledger.earn(r.account, r.amount)
    const before = await Promise.all(receipts.map((r) => h.balance(r.payee)))
    const anchor = await settlePayouts(adapter, ledger, receipts)
    const batch = adapter.prepareBatch(receipts)
    t.equal(anchor.root, Buffer.from(merkleRoot(batch.leaves)).toString('hex'), 'the anchored root is the root of the leaves')
    t.equal(anchor.total, 303n)
    t.equal(anchor.count, 3)
    t.ok(anchor.rootMatches)
    const after = await Promise.all(receipts.map((r) => h.balance(r.payee)))
    t.same(after.map((a, i) => a - (before[i] ?? 0n)), [100n, 101n, 102n], 'each payee received its amount')
    t.same((await ledger.payouts(adapter.chain)).map((p) => p.state), ['posted'], 'the hold is posted')
    t.same(workers.map((w) => ledger.nlr(w)), [0n, 0n, 0n], 'the NLR left the workers')
    await h.mine(h.depth)
    const view = await adapter.chainView()
    const onChain = view.payouts.find((p) => p.root === anchor.root)
    t.ok(onChain?.rootMatches, 'read back from the chain, the root matches what the transaction paid')
  })

  t.test(`${name}: reconciliation lists a missing credit, a credit without deposit and an amount mismatch`, async (t) => {
    const h = harness()
    const adapter = await h.adapter()
    const ledger = new MemoryLedger()
    const carol = fresh('carol')
    const accounts = new ListedAccounts([carol])
    await creditConfirmedDeposits(adapter, ledger, accounts)
    await h.deposit(1, accountKey(carol), 10n)
    await h.deposit(1, accountKey(carol), 20n)
    await h.mine(h.depth)
    const r = await creditConfirmedDeposits(await h.adapter(), new MemoryLedger(), accounts) // read the refs
    const [a, b] = r.poll.confirmed.filter((d) => d.accountKey === accountKey(carol)).map((d) => d.ref)
    if (!a || !b) throw new Error('deposits not seen')
    ledger.forceTopup(adapter.chain, b, carol, 21n)
    const forged = `${adapter.chain}:${adapter.chain.startsWith('evm-') ? '0x' : ''}${'ab'.repeat(32)}:0` as typeof a
    ledger.forceTopup(adapter.chain, forged, carol, 5n)
    const rec = await reconcileChain(adapter, ledger, accounts)
    const mine = rec.differences.filter((d) => 'ref' in d && [a, b, forged].includes(d.ref as typeof a))
    t.same(
      mine.map((d) => d.kind).sort(),
      ['amount-mismatch', 'credit-without-deposit', 'missing-credit'],
      'each difference listed once',
    )
  })
}

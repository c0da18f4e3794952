// The Cardano adapter against Lucid Evolution's emulator (a real ledger implementation run in process): the
// shared adapter suite, deposits that do not count, and payout batches that do not match their root.
import t from 'tap'
import { generateEmulatorAccount, getAddressDetails, Lucid, mintingPolicyToId, scriptFromNative, fromText, type LucidEvolution } from '@lucid-evolution/lucid'
import { accountKey, ListedAccounts } from '../../accounts.ts'
import { creditConfirmedDeposits } from '../../deposit-crediter.ts'
import { reconcileChain } from '../../reconcile.ts'
import { runAdapterCompliance, type ChainHarness } from '../../test/adapter-compliance.ts'
import { MemoryLedger } from '../../test/memory-ledger.ts'
import { CardanoAdapter, depositDatum, PAYOUT_METADATA_LABEL } from '../cardano-adapter.ts'
import { EmulatorChainIndex } from '../emulator-index.ts'

const DEPTH = 3
const ADA = 1_000_000n

interface Chain {
  index: EmulatorChainIndex
  operator: LucidEvolution
  users: LucidEvolution[]
  unit: string
  depositAddress: string
  harness: ChainHarness
  adapter(): CardanoAdapter
}

async function startChain(): Promise<Chain> {
  const op = generateEmulatorAccount({ lovelace: 10_000n * ADA })
  const people = [1, 2, 3].map(() => generateEmulatorAccount({ lovelace: 1_000n * ADA }))
  const index = new EmulatorChainIndex([op, ...people])
  const operator = await Lucid(index, 'Custom')
  operator.selectWallet.fromSeed(op.seedPhrase)
  const users = await Promise.all(
    people.map(async (p) => {
      const l = await Lucid(index, 'Custom')
      l.selectWallet.fromSeed(p.seedPhrase)
      return l
    }),
  )
  const depositAddress = op.address
  const operatorKeyHash = getAddressDetails(op.address).paymentCredential?.hash
  if (!operatorKeyHash) throw new Error('operator address has no payment key')
  // NLC as a native asset minted under the operator's key: users hold some, the operator's wallet pays out
  const policy = scriptFromNative({ type: 'all', scripts: [{ type: 'sig', keyHash: operatorKeyHash }] })
  const unit = mintingPolicyToId(policy) + fromText('NLC')
  let mint = operator.newTx().mintAssets({ [unit]: 10n ** 15n }).attach.MintingPolicy(policy)
  for (const p of people) mint = mint.pay.ToAddress(p.address, { [unit]: 10n ** 12n })
  await (await (await mint.complete()).sign.withWallet().complete()).submit()
  index.awaitBlock(1)
  const payees = new Map<number, string>()
  const adapter = (): CardanoAdapter =>
    new CardanoAdapter({ chain: 'cardano-emulator', index, lucid: operator, operatorKeyHash, depositAddress, unit, depth: DEPTH })
  const harness: ChainHarness = {
    depth: DEPTH,
    adapter: async () => adapter(),
    deposit: async (user, key, amount) => {
      const l = users[user - 1]
      if (!l) throw new Error(`no user ${user}`)
      const tx = await l.newTx().pay.ToAddressWithData(depositAddress, { kind: 'inline', value: depositDatum(key) }, { [unit]: amount }).complete()
      await (await tx.sign.withWallet().complete()).submit()
      index.awaitBlock(1)
    },
    mine: async (n) => index.awaitBlock(n),
    payee: (i) => {
      let a = payees.get(i)
      if (!a) payees.set(i, (a = generateEmulatorAccount({ lovelace: 0n }).address))
      return a
    },
    balance: async (address) => (await index.getUtxos(address)).reduce((s, u) => s + (u.assets[unit] ?? 0n), 0n),
  }
  return { index, operator, users, unit, depositAddress, harness, adapter }
}

t.test('CardanoAdapter against the Lucid Evolution emulator', async (t) => {
  const chain = await startChain()

  runAdapterCompliance(t, 'cardano', () => chain.harness)

  t.test('only outputs at the deposit address with the unit and an inline account datum are deposits', async (t) => {
    const adapter = chain.adapter()
    const ledger = new MemoryLedger()
    const frank = 'did:key:z6MkFrank'
    const accounts = new ListedAccounts([frank])
    await creditConfirmedDeposits(adapter, ledger, accounts)
    const user = chain.users[0]
    if (!user) throw new Error('no user')
    const elsewhere = generateEmulatorAccount({ lovelace: 0n }).address
    const datum = { kind: 'inline' as const, value: depositDatum(accountKey(frank)) }
    const tx = await user
      .newTx()
      .pay.ToAddressWithData(elsewhere, datum, { [chain.unit]: 11n }) // another address, same datum
      .pay.ToAddressWithData(chain.depositAddress, datum, { lovelace: 5n * ADA }) // no NLC, only ada
      .pay.ToAddressWithData(chain.depositAddress, { kind: 'asHash', value: depositDatum(accountKey(frank)) }, { [chain.unit]: 13n }) // datum by hash
      .pay.ToAddress(chain.depositAddress, { [chain.unit]: 17n }) // no datum
      .complete()
    await (await tx.sign.withWallet().complete()).submit()
    chain.index.awaitBlock(DEPTH + 1)
    const r = await creditConfirmedDeposits(adapter, ledger, accounts)
    t.equal(r.poll.confirmed.length, 0, 'none of them is a deposit')
    t.equal(ledger.nlc(frank), 0n)
  })

  t.test('a batch paid with a root that does not match its outputs is listed by reconciliation', async (t) => {
    const adapter = chain.adapter()
    const ledger = new MemoryLedger()
    const w = 'did:key:z6MkCardanoWorker'
    const receipts = [{ id: 'cardano-root/1', account: w, payee: chain.harness.payee(20), amount: 30n }]
    const batch = adapter.prepareBatch(receipts)
    const lie = { ...batch, root: 'ff'.repeat(32) }
    const anchor = await adapter.payBatch(lie)
    t.equal(anchor.rootMatches, false, 'the chain paid outputs whose root is not the anchored one')
    ledger.earn(w, 30n)
    await ledger.holdPayout(adapter.chain, lie.root, receipts)
    await ledger.postPayout(lie.root, anchor.ref)
    const rec = await reconcileChain(adapter, ledger, new ListedAccounts())
    t.ok(rec.differences.some((d) => d.kind === 'payout-root-mismatch' && d.root === lie.root), 'payout-root-mismatch')
  })

  t.test('a payout batch in metadata not signed by the operator is not a payout', async (t) => {
    const adapter = chain.adapter()
    const user = chain.users[1]
    if (!user) throw new Error('no user')
    const receipts = [{ id: 'forged/1', account: 'did:key:z6MkMallory', payee: chain.harness.payee(21), amount: 9n }]
    const batch = adapter.prepareBatch(receipts)
    const meta = { v: 1, root: batch.root, total: '9', receipts: [[Buffer.from(batch.leaves[0]!.subarray(0, 32)).toString('hex'), Buffer.from(batch.leaves[0]!.subarray(32, 64)).toString('hex')]] }
    const tx = await user.newTx().pay.ToAddress(chain.harness.payee(21), { [chain.unit]: 9n }).attachMetadata(PAYOUT_METADATA_LABEL, meta).complete()
    await (await tx.sign.withWallet().complete()).submit()
    chain.index.awaitBlock(DEPTH)
    const view = await adapter.chainView()
    t.notOk(view.payouts.some((p) => p.root === batch.root), 'ignored: only the operator pays batches')
  })
})

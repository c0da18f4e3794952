// The EVM adapter against a real Anvil: the shared adapter suite, a reorganisation before the depth, a
// look-alike contract, and payout batches the contract refuses.
import t from 'tap'
import { createPublicClient, createTestClient, createWalletClient, http, type Address, type Hex, type PublicClient } from 'viem'
import { mnemonicToAccount, privateKeyToAccount } from 'viem/accounts'
import { anvil as anvilRequirement, requireOrSkip } from '../../../scripts/testing/requirements.ts'
import type { SettlementAdapter } from '../../adapter.ts'
import { accountKey, ListedAccounts } from '../../accounts.ts'
import { creditConfirmedDeposits } from '../../deposit-crediter.ts'
import { PayoutFailedError } from '../../errors.ts'
import { settlePayouts } from '../../payouts.ts'
import { reconcileChain } from '../../reconcile.ts'
import { runAdapterCompliance, type ChainHarness } from '../../test/adapter-compliance.ts'
import { MemoryLedger } from '../../test/memory-ledger.ts'
import { ANVIL_MNEMONIC, startAnvil, type AnvilProcess } from '../anvil.ts'
import { nlcAbi, settlementAbi } from '../artifacts.ts'
import { compileSolidity } from '../compile.ts'
import { deploySettlement, type Deployed } from '../deploy.ts'
import { EvmAdapter } from '../evm-adapter.ts'
import { fileURLToPath } from 'node:url'

const DEPTH = 3

interface Chain {
  anvil: AnvilProcess
  client: PublicClient
  deployed: Deployed
  harness: ChainHarness
  test: ReturnType<typeof createTestClient>
  userDeposit(user: number, account: string, amount: bigint, to?: Address): Promise<Hex>
  approve(user: number, amount: bigint): Promise<void>
}

async function startChain(): Promise<Chain> {
  const anvil = await startAnvil()
  const transport = http(anvil.url)
  const client = createPublicClient({ transport, pollingInterval: 20 }) as PublicClient
  const wallet = createWalletClient({ transport, pollingInterval: 20 })
  const test = createTestClient({ mode: 'anvil', transport, pollingInterval: 20 })
  const operator = mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: 0 })
  const deployed = await deploySettlement(client, wallet, operator, operator.address)
  const users = [1, 2, 3].map((i) => mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: i }))
  const send = async (hash: Hex): Promise<void> => {
    const r = await client.waitForTransactionReceipt({ hash })
    if (r.status !== 'success') throw new Error(`${hash} reverted`)
  }
  // users hold NLC; the settlement contract holds NLC to pay out (the operator funds it)
  for (const u of users) await send(await wallet.writeContract({ address: deployed.token, abi: nlcAbi, functionName: 'mint', args: [u.address, 10n ** 24n], account: operator, chain: null }))
  await send(await wallet.writeContract({ address: deployed.token, abi: nlcAbi, functionName: 'mint', args: [deployed.settlement, 10n ** 24n], account: operator, chain: null }))
  const user = (i: number): (typeof users)[number] => {
    const u = users[i - 1]
    if (!u) throw new Error(`no user ${i}`)
    return u
  }
  const approve = async (i: number, amount: bigint, to: Address = deployed.settlement): Promise<void> => {
    await send(await wallet.writeContract({ address: deployed.token, abi: nlcAbi, functionName: 'approve', args: [to, amount], account: user(i), chain: null }))
  }
  /** Deposits what `approve` allowed (one block). */
  const depositOnly = async (i: number, account: string, amount: bigint, to: Address = deployed.settlement): Promise<Hex> => {
    const u = user(i)
    const hash = await wallet.writeContract({ address: to, abi: settlementAbi, functionName: 'deposit', args: [`0x${account}`, amount], account: u, chain: null })
    await send(hash)
    return hash
  }
  const userDeposit = async (i: number, account: string, amount: bigint, to: Address = deployed.settlement): Promise<Hex> => {
    await approve(i, amount, to)
    return depositOnly(i, account, amount, to)
  }
  const harness: ChainHarness = {
    depth: DEPTH,
    adapter: () => EvmAdapter.connect({ client, wallet, operator, settlement: deployed.settlement, depth: DEPTH, startHeight: deployed.settlementBlock }),
    deposit: async (user, key, amount) => {
      await userDeposit(user, key, amount)
    },
    mine: (n) => test.mine({ blocks: n }),
    payee: (i) => privateKeyToAccount(`0x${(0xbeef00n + BigInt(i)).toString(16).padStart(64, '0')}`).address,
    balance: (address) => client.readContract({ address: deployed.token, abi: nlcAbi, functionName: 'balanceOf', args: [address as Address] }),
  }
  return { anvil, client, deployed, harness, test, userDeposit: depositOnly, approve }
}

t.test('EvmAdapter against Anvil', async (t) => {
  if (!requireOrSkip(t, anvilRequirement)) return
  const chain = await startChain()
  t.teardown(() => chain.anvil.stop())

  runAdapterCompliance(t, 'evm', () => chain.harness)

  t.test('a deposit a reorganisation removes before the depth is never credited', async (t) => {
    const adapter = await chain.harness.adapter()
    const ledger = new MemoryLedger()
    const dave = 'did:key:z6MkDave'
    const accounts = new ListedAccounts([dave])
    await chain.approve(1, 900n) // its own block, before the fork point
    await creditConfirmedDeposits(adapter, ledger, accounts)
    const snapshot = await chain.test.snapshot()
    await chain.userDeposit(1, accountKey(dave), 900n) // the one block the reorganisation removes
    await chain.test.mine({ blocks: DEPTH - 2 }) // one confirmation short
    const seen = await creditConfirmedDeposits(adapter, ledger, accounts)
    t.equal(seen.poll.pending.length, 1, 'pending with depth-1 confirmations')
    t.equal(seen.poll.pending[0]?.confirmations, BigInt(DEPTH - 1))
    const ref = seen.poll.pending[0]?.ref
    await chain.test.revert({ id: snapshot }) // the block holding the deposit is gone
    await chain.test.mine({ blocks: DEPTH + 2 }) // the other branch grows past the depth
    const after = await creditConfirmedDeposits(adapter, ledger, accounts)
    t.same(after.poll.dropped, [ref], 'reported as dropped by a reorganisation')
    t.equal(after.credited.length, 0, 'nothing credited')
    t.equal(ledger.nlc(dave), 0n)
    const rec = await reconcileChain(adapter, ledger, accounts)
    t.notOk(rec.differences.some((d) => 'ref' in d && d.ref === ref), 'the chain and the ledger agree: no deposit, no credit')
  })

  t.test('a look-alike contract emitting the same Deposit event credits nothing', async (t) => {
    const impostorSource = fileURLToPath(new URL('./fixtures/Impostor.sol', import.meta.url))
    const { Impostor } = compileSolidity([impostorSource])
    if (!Impostor) throw new Error('Impostor not compiled')
    const wallet = createWalletClient({ transport: http(chain.anvil.url) })
    const mallory = mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: 4 })
    const hash = await wallet.deployContract({ abi: Impostor.abi, bytecode: Impostor.bytecode, account: mallory, chain: null })
    const impostor = (await chain.client.waitForTransactionReceipt({ hash })).contractAddress
    if (!impostor) throw new Error('no impostor address')
    const adapter = await chain.harness.adapter()
    const ledger = new MemoryLedger()
    const eve = 'did:key:z6MkEve'
    const accounts = new ListedAccounts([eve])
    await chain.client.waitForTransactionReceipt({
      hash: await wallet.writeContract({ address: impostor, abi: settlementAbi, functionName: 'deposit', args: [`0x${accountKey(eve)}`, 10n ** 21n], account: mallory, chain: null }),
    })
    await chain.test.mine({ blocks: DEPTH })
    const r = await creditConfirmedDeposits(adapter, ledger, accounts)
    t.equal(ledger.nlc(eve), 0n, 'no NLC for an event the Settlement contract did not emit')
    t.equal(r.credited.length, 0)
  })

  t.test('a batch whose root does not match its receipts is refused by the contract; the hold is voided', async (t) => {
    const adapter = await chain.harness.adapter()
    const ledger = new MemoryLedger()
    const w = 'did:key:z6MkWorkerRoot'
    ledger.earn(w, 50n)
    const receipts = [{ id: 'root-test/1', account: w, payee: chain.harness.payee(7), amount: 50n }]
    const batch = adapter.prepareBatch(receipts)
    const tampered = { ...batch, root: batch.root.replace(/^./, (c) => (c === '0' ? '1' : '0')) }
    const before = await chain.harness.balance(chain.harness.payee(7))
    await t.rejects(adapter.payBatch(tampered), PayoutFailedError)
    await t.rejects(adapter.payBatch(tampered), /RootMismatch/)
    t.equal(await chain.harness.balance(chain.harness.payee(7)), before, 'nothing paid')
    // through the two-phase path: a receipt amount changed after the root was taken
    const altered = { ...batch, receipts: [{ ...receipts[0]!, amount: 49n }] }
    await t.rejects(adapter.payBatch(altered), /RootMismatch/)
    // a node whose batch builder was tampered with: the chain refuses, the ledger's hold is voided
    const tampering: SettlementAdapter = {
      chain: adapter.chain,
      depth: adapter.depth,
      poll: () => adapter.poll(),
      prepareBatch: (r) => ({ ...adapter.prepareBatch(r), root: tampered.root }),
      payBatch: (b) => adapter.payBatch(b),
      chainView: () => adapter.chainView(),
      status: () => adapter.status(),
    }
    await t.rejects(settlePayouts(tampering, ledger, receipts), PayoutFailedError)
    t.same((await ledger.payouts(adapter.chain)).map((p) => p.state), ['voided'], 'the hold is voided')
    t.equal(ledger.nlr(w), 50n, 'the NLR is back with the worker')
  })

  t.test('a receipt is paid at most once, in any batch', async (t) => {
    const adapter = await chain.harness.adapter()
    const w = 'did:key:z6MkWorkerTwice'
    const r1 = { id: 'twice/1', account: w, payee: chain.harness.payee(8), amount: 5n }
    const r2 = { id: 'twice/2', account: w, payee: chain.harness.payee(8), amount: 6n }
    await adapter.payBatch(adapter.prepareBatch([r1]))
    await t.rejects(adapter.payBatch(adapter.prepareBatch([r1])), /BatchAlreadyPaid/, 'the same batch again')
    await t.rejects(adapter.payBatch(adapter.prepareBatch([r2, r1])), /ReceiptAlreadyPaid/, 'the receipt inside another batch')
  })
})

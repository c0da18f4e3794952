// The settlement service joined to a real daemon's ledger, against a real local chain (Anvil): deposits
// naming the node's account become NLC top-ups only at the confirmation depth, once each, across kill -9 at
// the step boundaries (credits made but cursor unsaved; NLR held but not paid; paid but not posted); NLR is
// paid out on chain in a batch and posted; `noir settle reconcile` finds exactly the differences planted (a
// deposit with dust below one µNLC, a deposit for an account nobody has) and nothing else.
import t from 'tap'
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createPublicClient, createTestClient, createWalletClient, http, type Address, type Hex, type PublicClient } from 'viem'
import { mnemonicToAccount, privateKeyToAccount } from 'viem/accounts'
import { DaemonCluster, NOIR_BIN, eventually, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import { anvil as anvilRequirement, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { accountKey } from '../../settlement/accounts.ts'
import { ANVIL_MNEMONIC, startAnvil } from '../../settlement/evm/anvil.ts'
import { nlcAbi, settlementAbi } from '../../settlement/evm/artifacts.ts'
import { deploySettlement } from '../../settlement/evm/deploy.ts'
import { FAILPOINTS_ENV } from '../../core/failpoints.ts'

const DEPTH = 3
const UNIT = 10n ** 12n // token base units per µNLC (18 decimals)

interface Balance { account: string; posted: string; held: string; available: string }
const wallet = async (d: DaemonHandle, c: 'NLC' | 'NLR'): Promise<Balance> => (await d.api.get<{ balances: Balance[] }>('/v1/wallet')).balances.find((b) => b.account === `self:${c}`)!

function noir(home: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [NOIR_BIN, '--home', home, ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

t.test('settlement joined to a real daemon on a real chain', async (t) => {
  if (!requireOrSkip(t, anvilRequirement)) return
  const anvil = await startAnvil()
  t.teardown(() => anvil.stop())
  const transport = http(anvil.url)
  const client = createPublicClient({ transport, pollingInterval: 20 }) as PublicClient
  const chainWallet = createWalletClient({ transport, pollingInterval: 20 })
  const test = createTestClient({ mode: 'anvil', transport, pollingInterval: 20 })
  const operator = mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: 0 })
  const user = mnemonicToAccount(ANVIL_MNEMONIC, { addressIndex: 1 })
  const deployed = await deploySettlement(client, chainWallet, operator, operator.address)
  const send = async (hash: Hex): Promise<void> => {
    const r = await client.waitForTransactionReceipt({ hash })
    if (r.status !== 'success') throw new Error(`${hash} reverted`)
  }
  await send(await chainWallet.writeContract({ address: deployed.token, abi: nlcAbi, functionName: 'mint', args: [user.address, 10n ** 24n], account: operator, chain: null }))
  await send(await chainWallet.writeContract({ address: deployed.token, abi: nlcAbi, functionName: 'mint', args: [deployed.settlement, 10n ** 24n], account: operator, chain: null }))
  await send(await chainWallet.writeContract({ address: deployed.token, abi: nlcAbi, functionName: 'approve', args: [deployed.settlement, 10n ** 24n], account: user, chain: null }))
  const deposit = async (key: string, amount: bigint): Promise<void> => {
    await send(await chainWallet.writeContract({ address: deployed.settlement, abi: settlementAbi, functionName: 'deposit', args: [`0x${key}`, amount], account: user, chain: null }))
  }
  const tokens = (a: Address): Promise<bigint> => client.readContract({ address: deployed.token, abi: nlcAbi, functionName: 'balanceOf', args: [a] })

  // the operator key lives in a file only its owner can read
  const keyDir = mkdtempSync(join(tmpdir(), 'noir-settle-key-'))
  t.teardown(() => rmSync(keyDir, { recursive: true, force: true }))
  const keyFile = join(keyDir, 'operator.key')
  const hd = operator.getHdKey().privateKey
  if (!hd) throw new Error('no operator private key')
  writeFileSync(keyFile, `0x${Buffer.from(hd).toString('hex')}\n`, { mode: 0o600 })

  const cluster = new DaemonCluster()
  t.teardown(() => cluster.cleanup())
  const config = { settlement: { evm: { rpcUrl: anvil.url, contract: deployed.settlement, startHeight: Number(deployed.settlementBlock), depth: DEPTH, pollMs: 200, operatorKeyFile: keyFile } } }
  let d = await cluster.start({ config: config as never, emptyWallet: true })
  const home = d.home
  const key = accountKey(d.did)
  const restart = async (failpoint?: string): Promise<DaemonHandle> => {
    if (d.running) await d.kill()
    d = await cluster.start({ home, ...(failpoint ? { env: { [FAILPOINTS_ENV]: failpoint } } : {}) })
    return d
  }

  await t.test('a deposit is credited at the depth, not before, and once across a crash between credit and cursor', async (t) => {
    d = await restart('settlement.poll.credited') // armed: dies right after the first credit, before saving the cursor
    await deposit(key, 5n * 10n ** 18n) // 5 NLC
    await new Promise((r) => setTimeout(r, 800)) // several polls at depth 1
    t.equal((await wallet(d, 'NLC')).posted, '0', 'one confirmation: nothing credited')
    const s = await d.api.get<{ pending: Array<{ confirmations: string; amount: string }> }>('/v1/settlement')
    t.same(s.pending.map((p) => [p.confirmations, p.amount]), [['1', String(5n * 10n ** 18n)]], 'the deposit shows as pending with its confirmations')
    await test.mine({ blocks: DEPTH - 1 })
    const died = await d.exited
    t.equal(died.signal, 'SIGKILL', 'the daemon died at settlement.poll.credited (credit durable, cursor not saved)')
    d = await restart()
    await eventually(async () => (await wallet(d, 'NLC')).posted === '5000000', 20_000)
    await new Promise((r) => setTimeout(r, 600)) // more polls: the rescan must credit nothing twice
    t.equal((await wallet(d, 'NLC')).posted, '5000000', 'credited exactly once: 5 NLC = 5,000,000 µNLC')
    const poll = await noir(home, 'settle', 'poll', '--json')
    t.equal(poll.code, 0, poll.stderr)
    t.same(JSON.parse(poll.stdout).credited, [], 'a poll now credits nothing')
    const status = await noir(home, 'settle', '--json')
    t.ok(BigInt(JSON.parse(status.stdout).creditedThrough) >= deployed.settlementBlock, 'the cursor is saved past the deposit')
  })

  await t.test('reconcile lists exactly the planted differences', async (t) => {
    await deposit(key, 2n * 10n ** 18n + 7n) // 2 NLC and 7 base units of dust below one µNLC
    const stranger = accountKey('did:key:z6MkNobodyHasThisAccount')
    await deposit(stranger, 10n ** 18n)
    await test.mine({ blocks: DEPTH })
    await eventually(async () => (await wallet(d, 'NLC')).posted === '7000000', 20_000)
    const r = await noir(home, 'settle', 'reconcile', '--json')
    t.equal(r.code, 1, 'exit 1: there are differences')
    const doc = JSON.parse(r.stdout) as { differences: Array<{ kind: string; accountKey?: string; ledgerAmount?: string; chainAmount?: string }>; checked: { deposits: number; topups: number } }
    t.same(doc.differences.map((x) => x.kind).sort(), ['amount-mismatch', 'missing-credit'])
    const dust = doc.differences.find((x) => x.kind === 'amount-mismatch')!
    t.equal(BigInt(dust.chainAmount!) - BigInt(dust.ledgerAmount!), 7n, 'the dust is what the ledger did not credit')
    t.equal(doc.differences.find((x) => x.kind === 'missing-credit')!.accountKey, stranger, 'a deposit for an unknown account is listed, not credited')
    t.same([doc.checked.deposits, doc.checked.topups], [3, 2])
  })

  await t.test('NLR is paid out on chain: held, paid, posted; a repeat pays nothing more', async (t) => {
    await d.api.post('/v1/ledger/transfer', { id: 'earned-1', debit: 'treasury:NLR', credit: 'self:NLR', amount: '3000000', currency: 'NLR' })
    const payee = privateKeyToAccount(`0x${'be'.repeat(32)}`).address
    const paid = await noir(home, 'settle', 'payout', '--to', payee, '--amount', '1000000', '--id', 'r-1', '--json')
    t.equal(paid.code, 0, paid.stderr)
    const doc = JSON.parse(paid.stdout) as { anchor: string; replay: boolean; receipt: { amount: string } }
    t.match(doc.anchor, /^evm-31337:0x[0-9a-f]{64}:\d+$/)
    t.equal(doc.replay, false)
    t.equal(await tokens(payee), 1_000_000n * UNIT, 'the payee holds 1 NLR worth of tokens')
    t.equal((await wallet(d, 'NLR')).available, '2000000', 'the wallet paid 1,000,000 µNLR')
    const again = await noir(home, 'settle', 'payout', '--to', payee, '--amount', '1000000', '--id', 'r-1', '--json')
    t.equal(JSON.parse(again.stdout).replay, true, 'the same receipt again is a replay')
    t.equal(await tokens(payee), 1_000_000n * UNIT, 'and pays nothing more')
    const other = await noir(home, 'settle', 'payout', '--to', payee, '--amount', '5', '--id', 'r-1')
    t.not(other.code, 0, 'the same receipt id with another amount is refused')
    t.match(other.stderr, /IdempotencyConflictError|amount/)
    const tooMuch = await noir(home, 'settle', 'payout', '--to', payee, '--amount', '999000000', '--id', 'r-big')
    t.not(tooMuch.code, 0, 'more than the wallet holds is refused')
    t.equal(await tokens(payee), 1_000_000n * UNIT, 'and nothing was paid')
    t.equal((await wallet(d, 'NLR')).available, '2000000')
    // hostile bodies: each a typed error, nothing held or paid
    const bad: Array<[unknown, string]> = [
      [{ payee, amount: '-5' }, 'a negative amount'], [{ payee, amount: '1e9' }, 'an exponent'], [{ payee, amount: '0' }, 'zero'],
      [{ payee, amount: 5 }, 'a number, not digits'], [{ payee: '../../etc/passwd', amount: '1' }, 'a path as payee'],
      [{ payee, amount: '1', id: '../x' }, 'a path as receipt id'], [{ payee, amount: '1', admin: true }, 'an unknown field'],
    ]
    for (const [body, what] of bad) {
      const e = await d.api.post('/v1/settlement/payouts', body).then(() => null, (x: { name: string; status: number }) => x)
      t.same([e?.name, e?.status], ['InvalidRequestError', 400], what)
    }
    t.equal((await wallet(d, 'NLR')).available, '2000000', 'none of them held anything')
    t.equal(await tokens(payee), 1_000_000n * UNIT)
  })

  for (const [step, what] of [['settlement.payout.held', 'held, not paid: the restart pays it'], ['settlement.payout.paid', 'paid, not posted: the restart posts it']] as const) {
    await t.test(`kill -9 at ${step} (${what})`, async (t) => {
      const payee = privateKeyToAccount(`0x${(step.endsWith('held') ? 'c1' : 'c2').repeat(32)}`).address
      d = await restart(step)
      const before = BigInt((await wallet(d, 'NLR')).available)
      const call = d.api.post('/v1/settlement/payouts', { payee, amount: '500000', id: `crash-${step.split('.').pop()}` }).then(() => 'answered', () => 'dropped')
      t.equal((await d.exited).signal, 'SIGKILL', 'the daemon died at the failpoint')
      t.equal(await call, 'dropped', 'the client saw its connection drop')
      d = await restart()
      await eventually(async () => (await tokens(payee)) === 500_000n * UNIT && (await wallet(d, 'NLR')).held === '0', 20_000)
      t.equal((await wallet(d, 'NLR')).available, String(before - 500_000n), 'paid once, posted once')
      const batches = (await d.api.get<{ payouts: Array<{ state: string; receipts: Array<{ id: string }> }> }>('/v1/settlement/payouts')).payouts
      t.equal(batches.find((b) => b.receipts[0]?.id === `crash-${step.split('.').pop()}`)?.state, 'posted')
    })
  }

  await t.test('after all that: the ledger verifies and the payouts reconcile', async (t) => {
    const v = await noir(home, 'ledger', 'verify', '--json')
    t.equal(v.code, 0, v.stdout.slice(0, 400))
    const r = JSON.parse((await noir(home, 'settle', 'reconcile', '--json')).stdout) as { differences: Array<{ kind: string }>; checked: { payouts: number } }
    t.equal(r.checked.payouts, 3, 'three batches paid on chain')
    t.same(r.differences.map((x) => x.kind).sort(), ['amount-mismatch', 'missing-credit'], 'no payout difference: only the planted deposits')
  })
})

t.test('settlement config is refused loudly, never defaulted', async (t) => {
  const { settlementConfig } = await import('../node-services/settlement-config.ts')
  const dir = mkdtempSync(join(tmpdir(), 'noir-settle-cfg-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const ok = { rpcUrl: 'http://127.0.0.1:8545', contract: `0x${'11'.repeat(20)}`, startHeight: 1 }
  t.equal(settlementConfig(undefined, dir), undefined, 'absent: no settlement')
  t.equal(settlementConfig({ evm: ok }, dir)?.depth, 12, 'defaults for what is left out')
  const bad: Array<[unknown, RegExp]> = [
    [{ evm: { ...ok, depth: 0 } }, /settlement\.evm\.depth/],
    [{ evm: { ...ok, depth: 2.5 } }, /settlement\.evm\.depth/],
    [{ evm: { ...ok, contract: '0x12' } }, /settlement\.evm\.contract/],
    [{ evm: { ...ok, rpcUrl: 'file:///etc/passwd' } }, /settlement\.evm\.rpcUrl/],
    [{ evm: { ...ok, startHeight: -1 } }, /settlement\.evm\.startHeight/],
    [{ evm: { ...ok, decimals: 2 } }, /settlement\.evm\.decimals/],
    [{ evm: { ...ok, operatorKey: '0xabc' } }, /operatorKey' is not a field|settlement\.evm\.operatorKey/],
    [{ cardano: {} }, /unknown field 'cardano'/],
  ]
  for (const [section, re] of bad) t.throws(() => settlementConfig(section, dir), { name: 'ConfigError', message: re }, JSON.stringify(section))
  const loose = join(dir, 'loose.key')
  writeFileSync(loose, `0x${'ab'.repeat(32)}`, { mode: 0o644 })
  t.throws(() => settlementConfig({ evm: { ...ok, operatorKeyFile: loose } }, dir), { name: 'ConfigError', message: /readable by others/ }, 'a key file others can read is refused')
  const notKey = join(dir, 'not.key')
  writeFileSync(notKey, 'hello', { mode: 0o600 })
  t.throws(() => settlementConfig({ evm: { ...ok, operatorKeyFile: notKey } }, dir), { name: 'ConfigError', message: /one private key/ })
  const good = join(dir, 'good.key')
  writeFileSync(good, `0x${'ab'.repeat(32)}\n`, { mode: 0o600 })
  t.equal(settlementConfig({ evm: { ...ok, operatorKeyFile: 'good.key' } }, dir)?.operatorKey, `0x${'ab'.repeat(32)}`, 'a relative path is under the home')
})

// Metering benchmark (spec/ledger.md "Metering"): the cost of one usage record on the nodes, the whole path a
// record takes, with the real parts in one process (the mesh hop left out): the provider signs the record and
// stores it (level); the consumer verifies it, judges it against what it observed, countersigns it, stores it,
// pays it from its window's hold and holds the next window (two synced ledger transfers); the provider checks
// both signatures, stores the answer and credits the accepted NLC as NLR (three linked synced transfers).
// Printed: CPU and wall time per record, and what that costs a node per replica at the default 60 s record
// interval, beside the same records' signatures and checks alone (no stores, no ledger) in the same run.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NodeKey } from '../identity/keys.ts'
import { LevelKvStore } from '../core/level-kv-store.ts'
import { Ledger, STANDARD_ACCOUNTS } from '../ledger/ledger.ts'
import { LedgerEarnings, LedgerEscrow } from '../appliance/node-services/ledger-escrow.ts'
import { judgeUsage } from '../actors/usage/judge.ts'
import { answerUsage, signUsage, usageAmount, verifyAnswered, verifyUsage, type UsageBody } from '../actors/usage/record.ts'
import { KvUsageStore } from '../actors/usage/store.ts'
import { printSection } from './report.ts'

const N = Number(process.env.NOIR_BENCH_METERING_N ?? 2000)
const INTERVAL_MS = 60_000
const PRICE = 250_000n // µNLC per replica-hour
const dir = mkdtempSync(join(tmpdir(), 'noir-metering-bench-'))
const provider = NodeKey.generate()
const consumer = NodeKey.generate()
const consumerLedger = await Ledger.open({ location: join(dir, 'c-ledger'), key: consumer })
const providerLedger = await Ledger.open({ location: join(dir, 'p-ledger'), key: provider })
await consumerLedger.createAccounts(STANDARD_ACCOUNTS)
await providerLedger.createAccounts(STANDARD_ACCOUNTS)
await consumerLedger.topup('bench', 10n ** 15n)
const escrow = new LedgerEscrow(() => consumerLedger)
const earnings = new LedgerEarnings(() => providerLedger, { nlrPerNlc: 1n, feeBps: 100 })
const cStore = new KvUsageStore(await LevelKvStore.open(join(dir, 'c-store')))
const pStore = new KvUsageStore(await LevelKvStore.open(join(dir, 'p-store')))
const window = usageAmount(PRICE, 120_000)

const body = (contractId: string, seq: number): UsageBody => {
  const from = 1_700_000_000_000 + seq * INTERVAL_MS
  return { v: 1, contractId, deploymentId: 'd', slot: 's0', consumer: consumer.did, provider: provider.did, seq, from, to: from + INTERVAL_MS, replicaMs: INTERVAL_MS, cpuMs: 1200, memoryByteMs: String(32n * 2n ** 20n * 60_000n), egressBytes: '1000', pricePerHour: String(PRICE), amount: String(usageAmount(PRICE, INTERVAL_MS)) }
}
const observation = { start: 1_600_000_000_000, end: null }

/** The signatures and checks of one record, nothing stored or moved. */
function checksOnly(contractId: string, seq: number): void {
  const rec = signUsage(provider, body(contractId, seq))
  const b = verifyUsage(rec)
  const j = judgeUsage({ body: b, price: PRICE, observation, now: b.to + 500 })
  const answered = answerUsage(consumer, rec, { ...j, at: b.to + 500 })
  verifyAnswered(answered)
}

/** The whole path of one record on both nodes. */
async function fullPath(contractId: string, seq: number): Promise<void> {
  const rec = signUsage(provider, body(contractId, seq))
  await pStore.put({ side: 'provider', record: rec, status: 'pending', tries: 0, updatedAt: 0 })
  const b = verifyUsage(rec)
  const j = judgeUsage({ body: b, price: PRICE, observation, now: b.to + 500, cap: window })
  const answered = answerUsage(consumer, rec, { ...j, at: b.to + 500 })
  await cStore.put({ side: 'consumer', record: answered, status: j.verdict, updatedAt: 0 })
  await escrow.settle(contractId, seq, BigInt(j.acceptedAmount))
  await escrow.hold(contractId, seq + 1, window, 150)
  const checked = verifyAnswered(answered)
  await pStore.put({ side: 'provider', record: checked, status: checked.answer.verdict, updatedAt: 0 })
  await earnings.credit(contractId, seq, BigInt(checked.answer.acceptedAmount))
}

async function measure(label: string, fn: (i: number) => unknown | Promise<unknown>): Promise<{ cpuUs: number; wallUs: number }> {
  for (let i = 0; i < 50; i++) await fn(-1 - i) // warm-up
  const c0 = process.cpuUsage()
  const t0 = performance.now()
  for (let i = 0; i < N; i++) await fn(i)
  const wall = performance.now() - t0
  const c = process.cpuUsage(c0)
  void label
  return { cpuUs: (c.user + c.system) / N, wallUs: (wall * 1000) / N }
}

// contract per 20 records (a contract's windows are held in order); the first window of each is held first
const contractOf = (i: number): { id: string; seq: number } => ({ id: `c${Math.floor((i + 1000) / 20)}`, seq: (i + 1000) % 20 })
const checks = await measure('checks', (i) => {
  const { id, seq } = contractOf(i)
  checksOnly(id, seq)
})
for (let k = 0; k * 20 < N + 1000; k++) await escrow.hold(`c${k}`, 0, window, 3600)
const full = await measure('full', async (i) => {
  const { id, seq } = contractOf(i)
  await fullPath(id, seq)
})
const verified = (await consumerLedger.verify()).ok && (await providerLedger.verify()).ok
await consumerLedger.close()
await providerLedger.close()
rmSync(dir, { recursive: true, force: true })
if (!verified) throw new Error('a ledger did not verify after the run')

const share = (us: number): number => (us / 1000 / INTERVAL_MS) * 100 // % of one core per replica
printSection(`metering (${N.toLocaleString('en-US')} records, one after another; both nodes in one process, mesh hop left out)`, [
  { name: 'CPU per record, whole path (both nodes)', value: full.cpuUs, unit: 'µs', baseline: { name: 'signatures and checks alone', value: checks.cpuUs }, better: 'lower' },
  { name: '  wall time per record (5 synced transfers)', value: full.wallUs, unit: 'µs', baseline: { name: 'signatures and checks alone', value: checks.wallUs }, better: 'lower' },
  { name: '  share of one core per replica at 60 s', value: share(full.cpuUs), unit: '%', better: 'lower' },
  { name: '  records/s one core could meter', value: 1e6 / full.cpuUs, unit: 'rec/s', better: 'higher' },
])

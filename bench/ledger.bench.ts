// Ledger benchmarks (spec/ledger.md "Measured"): transfers appended per second through the ledger (checked,
// hash-logged, durable: one synced level batch per group commit) beside raw synced level batch writes of the
// same entry bytes in the same batch sizes; `ledger verify` entries per second; inclusion proof size and time
// at 1M entries. NOIR_BENCH_LEDGER_N sets the log size (default 1,000,000).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { NodeKey } from '../identity/keys.ts'
import { Ledger, STANDARD_ACCOUNTS } from '../ledger/ledger.ts'
import { checkInclusionProofDocument } from '../ledger/proof-document.ts'
import { encodeEntry } from '../ledger/entry-codec.ts'
import { leafHash } from '../ledger/merkle.ts'
import { percentile, printSection } from './report.ts'
import type { TransferInit } from '../ledger/types.ts'

const N = Number(process.env.NOIR_BENCH_LEDGER_N ?? 1_000_000)
const CHUNK = 1000 // transfers per request
const IN_FLIGHT = 8 // requests in flight (they share group commits)
const dir = mkdtempSync(join(tmpdir(), 'noir-ledger-bench-'))
const key = NodeKey.generate()
const ledger = await Ledger.open({ location: join(dir, 'ledger'), key })
await ledger.createAccounts(STANDARD_ACCOUNTS)

const chunk = (start: number): TransferInit[] =>
  Array.from({ length: CHUNK }, (_, k) => ({ id: `t${start + k}`, debit: 'external:NLC', credit: 'self:NLC', amount: BigInt(1 + ((start + k) % 997)), currency: 'NLC' as const }))

// ---- appends through the ledger ---------------------------------------------------------------------------
let next = 0
let t0 = performance.now()
let firstWindow = 0
const WINDOW = Math.min(200_000, N)
await Promise.all(
  Array.from({ length: IN_FLIGHT }, async () => {
    while (next < N) {
      const start = next
      next += CHUNK
      const rs = await ledger.createTransfers(chunk(start))
      if (!rs[0]!.ok) throw new Error(JSON.stringify(rs[0]))
      if (firstWindow === 0 && next >= WINDOW) firstWindow = (performance.now() - t0) / 1000
    }
  }),
)
const appendSecs = (performance.now() - t0) / 1000
const perSecond = N / appendSecs
const firstRate = WINDOW / firstWindow
const commits = ledger.stats.commits
await ledger.checkpoint()

// ---- raw level: the same entry bytes, the same batch sizes, synced ---------------------------------------
const raw = new Level<string, Uint8Array>(join(dir, 'raw'), { keyEncoding: 'utf8', valueEncoding: 'view' })
await raw.open()
const perCommit = Math.max(1, Math.round(WINDOW / Math.max(1, commits * (WINDOW / N))))
const sample = (await ledger.entry(100)).bytes
t0 = performance.now()
for (let i = 0; i < WINDOW; i += perCommit) {
  const ops = []
  for (let j = i; j < Math.min(WINDOW, i + perCommit); j++) {
    const bytes = encodeEntry({ kind: 'transfer', seq: j, ts: Date.now(), id: `t${j}`, debit: 'external:NLC', credit: 'self:NLC', amount: BigInt(1 + (j % 997)), currency: 'NLC', flags: [] })
    ops.push({ type: 'put' as const, key: 'e:' + j.toString(16).padStart(12, '0'), value: Buffer.concat([leafHash(bytes), bytes]) })
  }
  await raw.batch(ops, { sync: true } as never)
}
const rawRate = WINDOW / ((performance.now() - t0) / 1000)
await raw.close()

// ---- verify -----------------------------------------------------------------------------------------------
t0 = performance.now()
const report = await ledger.verify()
const verifySecs = (performance.now() - t0) / 1000
if (!report.ok) throw new Error(`verify failed: ${JSON.stringify(report.problems.slice(0, 3))}`)

// ---- inclusion proofs at N entries --------------------------------------------------------------------------
const times: number[] = []
let proofHashes = 0
let docBytes = 0
for (let i = 0; i < 200; i++) {
  const seq = Math.floor(Math.random() * ledger.size)
  const s = performance.now()
  const doc = await ledger.proveEntry(seq)
  times.push(performance.now() - s)
  proofHashes = Math.max(proofHashes, doc.proof.length)
  docBytes = Math.max(docBytes, JSON.stringify(doc).length)
}
const checkTimes: number[] = []
const doc = await ledger.proveEntry(Math.floor(ledger.size / 3))
for (let i = 0; i < 200; i++) {
  const s = performance.now()
  checkInclusionProofDocument(doc, key.did)
  checkTimes.push(performance.now() - s)
}
void sample
await ledger.close()
rmSync(dir, { recursive: true, force: true })

printSection(`ledger (${N.toLocaleString('en-US')} transfers, ${CHUNK} per request, ${IN_FLIGHT} requests in flight, fsync per group commit)`, [
  { name: 'transfers appended (checked, logged, synced)', value: perSecond, unit: 'ops/s', baseline: { name: 'raw synced level batches, same bytes', value: rawRate }, better: 'higher', target: '>= 50,000/s' },
  { name: `  first ${WINDOW.toLocaleString('en-US')} appended`, value: firstRate, unit: 'ops/s', baseline: { name: 'raw synced level batches, same bytes', value: rawRate }, better: 'higher' },
  { name: '  transfers per group commit (mean)', value: N / commits, unit: 'ops', better: 'higher' },
  { name: 'ledger verify', value: report.entries / verifySecs, unit: 'entries/s', baseline: { name: 'appends', value: perSecond }, better: 'higher' },
  { name: `inclusion proof at ${ledger.size.toLocaleString('en-US')} entries p50`, value: percentile(times, 50), unit: 'ms', better: 'lower' },
  { name: '  p99', value: percentile(times, 99), unit: 'ms', better: 'lower' },
  { name: '  hashes in the proof (max)', value: proofHashes, unit: 'x32 B', better: 'lower' },
  { name: '  proof document (JSON, max)', value: docBytes, unit: 'B', better: 'lower' },
  { name: '  check by a third party p50', value: percentile(checkTimes, 50), unit: 'ms', better: 'lower' },
])

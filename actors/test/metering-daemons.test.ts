// Escrow and metering between real daemons (separate processes on 127.0.0.1, real level ledgers, Docker
// busybox workloads; spec/ledger.md "Escrow", "Metering"):
//   (a) a job run by a worker leaves the same countersigned usage records on both daemons, the consumer's NLC
//       goes down by exactly the sum of the accepted amounts, the worker's NLR up by their conversion;
//   (b) a consumer with an empty wallet is refused with 402 InsufficientFundsError before placement: no
//       contract and no container anywhere;
//   (c) an inflated record signed with the provider's own key, sent over the mesh to the consumer's daemon,
//       is disputed and paid only what the consumer observed;
//   (d) the same record sent again changes nothing, and the same seq with other content is refused.
import t from 'tap'
import { execFile, spawnSync } from 'node:child_process'
import { DaemonCluster, NOIR_BIN, eventually, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import { removeNodeContainers } from '../../cli/commands/demo.ts'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { Keystore } from '../../identity/keystore.ts'
import { TEST_PASSPHRASE } from '../../scripts/testing/daemons.ts'
import type { DeploymentView } from '../orchestrator/orchestrator.ts'
import { signUsage, usageAmount, type UsageBody, type UsageRecord } from '../usage/record.ts'

const IMAGE = 'noir/busybox:latest'
const share = 'cpu=2,memory=1GiB,disk=2GiB,gpu=0'
const FEE_BPS = 250n

interface Balance { account: string; posted: string; held: string; available: string }
interface UsageList { records: Array<{ side: string; status: string; settled: string | null; record: UsageRecord }> }

const wallet = async (d: DaemonHandle, currency: 'NLC' | 'NLR'): Promise<Balance> =>
  (await d.api.get<{ balances: Balance[] }>('/v1/wallet')).balances.find((b) => b.account === `self:${currency}`)!
const usageOf = async (d: DaemonHandle, q: string): Promise<UsageList['records']> => (await d.api.get<UsageList>(`/v1/usage?${q}`)).records
const view = (d: DaemonHandle, id: string) => d.api.get<DeploymentView>(`/v1/deployments/${id}`)
const containersNamed = (name: string): string =>
  spawnSync('docker', ['ps', '-aq', '--filter', `label=noir.deployment`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)
    .map((id) => spawnSync('docker', ['inspect', '-f', '{{index .Config.Labels "noir.deployment"}}', id], { encoding: 'utf8' }).stdout.trim())
    .filter((dep) => dep.startsWith(`${name}-`)).join(',')

function noir(home: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [NOIR_BIN, '--home', home, ...args], { timeout: 120_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

const workload = (name: string, kind: 'job' | 'service', role: string, command: string) => ({
  apiVersion: 'noir/v1', kind, name,
  runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', command] },
  resources: { cpu: 0.2, memory: '32Mi' },
  constraints: { labels: { role } },
})

t.test('escrow and metering between real daemons', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  const cluster = new DaemonCluster()
  t.teardown(async () => {
    const dids = cluster.daemons.map((d) => d.did)
    await cluster.cleanup()
    await removeNodeContainers(dids)
  })
  const cfg = (labels: Record<string, string>, usageIntervalMs: number) => ({
    readyTimeoutMs: 180_000,
    config: { share, orchestration: { beatMs: 200, bidWindowMs: 1000, labels }, ledger: { usageIntervalMs, conversion: { nlrPerNlc: 1, feeBps: Number(FEE_BPS) } } } as never,
  })
  const a = await cluster.start(cfg({ role: 'consumer' }, 1000))
  // the worker metered every second; the slow worker once a minute (so a forged record meets no real one)
  // one after another: the machine is shared, and a daemon's start runs an enrollment benchmark
  const b = await cluster.start({ ...cfg({ role: 'worker' }, 1000), bootstrap: a.multiaddrs })
  const c = await cluster.start({ ...cfg({ role: 'slow' }, 600_000), bootstrap: a.multiaddrs })
  const broke = await cluster.start({ ...cfg({ role: 'broke' }, 1000), bootstrap: a.multiaddrs, emptyWallet: true })
  await eventually(async () => (await a.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 3, 60_000)
  await eventually(async () => (await broke.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 1, 60_000)
  await new Promise((r) => setTimeout(r, 1500))

  await t.test('(a) a job leaves matching countersigned records and balances that agree', async (t) => {
    const nlcBefore = await wallet(a, 'NLC')
    const nlrBefore = await wallet(b, 'NLR')
    const d = await a.api.post<DeploymentView>('/v1/deployments', { workload: workload('metered', 'job', 'worker', 'sleep 4; echo done') })
    const done = await eventually(async () => {
      const v = await view(a, d.id)
      return ['completed', 'failed'].includes(v.phase) && v
    }, 60_000)
    t.equal(done.phase, 'completed', `the job ran on the worker (${done.reason ?? ''})`)
    t.equal(done.replicas[0]!.node, b.did)
    // every record answered and settled on both sides, the final one included
    const settled = (list: UsageList['records']) => list.length > 0 && list.some((u) => u.record.body.final) && list.every((u) => u.status !== 'pending' && u.settled !== null)
    const consumerSide = await eventually(async () => {
      const l = (await a.api.get<UsageList>(`/v1/deployments/${d.id}/usage`)).records
      return settled(l) && l
    }, 30_000)
    const providerSide = await eventually(async () => {
      const l = await usageOf(b, `deployment=${d.id}&side=provider`)
      return settled(l) && l.length === consumerSide.length && l
    }, 30_000)
    t.ok(consumerSide.length >= 3, `${consumerSide.length} records for a job of ~4 s metered every second`)
    t.same(providerSide.map((u) => u.record), consumerSide.map((u) => u.record), 'both daemons hold the same records, both signatures included')
    t.ok(consumerSide.every((u) => u.status === 'accepted' && typeof u.record.consumerSig === 'string' && typeof u.record.providerSig === 'string'), 'every record countersigned')
    const seqs = consumerSide.map((u) => u.record.body.seq)
    t.same(seqs, seqs.map((_, i) => i), 'records numbered 0..n-1')
    const ran = consumerSide.reduce((s, u) => s + u.record.body.replicaMs, 0)
    t.ok(ran >= 3500 && ran <= 8000, `replica time billed ${ran} ms for a 4 s job`)

    const accepted = consumerSide.reduce((s, u) => s + BigInt(u.record.answer!.acceptedAmount), 0n)
    t.ok(accepted > 0n, `${accepted} µNLC accepted`)
    const nlcAfter = await eventually(async () => {
      const w = await wallet(a, 'NLC')
      return w.held === nlcBefore.held && w
    }, 10_000)
    t.equal(BigInt(nlcBefore.posted) - BigInt(nlcAfter.posted), accepted, 'the consumer paid exactly the accepted amounts')
    t.equal(nlcAfter.held, nlcBefore.held, 'and holds nothing more for the ended job')
    const net = consumerSide.reduce((s, u) => {
      const n = BigInt(u.record.answer!.acceptedAmount)
      const fee = (n * FEE_BPS + 9_999n) / 10_000n
      return s + (n - fee > 0n ? n - fee : n)
    }, 0n)
    const nlrAfter = await wallet(b, 'NLR')
    t.equal(BigInt(nlrAfter.posted) - BigInt(nlrBefore.posted), net, 'the worker earned the accepted NLC converted to NLR less the fee')
    for (const n of [a, b]) t.ok((await n.api.get<{ ok: boolean }>('/v1/ledger/verify')).ok, 'both ledgers verify')

    // the consumer witnessed the worker's ledger: a checkpoint covering every receipt of the job carries its cosignature
    const receipts = (await b.api.get<{ entries: Array<{ seq: number; id?: string }> }>('/v1/wallet/history?account=receivable:NLC&limit=1000')).entries
    const receiptSeq = consumerSide.map((u) => receipts.find((e) => e.id === `usage:${u.record.body.contractId}:${u.record.body.seq}:nlc`)?.seq)
    t.ok(receiptSeq.every((x) => x !== undefined), 'every accepted record is a receipt in the worker\'s ledger')
    const covering = await eventually(async () => {
      const cps = (await b.api.get<{ checkpoints: Array<{ body: { v: 1; log: string; size: number; root: string; ts: number }; cosignatures: Array<{ did: string; signature: string }> }> }>('/v1/ledger/checkpoints?limit=1000')).checkpoints
      return cps.find((cp) => cp.cosignatures.some((c) => c.did === a.did) && receiptSeq.every((x) => x! < cp.body.size))
    }, 30_000)
    const { verifyCosignature } = await import('../../ledger/checkpoint.ts')
    t.doesNotThrow(() => verifyCosignature(covering.body, covering.cosignatures.find((c) => c.did === a.did)!), 'the consumer\'s cosignature of a checkpoint holding every receipt verifies with its DID alone')
    const vb = await b.api.get<{ ok: boolean; cosignatures: number }>('/v1/ledger/verify')
    t.ok(vb.ok && vb.cosignatures >= 1, `the worker's ledger verifies with ${vb.cosignatures} cosignature(s)`)

    const cli = await noir(a.home, 'usage', d.id)
    t.equal(cli.code, 0, cli.stderr)
    t.match(cli.stdout, new RegExp(`${consumerSide.length} record\\(s\\): claimed \\d+ µNLC, accepted ${accepted} µNLC, 0 disputed, 0 unanswered`), '`noir usage` shows the records and the totals')
    const json = JSON.parse((await noir(a.home, 'usage', d.id, '--json')).stdout) as { records: unknown[] }
    t.equal(json.records.length, consumerSide.length)
  })

  await t.test('(b) an empty wallet is refused before placement', async (t) => {
    const err = await broke.api.post('/v1/deployments', { workload: workload('unfunded', 'service', 'worker', 'sleep 600') }).then(() => null, (e: { name: string; status: number; data: unknown }) => e)
    t.equal(err?.name, 'InsufficientFundsError')
    t.equal(err?.status, 402)
    t.same((await broke.api.get<{ deployments: unknown[] }>('/v1/deployments')).deployments, [], 'no deployment recorded')
    for (const n of [a, b, c, broke]) {
      const cs = (await n.api.get<{ contracts: Array<{ deploymentId?: string; consumer?: string }> }>('/v1/contracts')).contracts
      t.equal(cs.filter((x) => JSON.stringify(x).includes(broke.did)).length, 0, `no contract of the broke consumer on ${n === a ? 'a' : n === b ? 'b' : n === c ? 'c' : 'broke'}`)
    }
    t.equal(containersNamed('unfunded'), '', 'no container anywhere')
  })

  await t.test('(b) a wallet that passes the estimate but cannot hold the window: the contract is released, never started', async (t) => {
    // 400 µNLC passes the estimate at the lowest price (334 µNLC for a 120 s window) but not the hold at the bid's price
    await broke.api.post('/v1/wallet/topup', { amount: '400', ref: 'too-little' })
    const d = await broke.api.post<DeploymentView>('/v1/deployments', { workload: workload('underfunded', 'service', 'worker', 'sleep 600') })
    const v = await eventually(async () => {
      const x = await view(broke, d.id)
      return ['failed', 'running'].includes(x.phase) && x
    }, 60_000)
    t.equal(v.phase, 'failed')
    t.match(v.reason ?? '', /InsufficientFundsError/, 'the deployment says why')
    const cs = (await b.api.get<{ contracts: Array<{ deploymentId: string; side: string; status: string; instanceState: string | null }> }>('/v1/contracts')).contracts.filter((x) => x.deploymentId === d.id)
    t.ok(cs.length >= 1, 'the worker had countersigned a contract')
    t.ok(cs.every((x) => x.status !== 'active' && x.instanceState === null), `and never started it (${cs.map((x) => x.status).join(', ')})`)
    t.equal(containersNamed('underfunded'), '', 'no container anywhere')
    const w = await wallet(broke, 'NLC')
    t.equal(w.posted, '400', 'nothing was paid')
    t.equal(w.held, '0', 'nothing is held')
  })

  await t.test('(e) a wallet that runs dry stops the service, saying why, instead of running on credit', async (t) => {
    const w = workload('dry', 'service', 'worker', 'trap "exit 0" TERM; while true; do sleep 1 & wait $!; done')
    // the worker's price for this workload, as it bids (a dry run asks every node)
    const dry = await broke.api.post<{ round: { bids: Array<{ node: string; pricePerHour: string }> } }>('/v1/bids/dry-run', { workload: w })
    const bid = dry.round.bids.find((x) => x.node === b.did)
    t.ok(bid, 'the worker bids')
    const window = usageAmount(BigInt(bid!.pricePerHour), 120_000) // one prepaid window (the default 120 s)
    // enough for the first window's hold and a sliver: not for the second window once the first record is paid
    const have = BigInt((await wallet(broke, 'NLC')).available)
    const topup = window + window / 1000n - have
    if (topup > 0n) await broke.api.post('/v1/wallet/topup', { amount: String(topup), ref: 'runs-dry' })
    const d = await broke.api.post<DeploymentView>('/v1/deployments', { workload: w })
    const v = await eventually(async () => {
      const x = await view(broke, d.id)
      return ['stopped', 'failed', 'completed'].includes(x.phase) && x
    }, 90_000)
    t.equal(v.phase, 'stopped', 'the deployment stopped')
    t.match(v.reason ?? '', /out of funds.*InsufficientFundsError/, 'and says why')
    t.ok(v.history.some((h: { phase: string }) => h.phase === 'running'), 'it had run')
    await eventually(async () => containersNamed('dry') === '', 30_000)
    const after = await eventually(async () => {
      const x = await wallet(broke, 'NLC')
      return x.held === '0' && x
    }, 60_000)
    t.ok(BigInt(after.posted) >= 0n && BigInt(after.posted) < have + topup, `it paid for what ran (${have + topup - BigInt(after.posted)} µNLC) and holds nothing`)
    t.ok((await broke.api.get<{ ok: boolean }>('/v1/ledger/verify')).ok)
  })

  await t.test('(c, d) an inflated record is disputed and paid only what was observed; a replay changes nothing', async (t) => {
    const createdAt = Date.now()
    const d = await a.api.post<DeploymentView>('/v1/deployments', { workload: workload('inflated', 'service', 'slow', 'trap "exit 0" TERM; while true; do sleep 1 & wait $!; done') })
    const v = await eventually(async () => {
      const x = await view(a, d.id)
      return x.phase === 'running' && x
    }, 60_000)
    const rep = v.replicas[0]!
    t.equal(rep.node, c.did)
    const contract = (await c.api.get<{ contracts: Array<{ id: string; side: string; pricePerHour: number }> }>('/v1/contracts')).contracts.find((x) => x.id === rep.contractId && x.side === 'provider')
    t.ok(contract, 'the slow worker holds the contract')
    await new Promise((r) => setTimeout(r, 2000))
    const cKey = await Keystore.load(c.home, TEST_PASSPHRASE)
    const price = BigInt(Math.round(contract!.pricePerHour * 1e6))
    const now = Date.now()
    // claims an hour of a replica that has run for a few seconds
    const body: UsageBody = {
      v: 1, contractId: rep.contractId!, deploymentId: d.id, slot: rep.slot, consumer: a.did, provider: c.did, seq: 0,
      from: now - 3_600_000, to: now, replicaMs: 3_600_000, pricePerHour: String(price), amount: String(usageAmount(price, 3_600_000)),
    }
    const forged = signUsage(cKey, body)
    const before = await wallet(a, 'NLC')
    const send = (record: unknown) => c.api.post<{ reply?: UsageRecord } & UsageRecord>('/v1/actor/send', { ask: true, to: `${a.did}/orchestrator`, behavior: '/noir/orchestrator/usage', body: record, timeoutMs: 10_000 })
    const raw = await send(forged)
    const answered = (raw.reply ?? raw) as UsageRecord
    t.equal(answered.answer?.verdict, 'disputed', 'the consumer disputes it')
    t.match(answered.answer?.reason ?? '', /exceeds the \d+ ms observed running/)
    const accepted = BigInt(answered.answer!.acceptedAmount)
    const observedMax = usageAmount(price, Date.now() - createdAt)
    t.ok(accepted < BigInt(body.amount), `accepted ${accepted} µNLC of the ${body.amount} claimed`)
    t.ok(accepted <= observedMax, `no more than the observed running time is worth (${observedMax})`)
    const after = await wallet(a, 'NLC')
    t.equal(BigInt(before.posted) - BigInt(after.posted), accepted, 'the consumer paid only the accepted amount')
    const stored = (await a.api.get<UsageList>(`/v1/deployments/${d.id}/usage`)).records
    t.equal(stored.length, 1)
    t.equal(stored[0]!.status, 'disputed')

    // (d) the same record again: the same answer, nothing paid twice
    const again = await send(forged)
    t.same((again.reply ?? again) as UsageRecord, answered, 'a replayed record gets the first answer')
    t.equal((await wallet(a, 'NLC')).posted, after.posted, 'and changes nothing')
    // the same seq with other content: refused
    const other = signUsage(cKey, { ...body, replicaMs: 1000, amount: String(usageAmount(price, 1000)) })
    const conflict = await send(other).then(() => null, (e: Error) => e)
    t.match(conflict?.message ?? '', /UsageConflictError|answered before with other content/, 'the same seq with other content is refused')
    t.equal((await wallet(a, 'NLC')).posted, after.posted)
    await a.api.post(`/v1/deployments/${d.id}/stop`)
  })

  await t.test('(f) a contract lost with its provider (kill -9) has its open hold voided at once, not at its timeout', async (t) => {
    const v = await cluster.start({ ...cfg({ role: 'doomed' }, 1000), bootstrap: a.multiaddrs })
    await eventually(async () => (await a.api.get<{ peers: Array<{ did?: string }> }>('/v1/peers')).peers.length >= 4, 60_000)
    const d = await a.api.post<DeploymentView>('/v1/deployments', { workload: workload('doomed', 'service', 'doomed', 'trap "exit 0" TERM; while true; do sleep 1 & wait $!; done') })
    const running = await eventually(async () => {
      const x = await view(a, d.id)
      return x.phase === 'running' && x
    }, 90_000)
    const cid = running.replicas[0]!.contractId!
    t.equal(running.replicas[0]!.node, v.did)
    // a record or two paid, so a later window than the first is the open one
    await eventually(async () => (await usageOf(a, `deployment=${d.id}`)).filter((u) => u.side === 'consumer' && u.settled === 'paid').length >= 1 || undefined, 60_000)
    const heldBefore = BigInt((await wallet(a, 'NLC')).held)
    t.ok(heldBefore > 0n, `the running contract holds a window (${heldBefore} µNLC)`)
    await v.kill()
    const voided = await eventually(async () => {
      const entries = (await a.api.get<{ entries: Array<Record<string, unknown>> }>('/v1/wallet/history?limit=200')).entries
      return entries.find((e) => JSON.stringify(e).includes(`escrow:${cid}:`) && JSON.stringify(e).includes(':void'))
    }, 120_000, 250)
    t.ok(voided, 'the consumer voided the lost contract\'s open hold (a void_pending, not an expiry)')
    const said = await eventually(async () => (await view(a, d.id)).events.find((e: { msg: string }) => /released the hold of window \d+ of lost contract/.test(e.msg)), 60_000)
    t.match(said.msg, cid.slice(0, 8), 'the deployment says so in its events')
    t.ok(BigInt((await wallet(a, 'NLC')).held) < heldBefore, 'and the money it held is available again')
    t.ok((await a.api.get<{ ok: boolean }>('/v1/ledger/verify')).ok, 'the ledger verifies')
    await a.api.post(`/v1/deployments/${d.id}/stop`)
  })
})

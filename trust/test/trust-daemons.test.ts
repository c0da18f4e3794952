// Worker trust with real daemons (spec/trust.md): four daemons on 127.0.0.1, WASI jobs through the market.
// A (the customer's node, the validator) pays for jobs and does not run them itself; B and C are honest; D is started to cheat (it serves
// every job's stdout altered: NOIR_TEST_FAULTS=1 with trust.testFaults.wrongResults 1) and undercuts the
// others' price, so paid work goes to it first. Shown: D is caught by replicas on nodes of other owners and
// quarantined within the stated number of runs (2), by a record A signs, which D is told and B applies; D gets
// no paid work after; the honest nodes' trust rises; placement honours minTrust; forged and replayed records
// are refused with typed errors; restarted honest, the cheat is readmitted after validation tasks; a fifth
// node that drops work is quarantined by its validation tasks; the cheat option without the environment
// variable stops the daemon.
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { tmpdir } from 'node:os'
import { spawnSync } from 'node:child_process'
import { DaemonCluster, NOIR_BIN, eventually, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import type { DeploymentView } from '../../actors/orchestrator/orchestrator.ts'
import { Catalog } from '../../appliance/catalog/catalog.ts'
import { knownAnswerModule } from '../../appliance/executor/wasm/known-answer-module.ts'
import { NodeKey } from '../../identity/keys.ts'
import { signTrustRecord } from '../record.ts'
import type { NodeTrustView } from '../book.ts'
import { loadConfig, saveConfig } from '../../appliance/daemon/config.ts'

interface TrustDoc {
  self: string
  thisNode: { quarantined: boolean; by?: string; reason?: string }
  nodes: NodeTrustView[]
}

const MODULE = 'noir-kat'
let jobs = 0
const job = (over: Record<string, unknown> = {}) => ({
  apiVersion: 'noir/v1', kind: 'job', name: `hash-${++jobs}`,
  runtime: { type: 'wasm', module: MODULE }, env: { SEED: `paid-${jobs}` },
  resources: { cpu: 0.1, memory: '32Mi' }, job: { retries: 0, deadlineSeconds: 60 },
  ...over,
})
const price = (cpuPerHour: number) => ({ cpuPerHour, memoryGiBPerHour: 250_000, minimumPerHour: 10_000 })
const CHEAP = 100_000
const HONEST = 5_000_000
// one retry: a keep-alive socket the daemon closed while the test was busy elsewhere resets (ECONNRESET)
const trustDoc = (d: DaemonHandle): Promise<TrustDoc> => d.api.get<TrustDoc>('/v1/trust').catch(() => d.api.get<TrustDoc>('/v1/trust'))
const trustOf = async (d: DaemonHandle, node: string): Promise<NodeTrustView | undefined> => (await trustDoc(d)).nodes.find((n) => n.node === node)

async function completed(a: DaemonHandle, w: Record<string, unknown>): Promise<DeploymentView> {
  const d = await a.api.post<DeploymentView>('/v1/deployments', { workload: w })
  return eventually(async () => {
    const v = await a.api.get<DeploymentView>(`/v1/deployments/${d.id}`)
    return ['completed', 'failed'].includes(v.phase) && v
  }, 60_000, 100)
}

t.test('a node returning wrong results is quarantined and gets no paid work; honest trust rises; minTrust holds', async (t) => {
  const cluster = new DaemonCluster()
  const dir = mkdtempSync(join(tmpdir(), 'noir-kat-'))
  t.teardown(async () => {
    await cluster.cleanup()
    rmSync(dir, { recursive: true, force: true })
  })
  const moduleFile = join(dir, 'kat.wasm')
  writeFileSync(moduleFile, knownAnswerModule())
  const outsider = NodeKey.generate() // a validator B trusts, played by the test
  // every run of a young node replicated (halvingStreak 1000) so each step below is certain; no random validation tasks
  const trust = (validators: string[] = []) => ({ checkDeadlineMs: 5000, readmitIntervalMs: 600_000, republishMs: 3000, validators, policy: { validationRate: 0, halvingStreak: 1000 } })
  const a = await cluster.start({ config: { orchestration: { price: price(HONEST) }, trust: trust() } as never })
  const b = await cluster.start({ bootstrap: a.multiaddrs, emptyWallet: true, config: { orchestration: { price: price(HONEST) }, trust: trust([a.did, outsider.did]) } as never })
  const c = await cluster.start({ bootstrap: a.multiaddrs, emptyWallet: true, config: { orchestration: { price: price(HONEST) }, trust: trust([a.did]) } as never })
  const d = await cluster.start({
    bootstrap: a.multiaddrs, emptyWallet: true, env: { NOIR_TEST_FAULTS: '1' },
    config: { orchestration: { price: price(CHEAP) }, trust: { ...trust([a.did]), testFaults: { wrongResults: 1 } } } as never,
  })
  // the validator itself does not run the module (it bids for none of these jobs): the work and the
  // replicas go to B, C and D, and the price ranks them clearly whatever the latencies measured
  for (const n of [b, c, d]) new Catalog(n.home).add('wasm', MODULE, moduleFile)
  await eventually(async () => (await a.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 3, 20_000)
  await new Promise((r) => setTimeout(r, 1500)) // pubsub meshes

  await t.test('fresh nodes start at trust 0', async (t) => {
    // A heard every node's heartbeat: they are in its book and in its capacity index (placement samples it)
    for (const n of [b, c, d]) await eventually(async () => (await trustOf(a, n.did)) !== undefined, 20_000)
    for (const n of [b, c, d]) t.equal((await trustOf(a, n.did))!.trust, 0)
  })

  const onD: string[] = []
  await t.test('the cheat is caught by replicas and quarantined within 2 paid runs', async (t) => {
    for (let i = 0; i < 2; i++) {
      const v = await completed(a, job())
      t.equal(v.phase, 'completed', 'the paid job itself completes (its exit code is right, its output is not)')
      t.equal(v.replicas[0]!.node, d.did, `paid run ${i + 1} went to the cheapest node, the cheat`)
      onD.push(v.id)
      // the replica and the run that decides happen after the job completed
      const judged = await eventually(async () => {
        const r = await trustOf(a, d.did)
        return r && r.invalid === i + 1 && r
      }, 60_000, 200)
      t.equal(judged.streak, 0, 'a wrong result resets its streak')
    }
    const r = (await trustOf(a, d.did))!
    t.ok(r.quarantine, `quarantined: ${r.quarantine?.reason}`)
    t.equal(r.quarantine!.by, a.did)
    t.equal(r.invalid, 2)
    t.ok(r.judged <= 2, `after ${r.judged} judged runs (the stated bound: 2 for a node that is wrong every time)`)
    t.equal(r.trust, 0)
  })

  await t.test('the quarantined node is told why, and nodes that trust the validator apply the record', async (t) => {
    const told = await eventually(async () => {
      const doc = await trustDoc(d)
      return doc.thisNode.quarantined && doc
    }, 15_000)
    t.equal(told.thisNode.by, a.did)
    t.match(told.thisNode.reason ?? '', /strikes/)
    await eventually(async () => (await trustOf(b, d.did))?.quarantine != null, 15_000)
    t.equal((await trustOf(b, d.did))!.quarantine!.by, a.did, 'B holds D quarantined on A\'s signed record')
  })

  await t.test('noir trust and noir trust show print the book', async (t) => {
    const noir = (...args: string[]) => spawnSync(process.execPath, [NOIR_BIN, '--home', a.home, ...args], { encoding: 'utf8', timeout: 60_000 })
    const json = noir('trust', '--json')
    t.equal(json.status, 0, json.stderr)
    const doc = JSON.parse(json.stdout) as TrustDoc
    t.equal(doc.self, a.did)
    t.ok(doc.nodes.find((n) => n.node === d.did)?.quarantine, 'the cheat is quarantined in --json')
    const text = noir('trust')
    t.match(text.stdout, /quarantined since/)
    const show = noir('trust', 'show', d.did)
    t.equal(show.status, 0, show.stderr)
    t.match(show.stdout, /QUARANTINED since .* by did:key:/)
    t.match(show.stdout, /2 wrong/)
    const unknown = noir('trust', 'show', NodeKey.generate().did)
    t.equal(unknown.status, 1)
    t.match(unknown.stderr, /UnknownNodeError/)
  })

  await t.test('an honest node\'s trust rises with each valid result', async (t) => {
    const before = new Map<string, number>()
    for (const n of [b, c]) {
      const r = (await trustOf(a, n.did))!
      t.equal(r.invalid, 0, 'no honest node judged wrong')
      before.set(n.did, r.trust)
    }
    t.ok(Math.max(...before.values()) > 0, `the nodes that agreed with the validator gained: ${[...before.values()].join(', ')}`)
    const v = await completed(a, job())
    const ran = v.replicas[0]!.node!
    t.not(ran, d.did, 'no paid work for the quarantined node')
    const after = await eventually(async () => {
      const r = (await trustOf(a, ran))!
      return r.trust > before.get(ran)! && r
    }, 60_000, 200)
    t.ok(after.trust > before.get(ran)!, `trust of the node that ran it rose ${before.get(ran)} -> ${after.trust} (streak ${after.streak})`)
  })

  await t.test('after quarantine the cheat gets no paid work', async (t) => {
    for (let i = 0; i < 3; i++) {
      const v = await completed(a, job())
      t.equal(v.phase, 'completed')
      t.not(v.replicas[0]!.node, d.did, `paid run ${i + 1} after the quarantine went to ${v.replicas[0]!.node?.slice(-6)}`)
    }
  })

  await t.test('a job whose owner opts out of replication is not run again', async (t) => {
    const trustStatus = async () => (await a.api.get<{ services: { trust: { inFlight: number; checks: { replicas: number; notReplicated: number } } } }>('/v1/status')).services.trust
    const checks = async () => (await trustStatus()).checks
    // the earlier runs' replicas done: nothing in flight, and the count still for a second
    const settled = () => eventually(async () => {
      const one = await trustStatus()
      await new Promise((r) => setTimeout(r, 1000))
      const two = await trustStatus()
      return one.inFlight === 0 && two.inFlight === 0 && one.checks.replicas === two.checks.replicas && two.checks
    }, 60_000, 100)
    const before = await settled()
    const v = await completed(a, job({ job: { retries: 0, deadlineSeconds: 60, replicate: false } }))
    t.equal(v.phase, 'completed')
    const after = await eventually(async () => {
      const c = await checks()
      return c.notReplicated > before.notReplicated && c
    }, 30_000, 200)
    t.equal(after.notReplicated, before.notReplicated + 1, 'the run is counted as not replicated')
    t.equal((await settled()).replicas, before.replicas, 'and no replica ran (every other run of a young node is replicated here)')
  })

  await t.test('placement honours minTrust', async (t) => {
    const none = await completed(a, job({ constraints: { minTrust: 0.99 } }))
    t.equal(none.phase, 'failed', 'no node has trust 0.99')
    t.equal(none.infeasible?.constraint, 'minTrust')
    const some = await completed(a, job({ constraints: { minTrust: 0.3 } }))
    t.equal(some.phase, 'completed')
    const placed = some.replicas[0]!.node!
    const tr = (await trustOf(a, placed))!.trust
    t.ok(tr >= 0.3, `placed on a node of trust ${tr}`)
    t.not(placed, d.did)
  })

  await t.test('records: forged and replayed ones are refused with typed errors', async (t) => {
    const record = signTrustRecord(outsider, { kind: 'quarantine', node: c.did, issuedAt: Date.now(), reason: 'test', evidence: { strikes: 2, invalid: 2, missed: 0, judged: 2 } })
    const stranger = NodeKey.generate()
    const forged = { ...signTrustRecord(stranger, { ...record.body }), body: record.body }
    await t.rejects(b.api.post('/v1/trust/records', forged), { name: 'TrustRecordSignatureError', status: 400 })
    await t.rejects(b.api.post('/v1/trust/records', signTrustRecord(stranger, { ...record.body })), { name: 'UntrustedValidatorError', status: 403 })
    t.notOk((await trustOf(b, c.did))?.quarantine, 'nothing applied')
    t.same(await b.api.post('/v1/trust/records', record), { applied: true, kind: 'quarantine', node: c.did })
    await t.rejects(b.api.post('/v1/trust/records', record), { name: 'ReplayedTrustRecordError', status: 409 })
    t.ok((await trustOf(b, c.did))?.quarantine, 'the genuine record was applied once')
  })

  await t.test('the cheat, honest again, is readmitted after passing validation tasks in a row', async (t) => {
    await d.stop()
    const cfg = loadConfig(d.home)
    delete (cfg.trust as { testFaults?: unknown }).testFaults
    saveConfig(d.home, cfg)
    const again = await cluster.start({ home: d.home, bootstrap: a.multiaddrs })
    await eventually(async () => (await again.api.get<{ peers: { did: string }[] }>('/v1/peers')).peers.some((p) => p.did === a.did), 20_000)
    t.ok((await trustOf(a, d.did))!.quarantine, 'still quarantined after its restart (the book is on disk)')
    for (let i = 0; i < 3; i++) {
      const out = await a.api.post<{ kind: string; digest?: string | null; reason?: string }>(`/v1/trust/nodes/${encodeURIComponent(d.did)}/validate`, {})
      t.equal(out.kind, 'result', `validation task ${i + 1}: ${out.reason ?? 'ran'}`)
    }
    const r = (await trustOf(a, d.did))!
    t.equal(r.quarantine, null, 'readmitted after 3 validation tasks passed')
    t.equal(r.validationTasks.passed, 3)
    t.equal(r.strikes, 1, 'on probation: one strike short of quarantine')
    await eventually(async () => (await trustOf(b, d.did))?.quarantine === null, 15_000)
    t.pass('the readmission record reached B')
  })

  await t.test('a node that drops the work it accepts is quarantined by its validation tasks running out', async (t) => {
    const e = await cluster.start({
      bootstrap: a.multiaddrs, emptyWallet: true, env: { NOIR_TEST_FAULTS: '1' },
      config: { orchestration: { price: price(HONEST) }, trust: { ...trust([a.did]), testFaults: { dropWork: 1 } } } as never,
    })
    new Catalog(e.home).add('wasm', MODULE, moduleFile)
    await eventually(async () => (await trustOf(a, e.did)) !== undefined, 20_000)
    // each task is accepted (bid, contract, start answered) and never ends: dropped at the deadline (5 s here)
    for (let i = 0; i < 4; i++) {
      const out = await a.api.post<{ kind: string; digest?: string | null; reason?: string }>(`/v1/trust/nodes/${encodeURIComponent(e.did)}/validate`, {})
      t.same([out.kind, out.digest], ['result', null], `task ${i + 1} accepted and dropped${out.reason ? ` (${out.reason})` : ''}`)
    }
    const r = (await trustOf(a, e.did))!
    t.equal(r.missed, 4)
    t.ok(r.quarantine, `quarantined after 4 dropped runs (0.5 strike each): ${r.quarantine?.reason}`)
  })
})

t.test('the cheat option is refused without NOIR_TEST_FAULTS=1: the daemon does not start', async (t) => {
  const cluster = new DaemonCluster()
  t.teardown(() => cluster.cleanup())
  await t.rejects(cluster.start({ emptyWallet: true, config: { trust: { testFaults: { wrongResults: 1 } } } as never }), /FaultInjectionRefusedError|NOIR_TEST_FAULTS/)
})

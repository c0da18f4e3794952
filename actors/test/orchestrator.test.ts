// The orchestration logic end to end in one process (real signatures, contracts, placement, state machine;
// a scripted runner and in-memory capacity stand in for the appliance). The same behaviours are proven with
// real daemon processes in appliance/test/orchestration-daemons.test.ts.
import t from 'tap'
import { ReservationFailedError, StopFailedError } from '../errors.ts'
import { verifyContract } from '../contracts/contract.ts'
import { MemoryCapacity } from '../provider/memory-capacity.ts'
import type { CapacityPort } from '../provider/ports.ts'
import { MarketBehavior } from '../orchestrator/protocol.ts'
import { SimMarket, until } from './sim.ts'
import { workload } from './helpers.ts'
import { eventCount, MAX_EVENTS, note } from '../deployment/model.ts'

const svc = (over: Record<string, unknown> = {}) => workload({ resources: { cpu: 0.5, memory: '256Mi' }, ...over })

t.test('a two-replica service on three nodes runs on two distinct nodes, with contracts signed by both sides', async (t) => {
  const m = new SimMarket(3)
  t.teardown(() => m.close())
  const o = m.nodes[0]!.orchestrator
  const d = await o.deploy(svc({ service: { replicas: 2 } }))
  const v = await until(() => { const s = o.status(d.id); return s.phase === 'running' && s }, 5000, 'running')
  const nodes = v.replicas.map((r) => r.node)
  t.equal(new Set(nodes).size, 2, `distinct nodes: ${nodes.join(', ')}`)
  t.same(v.history.map((h) => h.phase), ['preparing', 'bidding', 'committing', 'provisioning', 'running'])
  for (const r of v.replicas) {
    const mine = await m.byDid(r.node!)!.contracts.get(r.contractId!, 'provider')
    t.ok(mine, 'the provider kept the contract')
    t.equal(verifyContract(mine!.contract).provider, r.node)
    const theirs = await m.nodes[0]!.contracts.get(r.contractId!, 'consumer')
    t.same(theirs?.contract, mine?.contract, 'the consumer keeps the same signed contract')
  }
})

t.test('an infeasible spec fails with the constraint no node met and the nearest candidate', async (t) => {
  const m = new SimMarket(3)
  t.teardown(() => m.close())
  const o = m.nodes[0]!.orchestrator
  const d = await o.deploy(svc({ resources: { cpu: 1, memory: '64Gi' } }))
  const v = await until(() => { const s = o.status(d.id); return s.phase === 'failed' && s }, 5000, 'failed')
  t.match(v.reason, /no node meets memory/)
  t.equal(v.infeasible?.constraint, 'memory')
  t.ok(v.infeasible?.declines?.length === 3, 'each node said why it declined')
  t.ok(v.infeasible?.nearest, 'the nearest candidate is named')
  t.match(v.reason, /nearest candidate did:key:.*memory \(needs 64GiB memory, has 4GiB\)/)
})

t.test('a node that bids for capacity it does not have fails to reserve and the orchestrator moves on', async (t) => {
  class LyingCapacity implements CapacityPort {
    free() { return { cpu: 64, memoryBytes: 2 ** 40, gpu: 0, vramBytes: 0, diskBytes: 2 ** 40 } }
    async reserve(): Promise<{ reservationId: string }> { throw new ReservationFailedError('nothing actually free') }
    async commit() {}
    async release() {}
  }
  const m = new SimMarket(3, { capacity: (i, share) => (i === 1 ? new LyingCapacity() : new MemoryCapacity(share)) })
  t.teardown(() => m.close())
  const liar = m.nodes[1]!.did
  const o = m.nodes[0]!.orchestrator
  // The liar quotes the same price but claims far more free capacity; make it the cheapest to be sure it is tried first.
  const d = await o.deploy(svc({ service: { replicas: 2 } }))
  const v = await until(() => { const s = o.status(d.id); return (s.phase === 'running' || s.phase === 'failed') && s }, 5000, 'settled')
  t.equal(v.phase, 'running')
  t.notOk(v.replicas.some((r) => r.node === liar), 'no replica on the node that could not reserve')
  const tried = v.events.some((e) => e.msg.includes(`node ${liar} refused`))
  const placedElsewhere = v.replicas.every((r) => r.node !== liar)
  t.ok(tried || placedElsewhere)
})

for (const onThread of [false, true]) t.test(`a forged bid that would win is verified before anything is proposed (${onThread ? 'on the signature thread' : 'inline'}), refused, and the next best bid is placed`, async (t) => {
  const m = new SimMarket(4, { signatures: onThread })
  t.teardown(() => m.close())
  const forger = m.nodes[2]!.did
  // The forger's answers claim a price no one beats, under the signature of its true bid: the body no longer verifies.
  const ask = m.ask.bind(m)
  m.ask = async (from, to, behavior, body) => {
    const r = await ask(from, to, behavior, body)
    const bid = (r as { bid?: { body: { pricePerHour: string } } }).bid
    if (behavior === MarketBehavior.bid && to === forger && bid) bid.body.pricePerHour = '1000'
    return r
  }
  const o = m.nodes[0]!.orchestrator
  const d = await o.deploy(svc())
  const v = await until(() => { const s = o.status(d.id); return (s.phase === 'running' || s.phase === 'failed') && s }, 5000, 'settled')
  t.equal(v.phase, 'running')
  t.not(v.replicas[0]!.node, forger, 'placed on a genuine bid')
  t.same(m.asks.filter((a) => a.behavior === MarketBehavior.propose && a.to === forger), [], 'nothing was proposed to the forger')
  t.ok(v.events.some((e) => e.msg.includes(`node ${forger} refused`) && e.msg.includes('InvalidSignatureError')), 'its bid was verified (it would have won) and refused')
  if (onThread) t.ok(m.signatureWorkers[0]!.signatureChecks >= 2, 'the picks were verified by the signature worker')
  // a dry run verifies every bid it shows: the forged one is reported as no answer
  const dry = await o.dryRun(svc())
  t.notOk(dry.round.bids.some((b) => b.node === forger))
  t.match(dry.round.silent.find((s) => s.node === forger)?.reason ?? '', /InvalidSignatureError/)
})

for (const onThread of [false, true]) t.test(`bids never picked are never verified (${onThread ? 'on the signature thread' : 'inline'}): an orchestrator verifies one bid signature per slot placed, not one per answer`, async (t) => {
  const m = new SimMarket(6, { signatures: onThread })
  t.teardown(() => m.close())
  const o = m.nodes[0]!.orchestrator
  const d = await o.deploy(svc({ service: { replicas: 2 } }))
  const v = await until(() => { const s = o.status(d.id); return s.phase === 'running' && s }, 5000, 'running')
  t.equal(v.replicas.length, 2)
  t.equal(o.bidSignaturesChecked, 2, `2 verified of the ${m.asks.filter((a) => a.behavior === MarketBehavior.bid).length} bids asked for`)
})

t.test('concurrent deploys never oversubscribe a node', async (t) => {
  // a bid window a loaded machine cannot miss: a silent node would fail a deploy for another reason than cpu
  const m = new SimMarket(3, { share: { cpu: 2 }, orchestrator: { bidWindowMs: 3000 } })
  t.teardown(() => m.close())
  const o = m.nodes[0]!.orchestrator
  const ds = await Promise.all(Array.from({ length: 9 }, () => o.deploy(svc({ resources: { cpu: 1, memory: '64Mi' } }))))
  const views = await until(() => { const vs = ds.map((d) => o.status(d.id)); return vs.every((v) => v.phase === 'running' || v.phase === 'failed') && vs }, 60_000, 'all settled')
  const running = views.filter((v) => v.phase === 'running')
  t.equal(running.length, 6, 'three nodes x two cpus hold six one-cpu services')
  for (const n of m.nodes) t.ok(n.runner.running() <= 2, `node runs ${n.runner.running()} (share 2 cpu)`)
  t.ok(views.filter((v) => v.phase === 'failed').every((v) => /cpu/.test(v.reason ?? '')), 'the rest fail naming cpu')
})

t.test('a job that exits 1 is retried on another node up to its limit', async (t) => {
  const m = new SimMarket(4)
  t.teardown(() => m.close())
  const o = m.nodes[0]!.orchestrator
  const d = await o.deploy(workload({ kind: 'job', resources: { cpu: 0.5, memory: '64Mi' }, env: { EXIT_CODE: '1' }, job: { retries: 2 } }))
  const v = await until(() => { const s = o.status(d.id); return s.phase === 'failed' && s }, 8000, 'failed')
  t.equal(v.failures, 3, 'one run plus two retries')
  const r = v.replicas[0]!
  t.equal(new Set(r.failedOn).size, 3, `three distinct nodes: ${r.failedOn.join(', ')}`)
  t.equal(r.lastExitCode, 1)
})

t.test('a job that exits 0 completes', async (t) => {
  const m = new SimMarket(2)
  t.teardown(() => m.close())
  const o = m.nodes[0]!.orchestrator
  const d = await o.deploy(workload({ kind: 'job', resources: { cpu: 0.5, memory: '64Mi' }, job: { completions: 2 } }))
  const v = await until(() => { const s = o.status(d.id); return s.phase === 'completed' && s }, 5000, 'completed')
  t.equal(v.succeeded, 2)
})

t.test('a lost node puts its protected replica on the standby, fenced by a higher epoch', async (t) => {
  const m = new SimMarket(4)
  t.teardown(() => m.close())
  const o = m.nodes[0]!.orchestrator
  const d = await o.deploy(svc({ lane: 'protected' }))
  const v = await until(() => { const s = o.status(d.id); return s.phase === 'running' && s.standby !== null && s }, 5000, 'running with standby')
  const standby = v.standby!.node
  const victim = v.replicas.find((r) => r.node !== m.nodes[0]!.did)!
  m.down.add(victim.node!)
  const after = await until(() => { const s = o.status(d.id); return s.phase === 'running' && s.failovers[0]?.ms != null && s }, 5000, 'failover').catch((err: Error) => {
    t.comment(o.status(d.id).events.map((e) => e.msg).join('\n'))
    throw err
  })
  const moved = after.replicas[victim.index]!
  t.equal(moved.node, standby, 'the standby took the slot')
  t.equal(moved.epoch, victim.epoch + 1)
  t.not(after.replicas[0]!.node, after.replicas[1]!.node)
  t.comment(`failover took ${after.failovers[0]!.ms} ms after detection`)
  // The partition heals: the old node hears the fence and stops its stale copy.
  m.down.delete(victim.node!)
  const old = m.byDid(victim.node!)!
  await old.provider.fence({ slot: moved.slot, epoch: moved.epoch }, m.nodes[0]!.did)
  t.equal(old.runner.running(), 0, 'the stale copy is stopped')
})

t.test('on the signature thread: a protected deployment\'s standby is not reserved on a forged bid', async (t) => {
  const m = new SimMarket(5, { signatures: true })
  t.teardown(() => m.close())
  // two nodes forge their bids (cheaper than any): three genuine ones hold the two replicas and the standby
  const forgers = new Set(m.nodes.slice(3).map((n) => n.did))
  const ask = m.ask.bind(m)
  m.ask = async (from, to, behavior, body) => {
    const r = await ask(from, to, behavior, body)
    const bid = (r as { bid?: { body: { pricePerHour: string } } }).bid
    if (behavior === MarketBehavior.bid && forgers.has(to) && bid) bid.body.pricePerHour = '1000'
    return r
  }
  const o = m.nodes[0]!.orchestrator
  const d = await o.deploy(svc({ lane: 'protected' }))
  const v = await until(() => { const s = o.status(d.id); return s.phase === 'running' && s.standby !== null && s }, 5000, 'running with standby').catch((err: Error) => {
    t.comment(o.status(d.id).events.map((e) => e.msg).join('\n'))
    throw err
  })
  t.notOk(v.replicas.some((r) => r.node !== undefined && r.node !== null && forgers.has(r.node)), 'no replica on a forged bid')
  t.notOk(forgers.has(v.standby!.node), `the standby on a genuine bid (${v.standby!.node})`)
  t.ok(v.events.some((e) => e.msg.includes('InvalidSignatureError')), 'the forged bids (they would have won) were verified and refused')
  t.same(m.asks.filter((a) => a.behavior === MarketBehavior.propose && forgers.has(a.to)), [], 'nothing was proposed to a forger')
  t.ok(m.signatureWorkers[0]!.signatureChecks >= 2, 'verified by the signature worker')
})

t.test('stopping a deployment stops its replicas and ends its contracts', async (t) => {
  const m = new SimMarket(2)
  t.teardown(() => m.close())
  const o = m.nodes[0]!.orchestrator
  const d = await o.deploy(svc({ service: { replicas: 2 } }))
  await until(() => o.status(d.id).phase === 'running', 5000, 'running')
  const v = await o.stopDeployment(d.id)
  t.equal(v.phase, 'stopped')
  t.equal(m.nodes.reduce((n, x) => n + x.runner.running(), 0), 0)
  const logs = await o.logs(d.id, { replica: 0 })
  t.match(logs.lines[0]?.line ?? '', /started on/)
})

t.test('a replica its node cannot stop is not reported stopped: the stop names it with the error, and stopping again retries it', async (t) => {
  const m = new SimMarket(2)
  t.teardown(() => m.close())
  const o = m.nodes[0]!.orchestrator
  const d = await o.deploy(svc({ service: { replicas: 2 } }))
  const running = await until(() => { const s = o.status(d.id); return s.phase === 'running' && s }, 5000, 'running')
  const stuck = running.replicas.find((r) => r.node === m.nodes[1]!.did)!
  m.nodes[1]!.runner.failStop = new Error('container did not stop')

  const v = await o.stopDeployment(d.id)
  t.equal(v.phase, 'stopped')
  t.same(v.stopFailures.map((f) => [f.slot, f.node, f.contractId]), [[stuck.slot, stuck.node, stuck.contractId]])
  t.match(v.stopFailures[0]!.error, /^StopFailedError: .*container did not stop/)
  t.equal(v.replicas.find((r) => r.slot === stuck.slot)!.state, 'running', 'not reported stopped')
  t.equal(v.replicas.find((r) => r.slot !== stuck.slot)!.state, 'stopped', 'the other one was confirmed')
  t.ok(v.events.some((e) => e.msg.includes(`slot ${stuck.slot} on node ${stuck.node} not confirmed stopped`) && e.msg.includes('container did not stop')))
  t.equal(m.nodes[1]!.runner.running(), 1, 'the instance still runs')
  const provider = await m.nodes[1]!.contracts.get(stuck.contractId!, 'provider')
  t.equal(provider?.status, 'active', 'the provider keeps the contract open')
  t.match(provider?.note ?? '', /stop failed/)
  t.equal((await m.nodes[0]!.contracts.get(stuck.contractId!, 'consumer'))?.status, 'active', 'and so does the consumer')

  m.nodes[1]!.runner.failStop = undefined
  const again = await o.stopDeployment(d.id)
  t.same(again.stopFailures, [])
  t.ok(again.replicas.every((r) => r.state === 'stopped'))
  t.equal(m.nodes[1]!.runner.running(), 0)
  t.equal((await m.nodes[0]!.contracts.get(stuck.contractId!, 'consumer'))?.status, 'ended')
})

t.test('a stop is answered by the provider only once its runner stopped the instance, else with StopFailedError', async (t) => {
  const m = new SimMarket(1)
  t.teardown(() => m.close())
  const n = m.nodes[0]!
  const d = await n.orchestrator.deploy(svc())
  const v = await until(() => { const s = n.orchestrator.status(d.id); return s.phase === 'running' && s }, 5000, 'running')
  n.runner.failStop = new Error('kill refused')
  await t.rejects(n.provider.stopWork({ contractId: v.replicas[0]!.contractId! }, n.did), StopFailedError)
  n.runner.failStop = undefined
  t.same(await n.provider.stopWork({ contractId: v.replicas[0]!.contractId! }, n.did), { stopped: true })
  t.equal(n.runner.running(), 0)
})

t.test('a stop waits for the provider\'s grace period plus a margin before giving up on a node', async (t) => {
  const m = new SimMarket(1, { orchestrator: { stopGraceMs: 30_000, stopMarginMs: 5_000 } })
  t.teardown(() => m.close())
  const o = m.nodes[0]!.orchestrator
  const d = await o.deploy(svc())
  await until(() => o.status(d.id).phase === 'running', 5000, 'running')
  await o.stopDeployment(d.id)
  const stops = m.asks.filter((a) => a.behavior === MarketBehavior.stop)
  t.equal(stops.length, 1)
  t.equal(stops[0]!.timeoutMs, 35_000)
})

t.test('an instance that changes state while its start is still being recorded keeps its instance id (its logs stay readable)', async (t) => {
  const m = new SimMarket(1)
  t.teardown(() => m.close())
  const n = m.nodes[0]!
  const o = n.orchestrator
  n.contracts.putDelayMs = 30 // a slow disk: the start's record lands after the instance already reported
  const d = await o.deploy(workload({ kind: 'job', resources: { cpu: 0.5, memory: '256Mi' }, env: { RUN_MS: '1' } }))
  const v = await until(() => { const s = o.status(d.id); return s.phase === 'completed' && s }, 5000, 'completed')
  await new Promise((r) => setTimeout(r, 100))
  const stored = await n.contracts.get(v.replicas[0]!.contractId!, 'provider')
  t.ok(stored?.instanceId, 'the instance id survived the concurrent status change')
  t.equal(stored?.status, 'ended')
  const logs = await o.logs(d.id, { replica: 0 })
  t.match(logs.lines[0]?.line ?? '', /started on/)
})

t.test('a dry run says which nodes would bid and why the others would not', async (t) => {
  const m = new SimMarket(3, { share: { cpu: 1 } })
  t.teardown(() => m.close())
  const r = await m.nodes[0]!.orchestrator.dryRun(svc({ resources: { cpu: 2, memory: '64Mi' } }))
  t.equal(r.round.bids.length, 0)
  t.equal(r.round.declines.length, 3)
  t.match(r.round.declines[0]!.reasons[0], /cpu: needs 2 cpu, has 1/)
  t.equal(r.placement.ok, false)
})

t.test('an orchestrator restarted on the same node takes its deployments up again', async (t) => {
  const { Orchestrator } = await import('../orchestrator/orchestrator.ts')
  type Rec = import('../orchestrator/orchestrator.ts').DeploymentRecord
  const saved = new Map<string, string>()
  const deployments = {
    save: async (r: Rec) => void saved.set(r.id, JSON.stringify(r)),
    loadAll: async () => [...saved.values()].map((v) => JSON.parse(v) as Rec),
  }
  const m = new SimMarket(3)
  t.teardown(() => m.close())
  const n0 = m.nodes[0]!
  const mk = () => new Orchestrator({
    key: n0.key, askMarket: (to, b, body) => m.ask(n0.did, to, b, body), publish: async () => {},
    candidates: () => m.nodes.map((n) => n.did).filter((d) => d !== n0.did && !m.down.has(d)), latencyMs: () => 1, contracts: n0.contracts, deployments,
  }, { bidWindowMs: 300, heartbeatIntervalMs: 50, checkIntervalMs: 20 })
  const first = mk()
  first.start()
  const d = await first.deploy(svc({ service: { replicas: 2 } }))
  const before = await until(() => { const s = first.status(d.id); return s.phase === 'running' && s }, 5000, 'running')
  await until(() => saved.has(d.id) && (JSON.parse(saved.get(d.id)!) as { snapshot: { context: { replicas: { state: string }[] } } }).snapshot.context.replicas.every((r) => r.state === 'running'), 2000, 'saved')
  await first.stop()

  const second = mk()
  t.teardown(() => second.stop())
  second.start()
  // the market's nodes beat to the new orchestrator as they do to every other
  const beats = setInterval(() => { for (const n of m.nodes) if (!m.down.has(n.did)) second.heartbeat(n.did) }, 50)
  t.teardown(() => clearInterval(beats))
  t.equal(await second.restore(), 1)
  const after = second.status(d.id)
  t.equal(after.phase, 'running')
  t.same(after.replicas.map((r) => [r.node, r.contractId, r.epoch]), before.replicas.map((r) => [r.node, r.contractId, r.epoch]), 'same replicas, same contracts')
  t.same(after.history.map((h) => h.phase), before.history.map((h) => h.phase))
  // It watches the replicas' nodes again: losing one is still detected and repaired.
  const victim = after.replicas.find((r) => r.node !== n0.did)!
  m.down.add(victim.node!)
  const repaired = await until(() => { const s = second.status(d.id); return s.phase === 'running' && s.failovers.length === 1 && s.failovers[0]!.runningAt !== null && s }, 5000, 'repaired')
  t.not(repaired.replicas[victim.index]!.node, victim.node)
})

t.test('after a restart that re-runs the proposals, reconciliation stops the first contracts instead of leaving them held', async (t) => {
  const { Orchestrator } = await import('../orchestrator/orchestrator.ts')
  type Rec = import('../orchestrator/orchestrator.ts').DeploymentRecord
  // The orchestrator "crashes" between the countersign and the write of the commit step's outcome: nothing
  // it records after the create reaches the disk.
  const saved = new Map<string, string>()
  let frozen = false
  const deployments = {
    save: async (r: Rec) => void (frozen || saved.set(r.id, JSON.stringify(r))),
    loadAll: async () => [...saved.values()].map((v) => JSON.parse(v) as Rec),
  }
  const m = new SimMarket(3)
  t.teardown(() => m.close())
  const n0 = m.nodes[0]!
  const mk = () => new Orchestrator({
    key: n0.key, askMarket: (to, b, body) => m.ask(n0.did, to, b, body), publish: async () => {},
    candidates: () => m.nodes.map((n) => n.did).filter((d) => d !== n0.did && !m.down.has(d)), latencyMs: () => 1, contracts: n0.contracts, deployments,
  }, { bidWindowMs: 300, heartbeatIntervalMs: 50, checkIntervalMs: 20 })
  const first = mk()
  first.start()
  const d = await first.deploy(svc({ service: { replicas: 2 } }))
  frozen = true
  const before = await until(() => { const s = first.status(d.id); return s.phase === 'running' && s }, 5000, 'running')
  const firstIds = before.replicas.map((r) => r.contractId!)
  await first.stop()

  const second = mk()
  t.teardown(() => second.stop())
  second.start()
  const beats = setInterval(() => { for (const n of m.nodes) if (!m.down.has(n.did)) second.heartbeat(n.did) }, 50)
  t.teardown(() => clearInterval(beats))
  t.equal(await second.restore(), 1)
  const report = await second.reconcile(m.nodes.map((n) => n.did))
  const after = await until(() => { const s = second.status(d.id); return s.phase === 'running' && s }, 5000, 'running again')
  t.notSame(after.replicas.map((r) => r.contractId).sort(), [...firstIds].sort(), 'the restored deployment proposed again: new contracts')
  t.same(report.stopped.map((s) => s.contractId).sort(), [...firstIds].sort(), 'reconciliation stopped the contracts of the first proposal')
  for (const s of report.stopped) t.match(s.why, /no longer|does not name it|no deployment record/)
  const live = (await Promise.all(m.nodes.map((n) => n.contracts.list()))).flat().filter((c) => c.side === 'provider' && (c.status === 'active' || c.status === 'reserved'))
  t.same(live.map((c) => c.contract.terms.id).sort(), after.replicas.map((r) => r.contractId).sort(), 'only the new contracts hold capacity')
  t.equal(m.nodes.reduce((n, x) => n + x.runner.running(), 0), 2, 'two instances run, not four')
})

t.test('a renewal answer naming a contract the provider no longer holds makes the orchestrator place the slot again', async (t) => {
  const m = new SimMarket(3, { orchestrator: { leaseMs: 3000, leaseRenewMs: 200 } })
  t.teardown(() => m.close())
  const o = m.nodes[0]!.orchestrator
  const d = await o.deploy(svc())
  const before = await until(() => { const s = o.status(d.id); return s.phase === 'running' && s }, 5000, 'running')
  const rep = before.replicas[0]!
  // The provider ends the contract and the orchestrator hears no report of it (a stop it did not ask for is
  // not reported): only the next renewal's answer tells it.
  await m.byDid(rep.node!)!.provider.stopWork({ contractId: rep.contractId! }, m.nodes[0]!.did)
  const after = await until(() => { const s = o.status(d.id); return s.phase === 'running' && s.replicas[0]!.contractId !== rep.contractId && s }, 5000, 'placed again')
  t.ok(after.events.some((e) => /ended on/.test(e.msg)), 'the deployment learned the replica ended')
  t.ok(o.leases.gone >= 1, 'from a renewal answer')
  t.equal(m.nodes.reduce((n, x) => n + x.runner.running(), 0), 1, 'one instance runs')
})

t.test('the standby hold of a protected deployment is renewed with its replicas, well past several leases', async (t) => {
  const m = new SimMarket(4, { orchestrator: { leaseMs: 1000, leaseRenewMs: 200 } })
  t.teardown(() => m.close())
  const o = m.nodes[0]!.orchestrator
  const d = await o.deploy(svc({ lane: 'protected' }))
  const v = await until(() => { const s = o.status(d.id); return s.phase === 'running' && s.standby !== null && s }, 5000, 'running with a standby')
  await new Promise((r) => setTimeout(r, 4000))
  const held = await m.byDid(v.standby!.node)!.contracts.get(v.standby!.contractId, 'provider')
  t.equal(held?.status, 'standby', 'four leases later the standby still holds its capacity')
  for (const r of v.replicas) t.equal((await m.byDid(r.node!)!.contracts.get(r.contractId!, 'provider'))?.status, 'active', `replica ${r.slot} still active`)
  t.same(o.status(d.id).replicas.map((r) => r.contractId), v.replicas.map((r) => r.contractId), 'never placed again')
})

t.test('a create retried with its idempotency key returns the same deployment, also after a restart; another workload under the key is refused', async (t) => {
  const { Orchestrator } = await import('../orchestrator/orchestrator.ts')
  const { IdempotencyConflictError } = await import('../errors.ts')
  type Rec = import('../orchestrator/orchestrator.ts').DeploymentRecord
  const saved = new Map<string, string>()
  const deployments = { save: async (r: Rec) => void saved.set(r.id, JSON.stringify(r)), loadAll: async () => [...saved.values()].map((v) => JSON.parse(v) as Rec) }
  const m = new SimMarket(2)
  t.teardown(() => m.close())
  const n0 = m.nodes[0]!
  const mk = () => new Orchestrator({
    key: n0.key, askMarket: (to, b, body) => m.ask(n0.did, to, b, body), publish: async () => {},
    candidates: () => m.nodes.map((n) => n.did).filter((d) => d !== n0.did), latencyMs: () => 1, contracts: n0.contracts, deployments,
  }, { bidWindowMs: 300, heartbeatIntervalMs: 50, checkIntervalMs: 20 })
  const first = mk()
  first.start()
  const w = svc()
  const a = await first.deploy(w, { idempotencyKey: 'order-42' })
  t.ok(saved.has(a.id), 'recorded before it was answered')
  const again = await first.deploy(w, { idempotencyKey: 'order-42' })
  t.equal(again.id, a.id, 'the retry returns the same deployment')
  t.equal(first.list().length, 1, 'never a second one')
  await t.rejects(first.deploy(svc({ resources: { cpu: 1, memory: '64Mi' } }), { idempotencyKey: 'order-42' }), IdempotencyConflictError)
  await t.rejects(first.deploy(w, { idempotencyKey: 'has spaces' }), IdempotencyConflictError)
  const other = await first.deploy(w, { idempotencyKey: 'order-43' })
  t.not(other.id, a.id)
  await first.stop()

  const second = mk()
  t.teardown(() => second.stop())
  second.start()
  await second.restore()
  t.equal((await second.deploy(w, { idempotencyKey: 'order-42' })).id, a.id, 'after a restart the key still names the same deployment')
  t.equal(second.list().length, 2)
})

t.test('with a capacity index a placement asks a small sample for bids, not every node, and places from it', async (t) => {
  const { Orchestrator } = await import('../orchestrator/orchestrator.ts')
  const { CapacityIndex } = await import('../placement/capacity-index.ts')
  const { defaultPricePolicy } = await import('../placement/price.ts')
  const { MarketBehavior } = await import('../orchestrator/protocol.ts')
  const GiB = 2 ** 30
  const m = new SimMarket(30)
  t.teardown(() => m.close())
  const n0 = m.nodes[0]!
  const index = new CapacityIndex()
  const free = { cpu: 2, memoryBytes: 4 * GiB, diskBytes: 50 * GiB, gpu: 0 }
  for (const n of m.nodes.slice(1)) {
    index.observe(n.did, {
      v: 1, node: n.did, seq: 1, at: Date.now(), intervalMs: 60_000,
      capacity: { share: free, used: { cpu: 0, memoryBytes: 0, diskBytes: 0, gpu: 0 }, free, ports: { range: [20000, 20999], used: 0, free: 1000 } },
      allocations: { total: 0, byState: {}, running: [] }, load: { loadavg1: 0, cpuNanos: 0, memoryBytes: 0 },
      facts: { owner: n.did, arch: 'amd64', region: 'eu', labels: {}, runtimes: ['container', 'wasm'], price: defaultPricePolicy },
    })
  }
  const published: string[] = []
  const asks: string[] = []
  const o = new Orchestrator({
    key: n0.key, askMarket: (to, b, body) => { if (b === MarketBehavior.bid) asks.push(to); return m.ask(n0.did, to, b, body) },
    publish: async (topic) => void published.push(topic),
    candidates: () => m.nodes.map((n) => n.did).filter((d) => d !== n0.did), latencyMs: () => 1, contracts: n0.contracts, capacityIndex: index,
    // a bid window a loaded machine cannot miss: a sampled node silent for it would widen the round
  }, { bidWindowMs: 3000, heartbeatIntervalMs: 50, checkIntervalMs: 20 })
  o.start()
  t.teardown(() => o.stop())
  const d = await o.deploy(svc({ service: { replicas: 2 } }))
  const v = await until(() => { const s = o.status(d.id); return s.phase === 'running' && s }, 30_000, 'running')
  t.equal(new Set(v.replicas.map((r) => r.node)).size, 2)
  t.ok(asks.length <= 5, `${asks.length} nodes asked for bids (this node and a sample of max(4, 2 x 2)), not 30`)
  t.same(published.filter((x) => x === 'noir/bids/v1'), [], 'no broadcast: the sample had enough bids')
  // the index now counts the reservations against the nodes that took them
  // (this node is not in its own index: it asks itself directly)
  for (const r of v.replicas.filter((x) => x.node !== n0.did)) t.ok(index.get(r.node!)!.free.cpu < 2, 'the reservation was noted in the index')
})

t.test('a sampled round stops waiting once the bids in hand decide the placement: a node still out could only lose', async (t) => {
  const { Orchestrator } = await import('../orchestrator/orchestrator.ts')
  const { CapacityIndex } = await import('../placement/capacity-index.ts')
  const { defaultPricePolicy } = await import('../placement/price.ts')
  const GiB = 2 ** 30
  const m = new SimMarket(3)
  t.teardown(() => m.close())
  const n0 = m.nodes[0]!
  const index = new CapacityIndex()
  const free = { cpu: 2, memoryBytes: 4 * GiB, diskBytes: 50 * GiB, gpu: 0 }
  for (const n of m.nodes.slice(1)) {
    index.observe(n.did, {
      v: 1, node: n.did, seq: 1, at: Date.now(), intervalMs: 60_000,
      capacity: { share: free, used: { cpu: 0, memoryBytes: 0, diskBytes: 0, gpu: 0 }, free, ports: { range: [20000, 20999], used: 0, free: 1000 } },
      allocations: { total: 0, byState: {}, running: [] }, load: { loadavg1: 0, cpuNanos: 0, memoryBytes: 0 },
      facts: { owner: n.did, arch: 'amd64', region: 'eu', labels: {}, runtimes: ['container', 'wasm'], price: defaultPricePolicy },
    })
  }
  // the other nodes' bids are held until the deployment runs: a round that waited for them would never end
  let release!: () => void
  const held = new Promise<void>((r) => (release = r))
  const lateAnswers: string[] = []
  const o = new Orchestrator({
    key: n0.key,
    askMarket: async (to, b, body) => {
      if (b === MarketBehavior.bid && to !== n0.did) {
        await held
        lateAnswers.push(to)
      }
      return m.ask(n0.did, to, b, body)
    },
    publish: async () => {}, candidates: () => m.nodes.map((n) => n.did).filter((d) => d !== n0.did), latencyMs: () => 1, contracts: n0.contracts, capacityIndex: index,
  }, { bidWindowMs: 60_000, heartbeatIntervalMs: 50, checkIntervalMs: 20 })
  o.start()
  t.teardown(() => o.stop())
  const d = await o.deploy(svc())
  const v = await until(() => { const s = o.status(d.id); return s.phase === 'running' && s }, 30_000, 'running')
  t.equal(v.replicas[0]!.node, n0.did, 'placed on this node: as cheap as the others and nearer than they can be')
  t.ok(v.events.some((e) => /bid round 1: asked 3 node\(s\), 1 bid\(s\), 0 decline\(s\), 2 answer\(s\) not awaited/.test(e.msg)), 'the round says which answers it did not wait for')
  release()
  await until(() => lateAnswers.length === 2, 5000, 'the late answers')
  await new Promise((r) => setTimeout(r, 50))
  t.equal(o.status(d.id).phase, 'running', 'the late answers change nothing')
  await o.stopDeployment(d.id)
})

t.test('awaitPhase answers as soon as the deployment reaches a phase asked for, or as it stands after the wait', async (t) => {
  const m = new SimMarket(2)
  t.teardown(() => m.close())
  const o = m.nodes[0]!.orchestrator
  const d = await o.deploy(svc())
  const v = await o.awaitPhase(d.id, ['running', 'failed'], 60_000)
  t.equal(v.phase, 'running', 'told by the deployment\'s snapshot')
  const same = await o.awaitPhase(d.id, ['stopped'], 20)
  t.equal(same.phase, 'running', 'not reached within the wait: the view as it stands')
  const stopped = o.awaitPhase(d.id, ['stopped'], 60_000)
  await o.stopDeployment(d.id)
  t.equal((await stopped).phase, 'stopped')
  t.equal((await o.awaitPhase(d.id, ['running'], 0)).phase, 'stopped', 'no wait: at once')
  await t.rejects(o.awaitPhase('nope', ['running'], 10), { name: 'DeploymentNotFoundError' })
})

t.test('awaitPhase with events: answered on the deployment\'s next event; a caller that goes away ends the wait', async (t) => {
  const m = new SimMarket(2)
  t.teardown(() => m.close())
  const o = m.nodes[0]!.orchestrator
  const d = await o.deploy(svc())
  // no phase to wait for and the longest wait: only a new event can answer it (else the test times out)
  let seen = eventCount(o.status(d.id))
  const next = await o.awaitPhase(d.id, [], 60_000, { events: seen })
  t.ok(eventCount(next) > seen, `answered with a new event (${seen} seen, ${eventCount(next)} now: ${next.events.at(-1)?.msg})`)
  await o.until(d.id, (v) => v.phase === 'running')
  seen = eventCount(o.status(d.id))
  t.equal(eventCount(await o.awaitPhase(d.id, ['stopped'], 0, { events: seen - 1 })), seen, 'fewer seen than it has: at once')
  const quiet = await o.awaitPhase(d.id, ['stopped'], 20, { events: seen })
  t.same([quiet.phase, eventCount(quiet)], ['running', seen], 'nothing new within the wait: the view as it stands')
  const ac = new AbortController()
  const waiting = o.awaitPhase(d.id, ['stopped'], 60_000, { events: seen, signal: ac.signal })
  ac.abort()
  t.equal((await waiting).phase, 'running', 'the caller went away: answered at once (else the test times out)')
  t.equal((await o.awaitPhase(d.id, ['stopped'], 60_000, { signal: ac.signal })).phase, 'running', 'an aborted caller does not wait at all')
  t.equal(o.deploymentsWaitedOn, 0, 'every wait ended: no deployment keeps a set of waiters')
  const stopping = o.awaitPhase(d.id, ['stopped'], 60_000)
  t.equal(o.deploymentsWaitedOn, 1, 'one deployment waited on')
  await o.stopDeployment(d.id)
  await stopping
  t.equal(o.deploymentsWaitedOn, 0, 'and none once it answered')
})

t.test('eventsDropped counts the events no longer kept, so a count of events seen stays true past MAX_EVENTS', async (t) => {
  const c = { events: [] as { at: number; msg: string }[], eventsDropped: undefined as number | undefined }
  for (let i = 0; i < MAX_EVENTS + 7; i++) note(c as never, i, `e${i}`)
  t.equal(c.events.length, MAX_EVENTS)
  t.equal(c.eventsDropped, 7)
  t.equal(eventCount(c), MAX_EVENTS + 7)
  t.equal(c.events[0]!.msg, 'e7', 'events[0] is event number eventsDropped')
  t.equal(eventCount({ events: [{ at: 1, msg: 'x' }] }), 1, 'a snapshot older than the field: none dropped')
})

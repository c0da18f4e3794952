// The provider side as actors (in-process: real Provider, market and contract actors, signatures, in-memory
// capacity and store, a scripted runner): one contract actor per contract under the market actor, requests
// routed to it, reservations that expire, and a provider restarted on the same store taking its contracts up.
import t from 'tap'
import { NodeKey } from '../../identity/keys.ts'
import { signBidRequest } from '../bidding/messages.ts'
import { proposeContract, workloadDigest, type Contract } from '../contracts/contract.ts'
import { ContractNotFoundError, InvalidTermsError, OrchestrationError, ReservationFailedError } from '../errors.ts'
import { defaultPricePolicy } from '../placement/price.ts'
import { MemoryCapacity } from '../provider/memory-capacity.ts'
import { Provider, type ReplicaReport } from '../provider/provider.ts'
import { MemoryContractStore } from './memory-contract-store.ts'
import { ScriptedRunner, until } from './sim.ts'
import { workload } from './helpers.ts'

const GiB = 2 ** 30

async function eventually(fn: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 10))
  }
}
const w = workload({ resources: { cpu: 0.5, memory: '256Mi' } })

function node(o: { ttlMs?: number; key?: NodeKey; contracts?: MemoryContractStore; runner?: ScriptedRunner; capacity?: MemoryCapacity } = {}) {
  const key = o.key ?? NodeKey.generate()
  const runner = o.runner ?? new ScriptedRunner(key.did)
  const contracts = o.contracts ?? new MemoryContractStore()
  const capacity = o.capacity ?? new MemoryCapacity({ cpu: 2, memoryBytes: 4 * GiB, gpu: 0, vramBytes: 0, diskBytes: 50 * GiB })
  const reports: ReplicaReport[] = []
  const provider = new Provider({
    key, facts: { did: key.did, owner: key.did, arch: 'amd64', region: 'eu', labels: {} }, capacity, runner, contracts, price: defaultPricePolicy,
    report: (_consumer, r) => void reports.push(r), ...(o.ttlMs ? { reservationTtlMs: o.ttlMs } : {}),
  })
  return { key, runner, contracts, capacity, provider, reports }
}

/** A consumer's proposal for `p`, accepting a bid `p` just made. */
async function propose(p: Provider, consumer: NodeKey, o: { epoch?: number; slot?: string } = {}): Promise<Contract> {
  const req = signBidRequest(consumer, { deploymentId: 'd1', workload: w, count: 1 })
  const answer = await p.bid(JSON.parse(JSON.stringify(req)))
  if (!('bid' in answer)) throw new Error('no bid')
  const b = answer.bid.body
  const c = proposeContract(consumer, {
    deploymentId: 'd1', workloadName: w.name, kind: w.kind, slot: o.slot ?? 'd1/0', epoch: o.epoch ?? 1, provider: p.did, providerOwner: b.owner, bidId: b.id,
    resources: w.resources, pricePerHour: b.pricePerHour, lane: w.lane, role: 'replica', durationSeconds: 60, workloadDigest: workloadDigest(w),
  })
  return p.propose({ contract: c, workload: w }, consumer.did)
}

t.test('each contract is an actor under the market actor, and once it ended its record answers for it', async (t) => {
  const n = node()
  await n.provider.start()
  t.teardown(() => n.provider.stop())
  const consumer = NodeKey.generate()
  const c = await propose(n.provider, consumer)
  const path = `market/${c.terms.id}`
  t.ok(n.provider.system.lookup(path), `the contract's actor is at <did>/${path}`)
  t.same(n.provider.system.actors(), ['market', path])
  const { instanceId } = await n.provider.startWork({ contractId: c.terms.id }, consumer.did)
  t.equal((await n.contracts.get(c.terms.id, 'provider'))?.status, 'active')
  await until(() => n.reports.some((r) => r.state === 'running'), 2000, 'the running report')
  t.same(n.reports[0], { contractId: c.terms.id, deploymentId: 'd1', slot: 'd1/0', epoch: 1, node: n.key.did, state: 'running', at: n.reports[0]!.at }, 'the runner\'s status reached the consumer as a report')

  t.same(await n.provider.stopWork({ contractId: c.terms.id }, consumer.did), { stopped: true })
  t.equal(n.runner.running(), 0)
  await until(() => !n.provider.system.lookup(path), 2000, 'the actor gone')
  t.equal((await n.contracts.get(c.terms.id, 'provider'))?.status, 'ended')
  t.same(await n.provider.stopWork({ contractId: c.terms.id }, consumer.did), { stopped: true }, 'a stop asked again is answered from the record')
  t.match((await n.provider.logs({ contractId: c.terms.id }, consumer.did)).lines[0]?.line, /started on/, 'the logs stay readable')
  await t.rejects(n.provider.startWork({ contractId: c.terms.id }, consumer.did), InvalidTermsError, 'an ended contract does not start again')
  await t.rejects(n.provider.propose({ contract: c, workload: w }, consumer.did), InvalidTermsError, 'nor is it proposed again')
  t.notOk(n.provider.system.lookup(path), 'none of which brings its actor back')
  t.ok(instanceId)
})

t.test('only the consumer of a contract may start, stop or read it; an unknown contract is ContractNotFoundError', async (t) => {
  const n = node()
  await n.provider.start()
  t.teardown(() => n.provider.stop())
  const consumer = NodeKey.generate()
  const stranger = NodeKey.generate()
  const c = await propose(n.provider, consumer)
  const calls: [string, () => Promise<unknown>][] = [
    ['start', () => n.provider.startWork({ contractId: c.terms.id }, stranger.did)],
    ['stop', () => n.provider.stopWork({ contractId: c.terms.id }, stranger.did)],
    ['logs', () => n.provider.logs({ contractId: c.terms.id }, stranger.did)],
  ]
  for (const [what, call] of calls) {
    await t.rejects(call(), OrchestrationError, `a stranger's ${what}`)
  }
  t.equal((await n.contracts.get(c.terms.id, 'provider'))?.status, 'reserved', 'nothing changed')
  t.equal(n.runner.running(), 0)
  for (const contractId of ['no-such-contract', '../market', 'a/b', '']) {
    await t.rejects(n.provider.startWork({ contractId }, consumer.did), ContractNotFoundError, `contract id ${JSON.stringify(contractId)}`)
  }
})

t.test('a reservation never started expires: released, recorded `expired`, and a late start is ReservationFailedError', async (t) => {
  const n = node({ ttlMs: 150 })
  await n.provider.start()
  t.teardown(() => n.provider.stop())
  const consumer = NodeKey.generate()
  const c = await propose(n.provider, consumer)
  t.equal(n.capacity.free().cpu, 1.5, 'held while reserved')
  await eventually(async () => (await n.contracts.get(c.terms.id, 'provider'))?.status === 'expired', 3000, 'expired')
  t.equal(n.capacity.free().cpu, 2, 'given back')
  await t.rejects(n.provider.startWork({ contractId: c.terms.id }, consumer.did), ReservationFailedError)
  t.equal(n.runner.running(), 0)
})

t.test('a provider restarted on the same store takes its contracts up: the running one follows its instance, an old reservation expires', async (t) => {
  const first = node({ ttlMs: 400 })
  await first.provider.start()
  const consumer = NodeKey.generate()
  const running = await propose(first.provider, consumer, { slot: 'd1/0' })
  const { instanceId } = await first.provider.startWork({ contractId: running.terms.id }, consumer.did)
  const waiting = await propose(first.provider, consumer, { slot: 'd1/1' })
  await first.provider.stop()
  t.equal(first.runner.running(), 1, 'the instance outlives the provider (a restarted node takes it up)')

  const second = node({ ttlMs: 400, key: first.key, contracts: first.contracts, runner: first.runner, capacity: first.capacity })
  await second.provider.start()
  t.teardown(() => second.provider.stop())
  t.ok(second.provider.system.lookup(`market/${running.terms.id}`), 'the active contract has its actor again')
  t.ok(second.provider.system.lookup(`market/${waiting.terms.id}`), 'and so has the reserved one')
  t.same(await second.provider.startWork({ contractId: running.terms.id }, consumer.did), { instanceId }, 'the same instance')
  await eventually(async () => (await second.contracts.get(waiting.terms.id, 'provider'))?.status === 'expired', 3000, 'the reservation expired')

  // Its instance's statuses reach the contract again: it exits, the contract ends and the consumer hears it.
  second.runner.exit(instanceId, 3)
  await eventually(async () => (await second.contracts.get(running.terms.id, 'provider'))?.status === 'ended', 2000, 'ended')
  t.same(second.reports.filter((r) => r.state !== 'running').map((r) => [r.contractId, r.state, r.code]), [[running.terms.id, 'exited', 3]])
})

t.test('the time a provider was down counts against the leases it takes up: down longer than a lease, its copies stop at once', async (t) => {
  const first = node()
  await first.provider.start()
  const consumer = NodeKey.generate()
  const kept = await propose(first.provider, consumer, { slot: 'd1/0' })
  await first.provider.startWork({ contractId: kept.terms.id }, consumer.did)
  const orphan = await propose(first.provider, consumer, { slot: 'd1/1' })
  await first.provider.startWork({ contractId: orphan.terms.id }, consumer.did)
  await first.provider.stop()
  t.equal(first.runner.running(), 2, 'both instances outlive the provider')

  // Down briefly: the lease (30 s, the default) has most of its time left; the copy runs on.
  const brief = node({ key: first.key, contracts: first.contracts, runner: first.runner, capacity: first.capacity })
  await brief.provider.start()
  await new Promise((r) => setTimeout(r, 300))
  t.equal((await brief.contracts.get(kept.terms.id, 'provider'))?.status, 'active', 'a short restart leaves the lease running')
  await brief.provider.stop()

  // Down for 40 s (the node's note of its last moment alive says so): every lease it held ran out meanwhile.
  await first.contracts.putNote('provider alive-at', String(Date.now() - 40_000))
  const late = node({ key: first.key, contracts: first.contracts, runner: first.runner, capacity: first.capacity })
  await late.provider.start()
  t.teardown(() => late.provider.stop())
  for (const c of [kept, orphan]) {
    await eventually(async () => (await late.contracts.get(c.terms.id, 'provider'))?.status === 'lease-expired', 3000, `${c.terms.slot} lease-expired`)
  }
  await eventually(async () => late.runner.running() === 0, 3000, 'no copy runs')
  t.match((await late.contracts.get(kept.terms.id, 'provider'))?.note ?? '', /lease expired/, 'recorded as the lease running out')
})

t.test('a restarted provider stops an instance no live contract holds (it died between the start and its record)', async (t) => {
  const first = node()
  await first.provider.start()
  const consumer = NodeKey.generate()
  const held = await propose(first.provider, consumer, { slot: 'd1/0' })
  const { instanceId: heldId } = await first.provider.startWork({ contractId: held.terms.id }, consumer.did)
  const unheld = await propose(first.provider, consumer, { slot: 'd1/1' })
  // the runner started it, but the node died before the contract recorded the start: it still says `reserved`
  const { instanceId: orphanId } = await first.runner.start({ contractId: unheld.terms.id, workload: w })
  await first.provider.stop()
  t.equal(first.runner.running(), 2, 'both instances outlive the provider')
  t.equal((await first.contracts.get(unheld.terms.id, 'provider'))?.status, 'reserved')

  const second = node({ key: first.key, contracts: first.contracts, runner: first.runner, capacity: first.capacity })
  await second.provider.start()
  t.teardown(() => second.provider.stop())
  t.equal(first.runner.instances.get(orphanId)?.state, 'stopped', 'the instance no live contract holds is stopped')
  t.equal(first.runner.instances.get(heldId)?.state, 'running', 'the one its active contract holds runs on')
})


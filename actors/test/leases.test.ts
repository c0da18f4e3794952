// Leases on the provider, in-process (real Provider, market and contract actors, signatures, in-memory
// capacity and store, a scripted runner; real timers with short leases): the consumer's batched renewal
// keeps its work running, a lease nobody renews ends it and frees the capacity, a stranger's renewal is
// refused with a typed error and renews nothing, and the question of a restarted orchestrator is answered
// with its own contracts only. The lease timer itself is proven step by step in contract-machine.test.ts.
import t from 'tap'
import { NodeKey } from '../../identity/keys.ts'
import { signBidRequest } from '../bidding/messages.ts'
import { proposeContract, workloadDigest, type Contract } from '../contracts/contract.ts'
import { InvalidTermsError, LeaseExpiredError, NotContractConsumerError } from '../errors.ts'
import { defaultPricePolicy } from '../placement/price.ts'
import { MemoryCapacity } from '../provider/memory-capacity.ts'
import { Provider } from '../provider/provider.ts'
import { leaseView } from '../provider/leases.ts'
import { MemoryContractStore } from './memory-contract-store.ts'
import { ScriptedRunner, until } from './sim.ts'
import { workload } from './helpers.ts'

const GiB = 2 ** 30
const LEASE = 400
const w = workload({ resources: { cpu: 0.5, memory: '256Mi' } })

function node() {
  const key = NodeKey.generate()
  const runner = new ScriptedRunner(key.did)
  const contracts = new MemoryContractStore()
  const capacity = new MemoryCapacity({ cpu: 2, memoryBytes: 4 * GiB, gpu: 0, vramBytes: 0, diskBytes: 50 * GiB })
  const provider = new Provider({
    key, facts: { did: key.did, owner: key.did, arch: 'amd64', region: 'eu', labels: {} }, capacity, runner, contracts, price: defaultPricePolicy,
    report: () => undefined, lease: { minMs: 100, maxMs: 60_000, defaultMs: 30_000 },
  })
  return { key, runner, contracts, capacity, provider }
}

async function propose(p: Provider, consumer: NodeKey, o: { leaseMs?: number; slot?: string } = {}): Promise<Contract> {
  const req = signBidRequest(consumer, { deploymentId: 'd1', workload: w, count: 1 })
  const answer = await p.bid(JSON.parse(JSON.stringify(req)))
  if (!('bid' in answer)) throw new Error('no bid')
  const b = answer.bid.body
  const c = proposeContract(consumer, {
    deploymentId: 'd1', workloadName: w.name, kind: w.kind, slot: o.slot ?? 'd1/0', epoch: 1, provider: p.did, providerOwner: b.owner, bidId: b.id,
    resources: w.resources, pricePerHour: b.pricePerHour, lane: w.lane, role: 'replica', durationSeconds: 60, workloadDigest: workloadDigest(w),
    leaseMs: o.leaseMs ?? LEASE,
  })
  return p.propose({ contract: c, workload: w }, consumer.did)
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

t.test('renewed every third of its lease, a contract runs well past several leases; unrenewed, it stops and frees its capacity', async (t) => {
  const n = node()
  await n.provider.start()
  t.teardown(() => n.provider.stop())
  const consumer = NodeKey.generate()
  const kept = await propose(n.provider, consumer, { slot: 'd1/0' })
  const dropped = await propose(n.provider, consumer, { slot: 'd1/1' })
  await n.provider.startWork({ contractId: kept.terms.id }, consumer.did)
  await n.provider.startWork({ contractId: dropped.terms.id }, consumer.did)
  t.equal(n.runner.running(), 2)
  const freeBefore = (await n.capacity.free()).cpu
  const end = Date.now() + 5 * LEASE
  while (Date.now() < end) {
    const a = await n.provider.renew({ contracts: [kept.terms.id] }, consumer.did)
    t.same(a.refused, [])
    await sleep(LEASE / 3)
  }
  t.equal((await n.contracts.get(kept.terms.id, 'provider'))?.status, 'active', 'renewed: still active after five leases')
  const gone = await n.contracts.get(dropped.terms.id, 'provider')
  t.equal(gone?.status, 'lease-expired', 'never renewed: its lease ran out')
  t.match(gone?.note, /lease expired: no renewal from the consumer/)
  t.equal(n.runner.running(), 1, 'its instance was stopped')
  t.equal((await n.capacity.free()).cpu, freeBefore + 0.5, 'and its capacity released')
  const a = await n.provider.renew({ contracts: [kept.terms.id, dropped.terms.id, 'no-such-contract'] }, consumer.did)
  t.same(a.renewed, [kept.terms.id])
  t.same(a.gone.map((g) => [g.contractId, g.status]), [[dropped.terms.id, 'lease-expired'], ['no-such-contract', 'unknown']], 'the answer names what the provider no longer holds')
  await t.rejects(n.provider.startWork({ contractId: dropped.terms.id }, consumer.did), LeaseExpiredError)
})

t.test('a stranger renewing someone else\'s contract is refused with NotContractConsumerError, and renews nothing', async (t) => {
  const n = node()
  await n.provider.start()
  t.teardown(() => n.provider.stop())
  const consumer = NodeKey.generate()
  const stranger = NodeKey.generate()
  const c = await propose(n.provider, consumer)
  await n.provider.startWork({ contractId: c.terms.id }, consumer.did)
  const end = Date.now() + 2 * LEASE
  while (Date.now() < end) {
    const a = await n.provider.renew({ contracts: [c.terms.id] }, stranger.did)
    t.same(a.renewed, [], 'nothing renewed')
    t.equal(a.refused[0]?.error.name, 'NotContractConsumerError', 'a typed refusal the sender can read')
    await sleep(LEASE / 4)
  }
  await until(() => n.runner.running() === 0, 2000, 'the lease to run out despite the stranger')
  t.equal((await n.contracts.get(c.terms.id, 'provider'))?.status, 'lease-expired')
  t.equal(n.runner.running(), 0)
  await t.rejects(n.provider.renew({ contracts: 'x' } as never, stranger.did), InvalidTermsError, 'a malformed renewal is refused')
  await t.rejects(n.provider.renew({ contracts: Array.from({ length: 1001 }, (_, i) => `c${i}`) }, stranger.did), InvalidTermsError, 'so is a batch above 1000 ids')
})

t.test('contracts-of-consumer answers the asker\'s own live contracts only; asking for another consumer\'s is refused', async (t) => {
  const n = node()
  await n.provider.start()
  t.teardown(() => n.provider.stop())
  const consumer = NodeKey.generate()
  const stranger = NodeKey.generate()
  const c = await propose(n.provider, consumer, { leaseMs: 30_000 })
  const mine = await n.provider.contractsOf({}, consumer.did)
  t.same(mine.contracts.map((x) => [x.contractId, x.consumer, x.status, x.leaseMs]), [[c.terms.id, consumer.did, 'reserved', 30_000]])
  t.ok(mine.contracts[0]!.leaseRemainingMs! > 25_000, 'with the lease left')
  t.same((await n.provider.contractsOf({}, stranger.did)).contracts, [], 'a stranger sees none of them')
  await t.rejects(n.provider.contractsOf({ consumer: consumer.did }, stranger.did), NotContractConsumerError)
  const view = await n.provider.leases()
  t.equal(view.length, 1, 'the node\'s own view lists it')
  t.equal(view[0]!.late, false)
})

t.test('a proposal whose lease is outside what the provider accepts is refused with InvalidTermsError', async (t) => {
  const n = node()
  await n.provider.start()
  t.teardown(() => n.provider.stop())
  const consumer = NodeKey.generate()
  await t.rejects(propose(n.provider, consumer, { leaseMs: 50 }), InvalidTermsError)
  await t.rejects(propose(n.provider, consumer, { leaseMs: 120_000 }), InvalidTermsError)
  t.same(await n.contracts.list(), [], 'nothing was reserved or written')
})

t.test('a consumer that let more than half its lease pass without renewing is shown late', async (t) => {
  const consumer = NodeKey.generate()
  const n = node()
  await n.provider.start()
  t.teardown(() => n.provider.stop())
  const c = await propose(n.provider, consumer, { leaseMs: 30_000 })
  const s = (await n.contracts.get(c.terms.id, 'provider'))!
  t.match(leaseView(s, { leaseMs: 30_000, renewedAgoMs: 10_000 }), { late: false, leaseRemainingMs: 20_000, lastRenewalAgeMs: 10_000 })
  t.match(leaseView(s, { leaseMs: 30_000, renewedAgoMs: 16_000 }), { late: true, leaseRemainingMs: 14_000 })
  t.match(leaseView(s, undefined), { late: false, leaseMs: null, leaseRemainingMs: null }, 'no actor (yet): no lease figures')
})

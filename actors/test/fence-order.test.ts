// Fences ordered by (orchestrator epoch, slot epoch), tried on a real Provider (market and contract actors,
// real signatures and capabilities, in-memory capacity and store, a scripted runner). The case they close
// (spec/chaos.md "Known failures"): a partition cut the orchestrator off, its standby took the deployment over
// and placed a lost slot again, and after the heal the old orchestrator placed the same slot on a provider
// that never heard of the takeover, at the SAME slot epoch. A fence naming its current contract, and a
// standby's fence carrying its handover, stop that copy; nobody else can use either to stop anything.
import t, { type Test } from 'tap'
import { issueCapability } from '../../identity/capabilities.ts'
import { NodeKey } from '../../identity/keys.ts'
import { signBidRequest } from '../bidding/messages.ts'
import { proposeContract, workloadDigest, type Contract } from '../contracts/contract.ts'
import { HandedOverError, InvalidTermsError, NotStandbyError, UnknownSlotError } from '../errors.ts'
import { defaultPricePolicy } from '../placement/price.ts'
import { MemoryCapacity } from '../provider/memory-capacity.ts'
import { ORCHESTRATE_ABILITY } from '../provider/orchestrator-authority.ts'
import { Provider } from '../provider/provider.ts'
import { MemoryContractStore } from './memory-contract-store.ts'
import { ScriptedRunner, until } from './sim.ts'
import { workload } from './helpers.ts'

const GiB = 2 ** 30
const w = workload({ resources: { cpu: 0.25, memory: '64Mi' } })
const token = (issuer: NodeKey, audience: string, can = ORCHESTRATE_ABILITY) => issueCapability(issuer, { audience, abilities: [{ can }], ttlMs: 60_000 })

async function providerNode(t: Test) {
  const key = NodeKey.generate()
  const runner = new ScriptedRunner(key.did)
  const contracts = new MemoryContractStore()
  const provider = new Provider({
    key, facts: { did: key.did, owner: key.did, arch: 'amd64', region: 'eu', labels: {} }, runner, contracts, price: defaultPricePolicy,
    capacity: new MemoryCapacity({ cpu: 4, memoryBytes: 8 * GiB, gpu: 0, vramBytes: 0, diskBytes: 50 * GiB }), report: () => undefined,
  })
  await provider.start()
  t.teardown(() => provider.stop())
  return { key, runner, contracts, provider }
}

/** A contract of `consumer` for `slot` at `epoch` on `p`, countersigned and started. */
async function running(p: Provider, consumer: NodeKey, slot: string, epoch: number): Promise<Contract> {
  const deploymentId = slot.slice(0, slot.lastIndexOf('/'))
  const req = signBidRequest(consumer, { deploymentId, workload: w, count: 1 })
  const answer = await p.bid(JSON.parse(JSON.stringify(req)))
  if (!('bid' in answer)) throw new Error('no bid')
  const b = answer.bid.body
  const c = await p.propose({
    contract: proposeContract(consumer, {
      deploymentId, workloadName: w.name, kind: w.kind, slot, epoch, provider: p.did, providerOwner: b.owner, bidId: b.id,
      resources: w.resources, pricePerHour: b.pricePerHour, lane: w.lane, role: 'replica', durationSeconds: 600, workloadDigest: workloadDigest(w),
    }),
    workload: w,
  }, consumer.did)
  await p.startWork({ contractId: c.terms.id }, consumer.did)
  return c
}

const status = async (s: MemoryContractStore, id: string) => (await s.get(id, 'provider'))?.status

t.test('a fence naming its slot\'s current contract stops another copy at the same epoch; one without a name does not', async (t) => {
  const n = await providerNode(t)
  const consumer = NodeKey.generate()
  // the same slot placed twice at one epoch (an orchestrator killed before it recorded its first placement)
  const kept = await running(n.provider, consumer, 'd1/0', 2)
  const twin = await running(n.provider, consumer, 'd1/0', 2)
  await until(() => n.runner.running() === 2, 2000, 'both copies run')

  const unnamed = await n.provider.fence({ slot: 'd1/0', epoch: 2 }, consumer.did)
  t.same(unnamed.stopped, [], 'a fence at their epoch that names no contract stops neither (the old rule)')

  const r = await n.provider.fence({ slot: 'd1/0', epoch: 2, contractId: kept.terms.id }, consumer.did)
  t.same(r.stopped, [twin.terms.id], 'the copy the fence does not name is stopped')
  t.equal(await status(n.contracts, twin.terms.id), 'superseded')
  t.equal(await status(n.contracts, kept.terms.id), 'active', 'the named contract runs on')
  await until(() => n.runner.running() === 1, 2000, 'one copy left')

  // a stranger cannot use a name to stop anything
  const stranger = NodeKey.generate()
  await t.rejects(n.provider.fence({ slot: 'd1/0', epoch: 2, contractId: twin.terms.id }, stranger.did), UnknownSlotError)
  t.equal(await status(n.contracts, kept.terms.id), 'active')
  await t.rejects(n.provider.fence({ slot: 'd1/0', epoch: 2, contractId: '../../etc' }, consumer.did), InvalidTermsError, 'a malformed contract name')
})

t.test('a standby\'s fence carrying its handover stops the old orchestrator\'s copy at the same epoch, on a provider that never heard of the takeover', async (t) => {
  const n = await providerNode(t)
  const old = NodeKey.generate()
  const standby = NodeKey.generate()
  // after the heal the old orchestrator placed slot d2/1 here at epoch 3; its standby had placed it elsewhere at 3
  const stale = await running(n.provider, old, 'd2/1', 3)
  const other = await running(n.provider, old, 'd2/0', 1) // another slot of the deployment: not the fence's business
  const handover = { consumer: old.did, deploymentId: 'd2', epoch: 2, token: await token(old, standby.did) }

  // without the handover the standby is a stranger here
  await t.rejects(n.provider.fence({ slot: 'd2/1', epoch: 3, contractId: 'c-elsewhere' }, standby.did), UnknownSlotError)
  t.equal(await status(n.contracts, stale.terms.id), 'active')

  const r = await n.provider.fence({ slot: 'd2/1', epoch: 3, contractId: 'c-elsewhere', handover }, standby.did)
  t.same(r.stopped, [stale.terms.id], 'the old orchestrator\'s copy is outranked: (1, 3) < (2, 3)')
  t.equal(await status(n.contracts, other.terms.id), 'active', 'the deployment\'s other slot runs on')
  // the handover was recorded: the old orchestrator is refused from now on
  await t.rejects(running(n.provider, old, 'd2/1', 4), HandedOverError, 'the old orchestrator proposes no more for it')
  await t.rejects(n.provider.fence({ slot: 'd2/0', epoch: 5 }, old.did), UnknownSlotError, 'nor fences its slots')
  // a copy the old orchestrator made at a higher epoch is outranked too, when the fence names the current one
  const higher = await running(n.provider, old, 'd3/0', 7)
  const r2 = await n.provider.fence({ slot: 'd3/0', epoch: 4, contractId: 'c-current', handover: { ...handover, deploymentId: 'd3', token: await token(old, standby.did) } }, standby.did)
  t.same(r2.stopped, [higher.terms.id], 'orchestrator epoch first: (1, 7) < (2, 4)')
})

t.test('a fence\'s handover is checked as a direct handover is: forged, misdirected or foreign ones change nothing', async (t) => {
  const n = await providerNode(t)
  const old = NodeKey.generate()
  const standby = NodeKey.generate()
  const mallory = NodeKey.generate()
  const victim = await running(n.provider, old, 'd4/0', 2)
  const records = n.contracts.epochRecords()
  const forged = [
    { what: 'a chain mallory issued to itself', from: mallory, h: { consumer: old.did, deploymentId: 'd4', epoch: 2, token: await token(mallory, mallory.did) } },
    { what: 'the standby\'s real token, sent by mallory', from: mallory, h: { consumer: old.did, deploymentId: 'd4', epoch: 2, token: await token(old, standby.did) } },
    { what: 'another ability', from: mallory, h: { consumer: old.did, deploymentId: 'd4', epoch: 2, token: await token(old, mallory.did, '/noir/market') } },
  ]
  for (const f of forged) {
    await t.rejects(n.provider.fence({ slot: 'd4/0', epoch: 2, contractId: 'c-x', handover: f.h }, f.from.did), NotStandbyError, f.what)
  }
  // a handover for another deployment than the fenced slot's
  await t.rejects(n.provider.fence({ slot: 'd4/0', epoch: 2, contractId: 'c-x', handover: { consumer: old.did, deploymentId: 'd9', epoch: 2, token: await token(old, standby.did) } }, standby.did), InvalidTermsError)
  for (const bad of [null, 'x', { consumer: old.did }, { consumer: 1, deploymentId: 'd4' }]) {
    await t.rejects(n.provider.fence({ slot: 'd4/0', epoch: 2, handover: bad as never }, standby.did), InvalidTermsError, `handover ${JSON.stringify(bad)}`)
  }
  t.equal(await status(n.contracts, victim.terms.id), 'active', 'the copy runs on')
  t.equal(n.contracts.epochRecords(), records, 'nothing was recorded')
  // a real handover for a deployment this node holds nothing of records nothing either (no store growth)
  await t.rejects(n.provider.fence({ slot: 'd5/0', epoch: 2, contractId: 'c-y', handover: { consumer: old.did, deploymentId: 'd5', epoch: 2, token: await token(old, standby.did) } }, standby.did), UnknownSlotError)
  t.equal(n.contracts.epochRecords(), records)
})

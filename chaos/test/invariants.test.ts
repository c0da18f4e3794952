// The checker on synthetic observations: a clean state passes, and a state that breaks each invariant is
// reported under that invariant (and flagged as awaiting leases only where contract leases would fix it).
import t from 'tap'
import { checkInvariants, currentViews, DEFAULT_BOUNDS, INVARIANTS, uncoveredMs, type Violation } from '../invariants.ts'
import type { ContractSeen, DeploymentSeen, NodeSeen, Observation } from '../observation.ts'

const A = 'did:key:zOrchestratorAAAA'
const B = 'did:key:zStandbyBBBBBBBBBB'
const P = 'did:key:zProviderPPPPPPPPP'
const Q = 'did:key:zProviderQQQQQQQQQ'
const NOW = 1_000_000

const deployment = (over: Partial<DeploymentSeen> = {}): DeploymentSeen => ({
  id: 'dep-1', phase: 'running', reason: null, desired: 1, standby: null, orchestratorEpoch: 1, takenOverFrom: null,
  replicas: [{ slot: 'dep-1/0', node: P, contractId: 'c-1', state: 'running', epoch: 1 }],
  ...over,
})
const contract = (over: Partial<ContractSeen> = {}): ContractSeen => ({
  id: 'c-1', side: 'provider', status: 'active', deploymentId: 'dep-1', slot: 'dep-1/0', role: 'replica', consumer: A, provider: P,
  startsAt: NOW - 60_000, endsAt: NOW + 3_600_000, cpu: 0.2,
  ...over,
})
const node = (index: number, did: string, over: Partial<NodeSeen> = {}): NodeSeen => ({ index, did, live: true, deployments: [], contracts: [], usedCpu: 0, ...over })

/** One deployment on A with one replica running on P: every invariant holds. */
function clean(): Observation {
  return {
    at: NOW,
    containers: [{ id: 'box-1', node: P, contract: 'c-1', slot: 'dep-1/0', graceMs: 3_000 }],
    nodes: [node(0, A, { deployments: [deployment()] }), node(1, B), node(2, P, { contracts: [contract()], usedCpu: 0.2 }), node(3, Q)],
    creates: [{ key: 'k1', id: 'dep-1', via: 0, at: NOW - 60_000, stopAckedAt: null, replayedId: 'dep-1' }],
    doubleRuns: [],
    faultWindows: [],
  }
}

const names = (vs: Violation[]): string[] => [...new Set(vs.map((v) => v.invariant))].sort()

t.test('a clean state passes every invariant', async (t) => {
  t.same(checkInvariants(clean()), [])
})

t.test('container-attributed: a container no live orchestrator knows, or of a stopped deployment, or on the wrong node', async (t) => {
  const o = clean()
  o.containers.push({ id: 'box-2', node: Q, contract: 'c-lost', slot: 'dep-9/0', graceMs: 3_000 })
  const v = checkInvariants(o).filter((x) => x.invariant === 'container-attributed')
  t.equal(v.length, 1)
  t.match(v[0]!.detail, /no live orchestrator/)
  t.equal(v[0]!.awaitsLeases, true, 'an orphan is what leases end')

  const stopped = clean()
  stopped.nodes[0]!.deployments = [deployment({ phase: 'stopped' })]
  const s = checkInvariants(stopped).filter((x) => x.invariant === 'container-attributed')
  t.match(s[0]!.detail, /is stopped on its orchestrator/)
  t.equal(s[0]!.awaitsLeases, false, 'a stop that did not stop is a bug, not a missing lease')

  const moved = clean()
  moved.containers[0] = { ...moved.containers[0]!, node: Q }
  t.match(checkInvariants(moved).find((x) => x.invariant === 'container-attributed')!.detail, /places that replica on/)
})

t.test('slot-runs-once: two copies left at the end, or a double run longer than the bound outside network faults', async (t) => {
  const twice = clean()
  twice.containers.push({ id: 'box-3', node: Q, contract: 'c-1', slot: 'dep-1/0', graceMs: 3_000 })
  t.ok(checkInvariants(twice).some((v) => v.invariant === 'slot-runs-once' && /still runs 2 copies/.test(v.detail)))

  const long = clean()
  long.doubleRuns = [{ slot: 'dep-1/0', nodes: [P, Q], graceMs: 1_000, from: NOW - 10_000, to: NOW - 5_000 }]
  const v = checkInvariants(long).filter((x) => x.invariant === 'slot-runs-once')
  t.equal(v.length, 1)
  t.match(v[0]!.detail, /for 5000 ms outside network faults, bound 2000 ms/)

  const short = clean()
  short.doubleRuns = [{ slot: 'dep-1/0', nodes: [P, Q], graceMs: 1_000, from: NOW - 10_000, to: NOW - 8_500 }]
  t.same(checkInvariants(short), [], 'within grace + slack')

  const cutOff = clean()
  cutOff.doubleRuns = long.doubleRuns
  cutOff.faultWindows = [{ kind: 'cut', nodes: [P], from: NOW - 12_000, to: NOW - 9_000 }]
  t.same(checkInvariants(cutOff), [], 'a double run while its node was cut off, and within the heal grace after, is excused')
  cutOff.faultWindows = [{ kind: 'cut', nodes: [B], from: NOW - 12_000, to: NOW - 9_000 - DEFAULT_BOUNDS.healGraceMs }]
  t.equal(checkInvariants(cutOff).length, 1, 'a cut of another node long before does not excuse it')
})

t.test('reservation-owned: a live contract nobody holds, a stale reservation, capacity held without a contract', async (t) => {
  const orphan = clean()
  orphan.nodes[3] = node(3, Q, { contracts: [contract({ id: 'c-9', provider: Q, deploymentId: 'dep-9', slot: 'dep-9/0' })], usedCpu: 0.2 })
  const v = checkInvariants(orphan).filter((x) => x.invariant === 'reservation-owned')
  t.equal(v.length, 1)
  t.match(v[0]!.detail, /active contract c-9.*no live orchestrator holds it/)
  t.equal(v[0]!.awaitsLeases, true)

  const fresh = clean()
  fresh.nodes[3] = node(3, Q, { contracts: [contract({ id: 'c-8', status: 'reserved', provider: Q, startsAt: NOW - 10_000 })], usedCpu: 0.2 })
  t.same(checkInvariants(fresh), [], 'a reservation younger than its time-out ends by itself')
  fresh.nodes[3]!.contracts[0]!.startsAt = NOW - DEFAULT_BOUNDS.reservationTtlMs - DEFAULT_BOUNDS.reservationSlackMs - 1
  t.equal(checkInvariants(fresh).filter((x) => x.invariant === 'reservation-owned').length, 1, 'one past its time-out is reported')

  const stopped = clean()
  stopped.containers = []
  stopped.nodes[0]!.deployments = [deployment({ phase: 'stopped' })]
  const s = checkInvariants(stopped).filter((x) => x.invariant === 'reservation-owned')
  t.match(s[0]!.detail, /of a deployment its orchestrator .* has stopped/)
  t.equal(s[0]!.awaitsLeases, false)

  const leak = clean()
  leak.nodes[2]!.usedCpu = 0.6
  t.match(checkInvariants(leak).find((x) => x.invariant === 'reservation-owned')!.detail, /holds 0.6 cpu but its live contracts account for 0.2/)
})

t.test('deployment-settled: degraded for good, an acknowledged stop not carried out, a failure without a reason', async (t) => {
  const degraded = clean()
  degraded.nodes[0]!.deployments = [deployment({ phase: 'degraded', replicas: [{ slot: 'dep-1/0', node: P, contractId: 'c-1', state: 'lost', epoch: 1 }] })]
  t.ok(checkInvariants(degraded).some((v) => v.invariant === 'deployment-settled' && /degraded with 0 of 1/.test(v.detail)))

  const notStopped = clean()
  notStopped.creates[0]!.stopAckedAt = NOW - 5_000
  t.ok(checkInvariants(notStopped).some((v) => v.invariant === 'deployment-settled' && /stop was acknowledged, but it is running/.test(v.detail)))

  const failed = clean()
  failed.containers = []
  failed.nodes[2]!.contracts = []
  failed.nodes[2]!.usedCpu = 0
  failed.nodes[0]!.deployments = [deployment({ phase: 'failed', reason: null })]
  t.same(names(checkInvariants(failed)), ['deployment-settled'])
  failed.nodes[0]!.deployments = [deployment({ phase: 'failed', reason: 'no node meets memory' })]
  t.same(checkInvariants(failed), [], 'a failure with its reason is a terminal state')

  // stopped with no stop sent is a violation; a stop sent whose answer never came (its orchestrator was killed
  // while it stopped the deployment) may have been carried out, so stopped is right then
  const unasked = clean()
  unasked.containers = []
  unasked.nodes[2]!.contracts = []
  unasked.nodes[2]!.usedCpu = 0
  unasked.nodes[0]!.deployments = [deployment({ phase: 'stopped' })]
  t.ok(checkInvariants(unasked).some((v) => v.invariant === 'deployment-settled' && /stopped, but nobody asked/.test(v.detail)))
  unasked.creates[0]!.stopSentAt = NOW - 5_000
  t.same(checkInvariants(unasked), [], 'a stop sent but not acknowledged, then carried out')
})

t.test('create-kept: an acknowledged create no live orchestrator holds, or a retried key that answers another deployment', async (t) => {
  const lost = clean()
  lost.nodes[0]!.deployments = []
  lost.containers = []
  lost.nodes[2]!.contracts = []
  lost.nodes[2]!.usedCpu = 0
  t.same(names(checkInvariants(lost)), ['create-kept'])

  const handedOver = clean()
  handedOver.nodes[0]!.deployments = [deployment({ phase: 'handed-over' })]
  handedOver.containers = []
  handedOver.nodes[2]!.contracts = []
  handedOver.nodes[2]!.usedCpu = 0
  t.match(checkInvariants(handedOver)[0]!.detail, /only handed over on/)

  const replay = clean()
  replay.creates[0]!.replayedId = 'dep-2'
  t.ok(checkInvariants(replay).some((v) => v.invariant === 'create-kept' && /answered dep-2/.test(v.detail)))
})

t.test('the current orchestrator of a deployment is the live taker-over with the highest epoch', async (t) => {
  const o = clean()
  o.nodes[1] = node(1, B, { deployments: [deployment({ orchestratorEpoch: 2, takenOverFrom: A })] })
  t.equal(currentViews(o.nodes).get('dep-1')!.node.did, B)
  o.nodes[1]!.live = false
  t.equal(currentViews(o.nodes).get('dep-1')!.node.did, A, 'a dead node is not asked')
})

t.test('every invariant has a check above, and uncovered time subtracts overlapping windows once', async (t) => {
  t.equal(INVARIANTS.length, 5)
  t.equal(uncoveredMs(0, 100, [[10, 30], [20, 40], [90, 200]]), 60)
  t.equal(uncoveredMs(0, 100, []), 100)
})

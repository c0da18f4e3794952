// The deployment machine on its own: its effects are scripted (each call waits until the test settles it)
// and its delays run on XState's SimulatedClock, so every transition is driven step by step. The effects
// themselves are proven against real providers in orchestrator.test.ts and with real daemons elsewhere.
import t from 'tap'
import { createActor, SimulatedClock } from 'xstate'
import { NodeKey } from '../../identity/keys.ts'
import { proposeContract, workloadDigest, type Contract } from '../contracts/contract.ts'
import { deploymentMachine, phaseOfSnapshot, viewOf, type DeploymentEffects } from '../deployment/machine.ts'
import type { BidRound, DeploymentContext } from '../deployment/model.ts'
import type { NodeOffer } from '../placement/offer.ts'
import type { Workload } from '../workload/workload.ts'
import { workload } from './helpers.ts'

type Kind = 'bidRound' | 'commit' | 'reserveStandby' | 'start' | 'repair' | 'release'
interface Call { kind: Kind; input: never; resolve(v: unknown): void; reject(e: Error): void }

const consumer = NodeKey.generate()
const nodes = ['A', 'B', 'C'].map(() => NodeKey.generate().did)
const GiB = 2 ** 30

/** Effects whose every call waits in `calls` until the test resolves it. */
class ScriptedEffects implements DeploymentEffects {
  readonly calls: Call[] = []
  readonly ended: string[] = []
  readonly alive: (node: string) => void = () => {}
  retryMs = 30_000
  #waiters: (() => void)[] = []
  now = (): number => 1_000
  #call(kind: Kind, input: unknown): Promise<never> {
    return new Promise((resolve, reject) => {
      this.calls.push({ kind, input: input as never, resolve: resolve as never, reject })
      for (const w of this.#waiters.splice(0)) w()
    })
  }
  bidRound = (i: unknown) => this.#call('bidRound', i)
  commit = (i: unknown) => this.#call('commit', i)
  reserveStandby = (i: unknown) => this.#call('reserveStandby', i)
  start = (i: unknown) => this.#call('start', i)
  repair = (i: unknown) => this.#call('repair', i)
  release = (i: unknown) => this.#call('release', i)
  contractEnded = (id: string): void => void this.ended.push(id)
  /** The next call not yet taken, of this kind (fails the test on another kind). */
  async next(kind: Kind): Promise<Call> {
    for (;;) {
      const c = this.calls.shift()
      if (c) {
        if (c.kind !== kind) throw new Error(`expected a ${kind} call, got ${c.kind}`)
        return c
      }
      await new Promise<void>((r) => this.#waiters.push(r))
    }
  }
}

const offer = (node: string): NodeOffer => ({
  nodeDid: node, ownerDid: node, arch: 'amd64', region: 'eu', labels: {}, runtimes: ['container'],
  free: { cpu: 4, memoryBytes: 8 * GiB, gpu: 0, vramBytes: 0, diskBytes: 50 * GiB }, pricePerHour: '1000000', latencyMs: 1, trust: 0.5,
})
const round = (bidders: string[]): BidRound => ({ requestId: 'r', asked: nodes, bids: [], declines: [], silent: [], rttMs: {}, offers: bidders.map(offer) })

function contract(w: Workload, id: string, slot: string, epoch: number, node: string): Contract {
  const c = proposeContract(consumer, {
    deploymentId: id, workloadName: w.name, kind: w.kind, slot, epoch, provider: node, providerOwner: node, bidId: 'b', resources: w.resources,
    pricePerHour: '1000000', lane: w.lane, role: 'replica', durationSeconds: w.leaseSeconds, workloadDigest: workloadDigest(w), now: 1_000,
  })
  return c
}

function run(w: Workload, o: { maxCommitRounds?: number; snapshot?: unknown } = {}) {
  const fx = new ScriptedEffects()
  const clock = new SimulatedClock()
  const machine = deploymentMachine(fx)
  const options = o.snapshot ? { snapshot: o.snapshot, clock } : { input: { id: 'd1', workload: w, at: 1_000, ...(o.maxCommitRounds ? { maxCommitRounds: o.maxCommitRounds } : {}) }, clock }
  const actor = createActor(machine, options as never)
  actor.start()
  const phase = () => phaseOfSnapshot(actor.getSnapshot())
  const ctx = (): DeploymentContext => actor.getSnapshot().context
  return { fx, clock, actor, phase, ctx, view: () => viewOf(actor.getSnapshot()) }
}

const settle = () => new Promise((r) => setImmediate(r))

/** Drives a fresh deployment of `w` to running with every replica on `on[i]`. */
async function toRunning(w: Workload, on: string[]) {
  const r = run(w)
  ;(await r.fx.next('bidRound')).resolve(round(nodes))
  const commit = await r.fx.next('commit')
  commit.resolve({ contracts: on.map((n, i) => ({ slot: `d1/${i}`, contract: contract(w, 'd1', `d1/${i}`, 1, n) })), refusals: [], exhausted: null })
  if (w.lane === 'protected') (await r.fx.next('reserveStandby')).resolve({ standby: null, notes: [] })
  const start = await r.fx.next('start')
  start.resolve((start.input as { slots: { slot: string; node: string; contractId: string }[] }).slots.map((s) => ({ ...s, ok: true })))
  await settle()
  return r
}

t.test('a service goes bidding -> committing -> provisioning -> running, each step an invoked effect', async (t) => {
  const w = workload({ service: { replicas: 2 } })
  const r = run(w)
  t.equal(r.phase(), 'bidding')
  const bid = await r.fx.next('bidRound')
  t.equal((bid.input as { count: number }).count, 2)
  bid.resolve(round(nodes))
  const commit = await r.fx.next('commit')
  t.equal(r.phase(), 'committing')
  t.same((commit.input as { slots: { slot: string }[] }).slots.map((s) => s.slot), ['d1/0', 'd1/1'])
  t.ok(r.ctx().replicas.every((x) => x.state === 'placing'))
  commit.resolve({ contracts: [0, 1].map((i) => ({ slot: `d1/${i}`, contract: contract(w, 'd1', `d1/${i}`, 1, nodes[i]!) })), refusals: [], exhausted: null })
  const start = await r.fx.next('start')
  t.equal(r.phase(), 'provisioning')
  t.same((start.input as { slots: { node: string }[] }).slots.map((s) => s.node), [nodes[0], nodes[1]])
  start.resolve((start.input as { slots: object[] }).slots.map((s) => ({ ...s, ok: true })))
  await settle()
  t.equal(r.phase(), 'running')
  t.same(r.ctx().history.map((h) => h.phase), ['preparing', 'bidding', 'committing', 'provisioning', 'running'])
  t.same(r.ctx().replicas.map((x) => [x.state, x.node, x.epoch]), [['running', nodes[0], 1], ['running', nodes[1], 1]])
})

t.test('an infeasible round fails the deployment with the reason, after releasing (nothing held)', async (t) => {
  const r = run(workload({ resources: { cpu: 64, memory: '1Gi' } }))
  ;(await r.fx.next('bidRound')).resolve(round(nodes))
  const release = await r.fx.next('release')
  t.same((release.input as { targets: unknown[] }).targets, [])
  release.resolve([])
  await settle()
  t.equal(r.phase(), 'failed')
  t.match(r.ctx().reason, /cpu/)
  t.equal(r.ctx().infeasible?.constraint, 'cpu')
})

t.test('a round that placed nothing while nodes were silent bids again after a growing pause, then places', async (t) => {
  const w = workload({ service: { replicas: 2 } })
  const r = run(w)
  const silent = (): BidRound => ({ ...round([]), silent: nodes.map((node) => ({ node, reason: 'UnreachableError: not connected yet' })) })
  ;(await r.fx.next('bidRound')).resolve(silent())
  await settle()
  t.equal(r.phase(), 'bidding', 'not failed: the silent nodes might have taken it (a restart before the mesh is back)')
  t.equal(r.ctx().unansweredRounds, 1)
  t.match(r.ctx().events.at(-1)?.msg, /3 node\(s\) did not answer: bidding again \(1 of 5\)/)
  t.equal(r.fx.calls.length, 0, 'no new round before the pause')
  r.clock.increment(499)
  await settle()
  t.equal(r.fx.calls.length, 0)
  r.clock.increment(1)
  ;(await r.fx.next('bidRound')).resolve(silent())
  await settle()
  r.clock.increment(999)
  await settle()
  t.equal(r.fx.calls.length, 0, 'the second pause is twice the first')
  r.clock.increment(1)
  ;(await r.fx.next('bidRound')).resolve(round(nodes))
  const commit = await r.fx.next('commit')
  t.equal(r.ctx().unansweredRounds, 0, 'an answered round resets the count')
  commit.resolve({ contracts: [0, 1].map((i) => ({ slot: `d1/${i}`, contract: contract(w, 'd1', `d1/${i}`, 1, nodes[i]!) })), refusals: [], exhausted: null })
  const start = await r.fx.next('start')
  start.resolve((start.input as { slots: object[] }).slots.map((s) => ({ ...s, ok: true })))
  await settle()
  t.equal(r.phase(), 'running')
})

t.test('silent rounds are bounded: after five the deployment fails with the reason; a stop while waiting stops it', async (t) => {
  const silent = (): BidRound => ({ ...round([]), silent: [{ node: nodes[0]!, reason: 'UnreachableError: gone' }] })
  const r = run(workload())
  for (let i = 0; i < 6; i++) {
    ;(await r.fx.next('bidRound')).resolve(silent())
    await settle()
    if (i < 5) r.clock.increment(8_000)
  }
  ;(await r.fx.next('release')).resolve([])
  await settle()
  t.equal(r.phase(), 'failed')
  t.match(r.ctx().reason, /answer/, 'the reason says nodes did not answer')

  const s = run(workload())
  ;(await s.fx.next('bidRound')).resolve(silent())
  await settle()
  s.actor.send({ type: 'STOP' })
  ;(await s.fx.next('release')).resolve([])
  await settle()
  t.equal(s.phase(), 'stopped', 'a stop while it waits for answers needs no round')
})

t.test('a protected deployment placed without its standby seeks one once live, and again after each retry delay', async (t) => {
  const w = workload({ lane: 'protected', service: { replicas: 2 } })
  const r = await toRunning(w, [nodes[0]!, nodes[1]!])
  t.equal(r.phase(), 'running')
  t.equal(r.ctx().standby, null)
  const first = await r.fx.next('repair')
  t.equal((first.input as { job: { kind: string } }).job.kind, 'standby', 'sought as soon as it runs')
  first.resolve({ notes: ['no standby capacity: no node answered the bid request'], refusals: [], standbyConsumed: false, placed: null, started: null, infeasible: null, standby: null })
  await settle()
  t.equal(r.fx.calls.length, 0, 'not in a loop')
  r.clock.increment(30_000)
  const second = await r.fx.next('repair')
  t.equal((second.input as { job: { kind: string } }).job.kind, 'standby', 'sought again after the retry delay')
  second.resolve({ notes: [], refusals: [], standbyConsumed: false, placed: null, started: null, infeasible: null, standby: { node: nodes[2]!, contractId: 'sb' } })
  await settle()
  t.same(r.ctx().standby, { node: nodes[2], contractId: 'sb' })
})

t.test('a refused commit re-bids without the refusing node until the rounds run out, then releases what it holds', async (t) => {
  const w = workload({ service: { replicas: 2 } })
  const r = run(w, { maxCommitRounds: 2 })
  for (let attempt = 0; attempt < 2; attempt++) {
    ;(await r.fx.next('bidRound')).resolve(round(nodes))
    const commit = await r.fx.next('commit')
    // slot 0 gets a node, slot 1 runs out of offers; the refuser is counted
    commit.resolve({
      contracts: attempt === 0 ? [{ slot: 'd1/0', contract: contract(w, 'd1', 'd1/0', 1, nodes[0]!) }] : [],
      refusals: [{ node: nodes[1]!, slot: 'd1/1', error: 'ReservationFailedError: no memory' }],
      exhausted: { slot: 'd1/1', infeasible: { reason: 'no more candidates', ruledOut: {} } },
    })
  }
  const release = await r.fx.next('release')
  t.same((release.input as { targets: { node: string }[] }).targets.map((x) => x.node), [nodes[0]], 'the slot that did commit is released')
  release.resolve((release.input as { targets: object[] }).targets.map((x) => ({ ...x, ok: true })))
  await settle()
  t.equal(r.phase(), 'failed')
  t.equal(r.ctx().refusals[nodes[1]!], 2)
  t.match(r.ctx().reason, /2 round/)
})

t.test('a stop during provisioning waits for the start in flight, then stops what it started', async (t) => {
  const w = workload({})
  const r = run(w)
  ;(await r.fx.next('bidRound')).resolve(round(nodes))
  ;(await r.fx.next('commit')).resolve({ contracts: [{ slot: 'd1/0', contract: contract(w, 'd1', 'd1/0', 1, nodes[0]!) }], refusals: [], exhausted: null })
  const start = await r.fx.next('start')
  r.actor.send({ type: 'STOP' })
  t.equal(r.phase(), 'provisioning', 'the start settles first: nothing it starts is left behind')
  start.resolve((start.input as { slots: object[] }).slots.map((s) => ({ ...s, ok: true })))
  const release = await r.fx.next('release')
  t.equal(r.phase(), 'stopping')
  t.same((release.input as { targets: { node: string }[] }).targets.map((x) => x.node), [nodes[0]])
  release.resolve((release.input as { targets: object[] }).targets.map((x) => ({ ...x, ok: true })))
  await settle()
  t.equal(r.phase(), 'stopped')
  t.equal(r.ctx().replicas[0]!.state, 'stopped')
})

t.test('a start that fails places the slot again, without the node that failed', async (t) => {
  const w = workload({})
  const r = run(w)
  ;(await r.fx.next('bidRound')).resolve(round(nodes))
  ;(await r.fx.next('commit')).resolve({ contracts: [{ slot: 'd1/0', contract: contract(w, 'd1', 'd1/0', 1, nodes[0]!) }], refusals: [], exhausted: null })
  const start = await r.fx.next('start')
  start.resolve((start.input as { slots: object[] }).slots.map((s) => ({ ...s, ok: false, error: 'WorkloadStartError: image missing' })))
  const repair = await r.fx.next('repair')
  const input = repair.input as { why: string; replica: { failedOn: string[] } }
  t.match(input.why, /start failed on/)
  t.same(input.replica.failedOn, [nodes[0]])
  t.equal(r.phase(), 'provisioning')
  repair.resolve({ notes: [], refusals: [], standbyConsumed: false, placed: contract(w, 'd1', 'd1/0', 2, nodes[1]!), started: { ok: true }, infeasible: null, standby: null })
  await settle()
  t.equal(r.phase(), 'running')
  t.same([r.ctx().replicas[0]!.node, r.ctx().replicas[0]!.epoch], [nodes[1], 2])
})

t.test('failover: a lost node degrades the service, its slot is placed again under a higher epoch and the time is recorded', async (t) => {
  const w = workload({ service: { replicas: 2 } })
  const r = await toRunning(w, [nodes[0]!, nodes[1]!])
  r.actor.send({ type: 'NODE_LOST', node: nodes[1]!, phi: 9, lastHeartbeatAt: 900, at: 1_000 })
  t.equal(r.phase(), 'degraded')
  t.equal(r.ctx().replicas[1]!.state, 'lost')
  const repair = await r.fx.next('repair')
  t.match((repair.input as { why: string }).why, /lost/)
  repair.resolve({ notes: [], refusals: [], standbyConsumed: false, placed: contract(w, 'd1', 'd1/1', 2, nodes[2]!), started: { ok: true }, infeasible: null, standby: null })
  await settle()
  t.equal(r.phase(), 'running')
  const fo = r.ctx().failovers[0]!
  t.same([fo.from, fo.to, fo.ms], [nodes[1], nodes[2], 0])
  t.same(r.ctx().history.map((h) => h.phase).slice(-2), ['degraded', 'running'])
})

t.test('a report from a stale epoch (another contract) changes nothing; the current one does', async (t) => {
  const w = workload({})
  const r = await toRunning(w, [nodes[0]!])
  const current = r.ctx().replicas[0]!
  r.actor.send({ type: 'REPORT', report: { contractId: 'an-older-contract', deploymentId: 'd1', slot: 'd1/0', epoch: 0, node: nodes[0]!, state: 'exited', code: 1, at: 1 } })
  t.equal(r.phase(), 'running')
  t.equal(r.ctx().replicas[0]!.state, 'running')
  t.equal(r.fx.calls.length, 0, 'nothing placed again')
  r.actor.send({ type: 'REPORT', report: { contractId: current.contractId!, deploymentId: 'd1', slot: 'd1/0', epoch: 1, node: nodes[0]!, state: 'exited', code: 1, at: 1 } })
  t.equal(r.phase(), 'degraded')
  t.same(r.fx.ended, [current.contractId])
  t.match(((await r.fx.next('repair')).input as { why: string }).why, /restart/)
})

t.test('a slot no node takes leaves a deployment that ran degraded; it tries again after the retry delay (simulated clock)', async (t) => {
  const w = workload({})
  const r = await toRunning(w, [nodes[0]!])
  r.actor.send({ type: 'NODE_LOST', node: nodes[0]!, phi: 9, lastHeartbeatAt: 900, at: 1_000 })
  ;(await r.fx.next('repair')).resolve({ notes: [], refusals: [], standbyConsumed: false, placed: null, started: null, infeasible: { reason: 'no node meets memory', ruledOut: {} }, standby: null })
  await settle()
  t.equal(r.phase(), 'degraded')
  t.match(r.ctx().reason, /no node meets memory/)
  t.same(r.actor.getSnapshot().value, { live: { health: 'degraded', repair: 'waiting' } })
  r.clock.increment(29_999)
  await settle()
  t.equal(r.fx.calls.length, 0, 'not before the delay')
  r.clock.increment(1)
  const again = await r.fx.next('repair')
  t.match((again.input as { why: string }).why, /lost/)
})

t.test('a job whose runs fail beyond its retries fails', async (t) => {
  const w = workload({ kind: 'job', job: { retries: 1 } })
  const r = await toRunning(w, [nodes[0]!])
  const fail = (node: string, contractId: string) => r.actor.send({ type: 'REPORT', report: { contractId, deploymentId: 'd1', slot: 'd1/0', epoch: 1, node, state: 'exited', code: 3, at: 1 } })
  fail(nodes[0]!, r.ctx().replicas[0]!.contractId!)
  const retry = await r.fx.next('repair')
  t.match((retry.input as { why: string }).why, /retry 1 of 1/)
  retry.resolve({ notes: [], refusals: [], standbyConsumed: false, placed: contract(w, 'd1', 'd1/0', 2, nodes[1]!), started: { ok: true }, infeasible: null, standby: null })
  await settle()
  fail(nodes[1]!, r.ctx().replicas[0]!.contractId!)
  const release = await r.fx.next('release')
  release.resolve([])
  await settle()
  t.equal(r.phase(), 'failed')
  t.equal(r.ctx().failures, 2)
  t.match(r.ctx().reason, /exit 3/)
})

t.test('restored from a snapshot taken mid-step, the machine runs that step again (the checkpoint is the snapshot)', async (t) => {
  const w = workload({ service: { replicas: 1 } })
  const r = run(w)
  ;(await r.fx.next('bidRound')).resolve(round(nodes))
  await r.fx.next('commit') // in flight: never settled
  const persisted = JSON.parse(JSON.stringify(r.actor.getPersistedSnapshot())) as unknown
  r.actor.stop()
  const again = run(w, { snapshot: persisted })
  t.equal(again.phase(), 'committing')
  const commit = await again.fx.next('commit')
  t.same((commit.input as { slots: { slot: string }[] }).slots.map((s) => s.slot), ['d1/0'], 'the same step with the same input')
  commit.resolve({ contracts: [{ slot: 'd1/0', contract: contract(w, 'd1', 'd1/0', 1, nodes[0]!) }], refusals: [], exhausted: null })
  const start = await again.fx.next('start')
  start.resolve((start.input as { slots: object[] }).slots.map((s) => ({ ...s, ok: true })))
  await settle()
  t.equal(again.phase(), 'running')
})

t.test('a stop of a stopped deployment whose node did not confirm asks again', async (t) => {
  const w = workload({})
  const r = await toRunning(w, [nodes[0]!])
  r.actor.send({ type: 'STOP' })
  const first = await r.fx.next('release')
  first.resolve((first.input as { targets: object[] }).targets.map((x) => ({ ...x, ok: false, error: 'TimeoutError: no answer' })))
  await settle()
  t.equal(r.phase(), 'stopped')
  t.equal(r.view().stopFailures.length, 1)
  r.actor.send({ type: 'STOP' })
  const second = await r.fx.next('release')
  second.resolve((second.input as { targets: object[] }).targets.map((x) => ({ ...x, ok: true })))
  await settle()
  t.equal(r.phase(), 'stopped')
  t.same(r.view().stopFailures, [])
  t.equal(r.ctx().replicas[0]!.state, 'stopped')
})

// ---- migration (spec/migration.md) ------------------------------------------------------------------------

const migrate = (r: Awaited<ReturnType<typeof toRunning>>, id: string, slot = 'd1/0', to?: string) =>
  r.actor.send({ type: 'MIGRATE', id, slot, why: 'migrated on request', at: 2_000, ...(to ? { to } : {}) })

t.test('a migration reserves another node first, then moves the stateful replica from its checkpoint', async (t) => {
  const w = workload({ stateDir: '/state' })
  const r = await toRunning(w, [nodes[0]!])
  const first = r.ctx().replicas[0]!
  migrate(r, 'm1')
  const reserve = await r.fx.next('repair')
  t.match(reserve.input, { job: { kind: 'migrate', slot: 'd1/0', id: 'm1' }, replica: { node: nodes[0], state: 'running' } }, 'the first step reserves a node')
  t.equal(r.phase(), 'running', 'the deployment stays running meanwhile')
  const next = contract(w, 'd1', 'd1/0', 2, nodes[1]!)
  reserve.resolve({ notes: [], refusals: [], standbyConsumed: false, placed: next, started: null, infeasible: null, standby: null })
  const move = await r.fx.next('repair')
  t.match(move.input, { job: { kind: 'move', id: 'm1' }, replica: { node: nodes[0], moving: { from: { node: nodes[0], contractId: first.contractId } } } }, 'the second step moves, naming the reserved contract')
  t.equal(r.ctx().replicas[0]!.moving?.contract.terms.id, next.terms.id, 'the snapshot names the new contract before the move acts')
  const checkpoint = { digest: `sha256:${'a'.repeat(64)}`, bytes: 3072, from: nodes[0]!, at: 2_500 }
  move.resolve({ notes: [], refusals: [], standbyConsumed: false, placed: null, started: { ok: true }, infeasible: null, standby: null, moved: { oldStopped: true, checkpoint, gapMs: 120 } })
  await settle()
  const rep = r.ctx().replicas[0]!
  t.same([rep.node, rep.epoch, rep.state, rep.contractId], [nodes[1], 2, 'running', next.terms.id], 'the slot runs on the new node at the next epoch')
  t.equal(rep.moving, null)
  t.same(rep.checkpoint, checkpoint, 'the slot keeps its checkpoint for any later start')
  t.match(r.view().migrations, [{ id: 'm1', from: nodes[0], to: nodes[1], ok: true, why: 'migrated on request', gapMs: 120, checkpoint: { bytes: 3072 } }])
  t.match(r.ctx().events.at(-1)?.msg, /migrated from .* \(migrated on request\), state 3072 bytes/)
  t.equal(r.phase(), 'running')
})

t.test('no other node fits: the migration is recorded as not done and the replica stays', async (t) => {
  const w = workload()
  const r = await toRunning(w, [nodes[0]!])
  migrate(r, 'm1')
  const reserve = await r.fx.next('repair')
  reserve.resolve({ notes: [], refusals: [], standbyConsumed: false, placed: null, started: null, infeasible: { reason: 'no node meets cpu' } as never, standby: null })
  await settle()
  t.equal(r.ctx().replicas[0]!.node, nodes[0])
  t.match(r.view().migrations, [{ ok: false, error: /^no other node fits: no node meets cpu/ }])
  t.equal(r.fx.calls.length, 0, 'nothing else is done')
})

t.test('a second migration while one is in flight, or of a replica that is not running, is refused in the record', async (t) => {
  const w = workload({ service: { replicas: 2 } })
  const r = await toRunning(w, [nodes[0]!, nodes[1]!])
  migrate(r, 'm1')
  await r.fx.next('repair')
  migrate(r, 'm2', 'd1/1')
  migrate(r, 'm3', 'd1/9')
  await settle()
  t.match(r.view().migrations, [{ id: 'm1', ok: null }, { id: 'm2', ok: false, error: 'a migration is already in progress' }, { id: 'm3', ok: false, error: 'replica d1/9 is not running' }])
})

t.test('a stateful move whose new replica does not start places the slot again from its checkpoint', async (t) => {
  const w = workload({ stateDir: '/state' })
  const r = await toRunning(w, [nodes[0]!])
  migrate(r, 'm1')
  ;(await r.fx.next('repair')).resolve({ notes: [], refusals: [], standbyConsumed: false, placed: contract(w, 'd1', 'd1/0', 2, nodes[1]!), started: null, infeasible: null, standby: null })
  const move = await r.fx.next('repair')
  const checkpoint = { digest: `sha256:${'b'.repeat(64)}`, bytes: 10, from: nodes[0]!, at: 2_500 }
  move.resolve({ notes: [], refusals: [], standbyConsumed: false, placed: null, started: { ok: false, error: 'WorkloadStartError: no' }, infeasible: null, standby: null, moved: { oldStopped: true, checkpoint, gapMs: null } })
  const again = await r.fx.next('repair')
  t.match(again.input, { job: { kind: 'slot', slot: 'd1/0', why: 'migration target did not start' }, replica: { checkpoint: { digest: checkpoint.digest } } }, 'placed again, with the checkpoint to start from')
  t.ok(r.ctx().replicas[0]!.failedOn.includes(nodes[1]!), 'not on the node that failed to start it')
  t.equal(r.phase(), 'degraded')
  t.match(r.view().migrations, [{ ok: false, error: 'WorkloadStartError: no' }])
})

t.test('a stateless move whose new replica does not start leaves the old one running', async (t) => {
  const w = workload()
  const r = await toRunning(w, [nodes[0]!])
  migrate(r, 'm1')
  ;(await r.fx.next('repair')).resolve({ notes: [], refusals: [], standbyConsumed: false, placed: contract(w, 'd1', 'd1/0', 2, nodes[1]!), started: null, infeasible: null, standby: null })
  ;(await r.fx.next('repair')).resolve({ notes: [], refusals: [], standbyConsumed: false, placed: null, started: { ok: false, error: 'WorkloadStartError: no' }, infeasible: null, standby: null, moved: { oldStopped: false, checkpoint: null, gapMs: null } })
  await settle()
  t.same([r.ctx().replicas[0]!.node, r.ctx().replicas[0]!.state, r.ctx().replicas[0]!.epoch], [nodes[0], 'running', 1])
  t.equal(r.phase(), 'running')
  t.equal(r.fx.calls.length, 0)
})

t.test('restored from a snapshot taken during the move, the move runs again with the same contract', async (t) => {
  const w = workload({ stateDir: '/state' })
  const r = await toRunning(w, [nodes[0]!])
  migrate(r, 'm1')
  const next = contract(w, 'd1', 'd1/0', 2, nodes[1]!)
  ;(await r.fx.next('repair')).resolve({ notes: [], refusals: [], standbyConsumed: false, placed: next, started: null, infeasible: null, standby: null })
  await r.fx.next('repair')
  const saved = JSON.parse(JSON.stringify(r.actor.getPersistedSnapshot())) as unknown
  r.actor.stop()
  const back = run(w, { snapshot: saved })
  const move = await back.fx.next('repair')
  t.match(move.input, { job: { kind: 'move', id: 'm1' }, replica: { moving: { contract: { terms: { id: next.terms.id } } } } }, 'the same move, with the same new contract')
})

t.test("the end of the replica a migration quiesced is not a failure of its node (the move replaces it)", async (t) => {
  const w = workload({ stateDir: '/state' })
  const r = await toRunning(w, [nodes[0]!])
  const first = r.ctx().replicas[0]!
  migrate(r, 'm1')
  ;(await r.fx.next('repair')).resolve({ notes: [], refusals: [], standbyConsumed: false, placed: contract(w, 'd1', 'd1/0', 2, nodes[1]!), started: null, infeasible: null, standby: null })
  const move = await r.fx.next('repair')
  r.actor.send({ type: 'REPORT', report: { contractId: first.contractId!, deploymentId: 'd1', slot: 'd1/0', epoch: 1, node: nodes[0]!, state: 'failed', reason: 'contract ended on the provider', at: 2_600 } })
  await settle()
  t.same(r.ctx().replicas[0]!.failedOn, [], 'its node is not marked failed (a later migration may go back there)')
  t.same(r.ctx().queue, [], 'nothing is queued to replace it')
  move.resolve({ notes: [], refusals: [], standbyConsumed: false, placed: null, started: { ok: true }, infeasible: null, standby: null, moved: { oldStopped: true, checkpoint: null, gapMs: 5 } })
  await settle()
  t.same([r.ctx().replicas[0]!.node, r.ctx().replicas[0]!.state], [nodes[1], 'running'])
})

t.test('scale to zero: IDLE releases every replica and holds the deployment idle; WAKE places each slot again under a higher epoch, and the cold start is recorded', async (t) => {
  const w = workload({ service: { replicas: 2, scale: { min: 0, max: 2, idleSeconds: 10 } } })
  const r = await toRunning(w, [nodes[0]!, nodes[1]!])
  const before = r.ctx().replicas.map((x) => x.contractId)
  r.actor.send({ type: 'IDLE', at: 20_000, idleMs: 12_000 })
  const release = await r.fx.next('release')
  t.same((release.input as { why: string; targets: { contractId: string }[] }).targets.map((x) => x.contractId), before, 'both replicas\' contracts are released')
  t.equal(r.phase(), 'idle', 'idle while they stop')
  release.resolve((release.input as { targets: object[] }).targets.map((x) => ({ ...x, ok: true })))
  await settle()
  t.equal(r.phase(), 'idle')
  t.same(r.ctx().replicas.map((x) => x.state), ['stopped', 'stopped'])
  t.match(r.ctx().events.map((e) => e.msg).join('\n'), /no traffic for 12 s: scaling to zero/)
  r.actor.send({ type: 'IDLE', at: 21_000, idleMs: 13_000 })
  await settle()
  t.equal(r.fx.calls.length, 0, 'idle again changes nothing')

  r.fx.now = () => 30_000
  r.actor.send({ type: 'WAKE', at: 30_000, by: 'did:key:zIngress' })
  t.equal(r.phase(), 'provisioning', 'woken: provisioning (not degraded) while it comes back')
  for (let i = 0; i < 2; i++) {
    const repair = await r.fx.next('repair')
    const input = repair.input as { why: string; replica: { slot: string; state: string } }
    t.equal(input.why, 'woken by traffic')
    t.equal(input.replica.state, 'pending')
    r.fx.now = () => 31_500
    repair.resolve({ notes: [], refusals: [], standbyConsumed: false, placed: contract(w, 'd1', input.replica.slot, 2, nodes[2]!), started: { ok: true }, infeasible: null, standby: null })
    await settle()
  }
  t.equal(r.phase(), 'running')
  t.same(r.ctx().replicas.map((x) => [x.state, x.epoch, x.node]), [['running', 2, nodes[2]], ['running', 2, nodes[2]]], 'each slot runs again under a higher epoch')
  t.same(r.view().coldStarts, [{ wokenAt: 30_000, runningAt: 31_500, ms: 1_500, by: 'did:key:zIngress' }], 'the cold start: from the wake to every replica running')
  t.equal(r.ctx().wokenAt, null)
})

t.test('scale to zero is only for services declaring scale.min 0, and not while a repair is under way; a stop at zero stops', async (t) => {
  const plain = await toRunning(workload({ service: { replicas: 1 } }), [nodes[0]!])
  plain.actor.send({ type: 'IDLE', at: 20_000, idleMs: 1e6 })
  await settle()
  t.equal(plain.phase(), 'running', 'a service without scale.min 0 ignores IDLE')
  t.equal(plain.fx.calls.length, 0)

  const w = workload({ service: { replicas: 2, scale: { min: 0, max: 2, idleSeconds: 10 } } })
  const r = await toRunning(w, [nodes[0]!, nodes[1]!])
  r.actor.send({ type: 'NODE_LOST', node: nodes[1]!, phi: 9, lastHeartbeatAt: 900, at: 1_000 })
  await r.fx.next('repair') // a slot being placed again
  r.actor.send({ type: 'IDLE', at: 20_000, idleMs: 1e6 })
  await settle()
  t.equal(r.phase(), 'degraded', 'not while a repair is under way')

  const s = await toRunning(w, [nodes[0]!, nodes[1]!])
  s.actor.send({ type: 'IDLE', at: 20_000, idleMs: 12_000 })
  const rel = await s.fx.next('release')
  rel.resolve((rel.input as { targets: object[] }).targets.map((x) => ({ ...x, ok: true })))
  await settle()
  s.actor.send({ type: 'STOP' })
  const stop = await s.fx.next('release')
  t.same((stop.input as { targets: unknown[] }).targets, [], 'nothing left to release')
  stop.resolve([])
  await settle()
  t.equal(s.phase(), 'stopped')
})

t.test('scale out: new slots placed while it runs on (provisioning until they do); at zero it trims back to its replicas', async (t) => {
  const w = workload({ service: { replicas: 1, scale: { min: 0, max: 3, idleSeconds: 10, targetConnections: 2 } } })
  const r = await toRunning(w, [nodes[0]!])
  r.actor.send({ type: 'SCALE_OUT', to: 5, at: 2_000, active: 9 })
  await settle()
  t.equal(r.ctx().replicas.length, 1, 'beyond max: refused')
  r.actor.send({ type: 'SCALE_OUT', to: 3, at: 2_000, active: 5 })
  t.equal(r.phase(), 'provisioning', 'provisioning while the new replicas come')
  t.same([r.ctx().desired, r.ctx().replicas.map((x) => x.slot)], [3, ['d1/0', 'd1/1', 'd1/2']])
  t.equal(r.ctx().replicas[0]!.state, 'running', 'the running one goes on')
  for (const i of [1, 2]) {
    const repair = await r.fx.next('repair')
    t.same([(repair.input as { why: string }).why, (repair.input as { replica: { slot: string } }).replica.slot], ['scaling out', `d1/${i}`])
    r.fx.now = () => 2_400
    repair.resolve({ notes: [], refusals: [], standbyConsumed: false, placed: contract(w, 'd1', `d1/${i}`, 1, nodes[i]!), started: { ok: true }, infeasible: null, standby: null })
    await settle()
  }
  t.equal(r.phase(), 'running')
  t.match(r.ctx().events.map((e) => e.msg).join('\n'), /5 connection\(s\) open through the ingresses: scaling out from 1 to 3[^]*scaled out: 3 replica\(s\) running 400 ms after the decision/)
  // idle: all three stop; a wake brings back one (its replicas), not three
  r.actor.send({ type: 'IDLE', at: 30_000, idleMs: 10_000 })
  const rel = await r.fx.next('release')
  t.equal((rel.input as { targets: unknown[] }).targets.length, 3)
  rel.resolve((rel.input as { targets: object[] }).targets.map((x) => ({ ...x, ok: true })))
  await settle()
  t.same([r.phase(), r.ctx().replicas.length, r.ctx().desired], ['idle', 1, 1], 'at zero: back to its one replica')
  r.actor.send({ type: 'WAKE', at: 40_000 })
  t.equal(((await r.fx.next('repair')).input as { replica: { slot: string } }).replica.slot, 'd1/0', 'the wake places one slot')
})

t.test('a wake that comes while the replicas are still stopping is kept, and taken as soon as they are', async (t) => {
  const w = workload({ service: { replicas: 1, scale: { min: 0, max: 1, idleSeconds: 10 } } })
  const r = await toRunning(w, [nodes[0]!])
  r.actor.send({ type: 'IDLE', at: 20_000, idleMs: 12_000 })
  const rel = await r.fx.next('release')
  r.actor.send({ type: 'WAKE', at: 20_100, by: 'did:key:zIngress' })
  t.equal(r.phase(), 'idle', 'still stopping')
  rel.resolve((rel.input as { targets: object[] }).targets.map((x) => ({ ...x, ok: true })))
  const repair = await r.fx.next('repair')
  t.equal((repair.input as { why: string }).why, 'woken by traffic', 'the kept wake places the slot again at once')
  t.equal(r.ctx().wokenAt, 20_100)
  t.equal(r.ctx().wakeAsked, null)
})

t.test('scale in: the highest slots stop being offered, are released last first, and go; never below the baseline', async (t) => {
  const w = workload({ service: { replicas: 1, scale: { min: 1, max: 3, idleSeconds: 10, targetConnections: 2 } } })
  const r = await toRunning(w, [nodes[0]!])
  r.actor.send({ type: 'SCALE_OUT', to: 3, at: 2_000, active: 5 })
  for (const i of [1, 2]) {
    const repair = await r.fx.next('repair')
    repair.resolve({ notes: [], refusals: [], standbyConsumed: false, placed: contract(w, 'd1', `d1/${i}`, 1, nodes[i]!), started: { ok: true }, infeasible: null, standby: null })
    await settle()
  }
  t.equal(r.phase(), 'running')
  r.actor.send({ type: 'SCALE_IN', to: 0, at: 50_000, active: 0 })
  await settle()
  t.equal(r.ctx().replicas.length, 3, 'below the baseline: refused')
  r.actor.send({ type: 'SCALE_IN', to: 1, at: 50_000, active: 1 })
  t.same(r.ctx().replicas.map((x) => x.retiring === true), [false, true, true], 'the two highest slots retire')
  t.equal(r.ctx().desired, 1)
  t.equal(r.phase(), 'running', 'the deployment runs on')
  r.actor.send({ type: 'SCALE_IN', to: 2, at: 50_001, active: 3 })
  await settle()
  t.same(r.ctx().queue.filter((j) => j.kind === 'retire').length + (r.ctx().current?.kind === 'retire' ? 1 : 0), 2, 'no second scale-in while one is under way')
  for (const slot of ['d1/2', 'd1/1']) {
    const job = await r.fx.next('repair')
    t.same([(job.input as { job: { kind: string } }).job.kind, (job.input as { replica: { slot: string } }).replica.slot], ['retire', slot], `${slot} released (last first)`)
    job.resolve({ notes: [], refusals: [], standbyConsumed: false, placed: null, started: null, infeasible: null, standby: null })
    await settle()
  }
  t.same([r.phase(), r.ctx().replicas.map((x) => x.slot), r.ctx().desired], ['running', ['d1/0'], 1], 'one replica left, running')
  t.match(r.ctx().events.map((e) => e.msg).join('\n'), /1 connection\(s\) open through the ingresses: scaling in from 3 to 1[^]*slot d1\/2 retired[^]*slot d1\/1 retired/)
})

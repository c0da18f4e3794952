// Rebalancing's decisions (actors/orchestrator/rebalancer.ts, spec/migration.md "Rebalancing"): which replicas
// are priced, when a quote is clearly cheaper, hysteresis (margin, cool-down, one move per deployment per
// pass), the hourly rate limit, and the config's checks. The moves themselves are `noir migrate`'s, tested with
// real daemons (appliance/test/migrate-daemons.test.ts; the rebalancing one in rebalance-daemons.test.ts).
import t from 'tap'
import type { DeploymentView, MigrationRecord } from '../deployment/model.ts'
import { Rebalancer, clearlyCheaper, rebalanceCandidates, rebalancePolicyFrom, DEFAULT_REBALANCE_POLICY, type Quote } from '../orchestrator/rebalancer.ts'

interface Rep { index: number; state: string; node: string | null; pricePerHour: string | null }
function view(id: string, o: { phase?: string; kind?: string; lane?: string; replicas?: Rep[]; migrations?: Partial<MigrationRecord>[] } = {}): DeploymentView {
  return {
    id, phase: o.phase ?? 'running', kind: o.kind ?? 'service', lane: o.lane ?? 'best-effort',
    replicas: o.replicas ?? [{ index: 0, state: 'running', node: 'did:key:A', pricePerHour: '1000' }],
    migrations: o.migrations ?? [],
  } as unknown as DeploymentView
}
const policy = { ...DEFAULT_REBALANCE_POLICY }

t.test('only running best-effort services with a priced running replica, no migration in flight, past the cool-down', async (t) => {
  const now = 10_000_000
  const views = [
    view('ok'),
    view('protected', { lane: 'protected' }),
    view('job', { kind: 'job' }),
    view('placing', { phase: 'placing' }),
    view('unpriced', { replicas: [{ index: 0, state: 'running', node: 'did:key:A', pricePerHour: null }] }),
    view('starting', { replicas: [{ index: 0, state: 'starting', node: 'did:key:A', pricePerHour: '1000' }] }),
    view('moving', { migrations: [{ requestedAt: now - 1000, doneAt: null }] }),
    view('cooling', { migrations: [{ requestedAt: now - 120_000, doneAt: now - 60_000 }] }),
    view('cooled', { migrations: [{ requestedAt: now - 900_000, doneAt: now - 800_000 }] }),
  ]
  t.same(rebalanceCandidates(views, now, policy).map((c) => c.view.id), ['cooled', 'ok'])
  const [c] = rebalanceCandidates([view('two', { replicas: [{ index: 0, state: 'running', node: 'did:key:A', pricePerHour: '10' }, { index: 1, state: 'running', node: 'did:key:B', pricePerHour: '20' }] })], now, policy)
  t.same([c!.replica, c!.node, c!.price], [0, 'did:key:A', 10n], 'one replica per deployment per pass')
})

t.test('a quote counts only when it is at least the margin below the current price', async (t) => {
  const q = (node: string, p: bigint): Quote => ({ node, pricePerHour: p })
  t.equal(clearlyCheaper(1000n, [q('B', 800n)], 2000)?.node, 'B', 'exactly 20% below: moves')
  t.equal(clearlyCheaper(1000n, [q('B', 801n)], 2000), undefined, '19.9% below: stays')
  t.equal(clearlyCheaper(1000n, [q('B', 700n), q('C', 500n), q('D', 500n)], 2000)?.node, 'C', 'the cheapest; a tie goes to the lower DID')
  t.equal(clearlyCheaper(1000n, [], 2000), undefined)
  // after a move from A (1000) to B (700), A quoting its 1000 again is no reason to go back
  t.equal(clearlyCheaper(700n, [q('A', 1000n)], 2000), undefined, 'not back and forth')
  t.equal(clearlyCheaper(700n, [q('A', 600n)], 2000), undefined, 'nor for a little less')
})

t.test('a pass moves what is clearly cheaper, says why, and stops at the hourly limit', async (t) => {
  let now = 50_000_000
  const asked: string[][] = []
  const moved: { id: string; replica: number; to: string; why: string }[] = []
  const views = [view('d1'), view('d2'), view('d3', { replicas: [{ index: 0, state: 'running', node: 'did:key:A', pricePerHour: '900' }] })]
  const r = new Rebalancer({
    deployments: () => views,
    quotes: async (_v, exclude) => {
      asked.push(exclude)
      return [{ node: 'did:key:B', pricePerHour: 750n }]
    },
    migrate: async (id, replica, to, why) => {
      moved.push({ id, replica, to, why })
      if (id === 'd2') throw Object.assign(new Error('no other node fits'), { name: 'NoMigrationTargetError' })
      return { id: 'm', slot: 's', from: 'did:key:A', to, why, requestedAt: now, doneAt: now, ok: true, checkpoint: null, gapMs: null, error: null }
    },
    now: () => now,
    log: () => {},
  }, { maxMovesPerHour: 2 })
  const first = await r.pass()
  t.same(asked[0], ['did:key:A'], 'the nodes running the deployment are not asked')
  t.same(first.map((m) => [m.deploymentId, m.to, m.ok]), [['d1', 'did:key:B', true], ['d2', 'did:key:B', false]], 'two moves (one failed, typed), then the hourly limit')
  t.match(first[0]!.why, /^rebalanced: did:key:B quotes 750 µNLC\/h, 25% below the 1000 of did:key:A \(margin 20%\)$/)
  t.match(first[1]!.error, /NoMigrationTargetError/)
  t.equal(moved.length, 2, 'd3 waits: 750 is only 16.7% below 900 anyway, and the limit is reached')
  now += 3_600_000
  const later = await r.pass()
  t.same(later.map((m) => m.deploymentId), ['d1', 'd2'], 'an hour later the limit has room again (d3 stays: not clearly cheaper)')
})

t.test('the config: true or an object of whole numbers within bounds, each bad field named', async (t) => {
  t.equal(rebalancePolicyFrom(undefined), undefined, 'absent: off')
  t.equal(rebalancePolicyFrom(false), undefined)
  t.same(rebalancePolicyFrom(true), {}, 'true: the defaults')
  t.same(rebalancePolicyFrom({ everyMs: 5000, marginBps: 1500 }), { everyMs: 5000, marginBps: 1500 })
  const bad: [unknown, RegExp][] = [
    [{ marginBps: 0 }, /rebalance\.marginBps/], [{ marginBps: 10_000 }, /rebalance\.marginBps/], [{ everyMs: 10 }, /rebalance\.everyMs/],
    [{ cooldownMs: -1 }, /rebalance\.cooldownMs/], [{ maxMovesPerHour: 1.5 }, /rebalance\.maxMovesPerHour/], [{ margin: 20 }, /rebalance\.margin' is not a field/], ['yes', /'rebalance' is true, or an object/],
  ]
  for (const [v, re] of bad) t.throws(() => rebalancePolicyFrom(v), { message: re }, JSON.stringify(v))
})

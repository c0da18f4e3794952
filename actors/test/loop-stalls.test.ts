// The failure detector does not convict peers for its own stall (issue 24: liveness under attack): a node
// whose event loop was blocked did not read the beats that reached it meanwhile.
import t from 'tap'
import { LoopStalls } from '../failure/loop-stalls.ts'
import { SimMarket, until } from './sim.ts'
import { workload } from './helpers.ts'

t.test('stalls are measured from a late periodic check and credited to the silences they overlap', async (t) => {
  let now = 0
  const s = new LoopStalls({ intervalMs: 100, now: () => now, histogram: false })
  for (now = 0; now <= 500; now += 100) t.equal(s.sample(), 0, `on time at ${now}`)
  now = 500 + 1_500 // the check came 1.4 s late
  t.equal(s.sample(), 1_400)
  t.equal(s.since(450), 1_400, 'a peer last heard at 450 ms is credited the whole stall')
  t.equal(s.since(2_000), 0, 'one heard after it, nothing')
  now += 110
  t.equal(s.sample(), 0, '10 ms late is jitter, not a stall')
  t.same(s.stats, { count: 1, totalMs: 1_400, longestMs: 1_400 })
})

t.test('a really blocked event loop is seen by node:perf_hooks even when the check itself is not late', async (t) => {
  const s = new LoopStalls({ intervalMs: 10_000 })
  t.teardown(() => s.stop())
  s.sample()
  await new Promise((r) => setTimeout(r, 50))
  const until = Date.now() + 400
  while (Date.now() < until) {
    // blocked
  }
  await new Promise((r) => setTimeout(r, 30))
  const stalled = s.sample()
  t.ok(stalled >= 300, `a 400 ms block measured as ${Math.round(stalled)} ms`)
})

t.test("an orchestrator whose own loop was blocked for 1.5 s does not fail over live nodes; a node really gone is still convicted", async (t) => {
  const m = new SimMarket(4)
  t.teardown(() => m.close())
  const o = m.nodes[0]!.orchestrator
  const d = await o.deploy(workload({ resources: { cpu: 0.5, memory: '256Mi' }, lane: 'protected' }))
  const v = await until(() => { const s = o.status(d.id); return s.phase === 'running' && s.standby !== null && s }, 5000, 'running with standby')
  await new Promise((r) => setTimeout(r, 300))
  // our own stall: no beat is read for 1.5 s (30 beat intervals; phi 3 convicts after ~3.5)
  const blockedUntil = Date.now() + 1_500
  while (Date.now() < blockedUntil) {
    // blocked
  }
  await new Promise((r) => setTimeout(r, 500))
  t.same(o.status(d.id).failovers, [], 'no failover: the silence was ours')
  t.ok(o.ownStalls.count >= 1 && o.ownStalls.longestMs >= 1_000, `the stall was seen (${JSON.stringify(o.ownStalls)})`)
  const victim = v.replicas.find((r) => r.node !== m.nodes[0]!.did)!
  m.down.add(victim.node!)
  const after = await until(() => { const s = o.status(d.id); return s.failovers[0]?.ms != null && s }, 5000, 'failover of a node really gone')
  t.equal(after.failovers.length, 1, 'a node that stopped beating is convicted after our stall as before')
})

// The simulation's figures as properties on fixed seeds (behaviour of the trust code, not timing).
import t from 'tap'
import { simulate, LIAR_KINDS } from '../sim/simulation.ts'

for (const liarShare of [0.05, 0.2]) {
  t.test(`1,000 nodes, ${liarShare * 100}% liars (seed 1): the goals of issue 21 hold`, async (t) => {
    const r = simulate({ seed: 1, liarShare })
    const always = r.byKind['always-wrong']
    t.ok(always.nodes > 0)
    t.ok(always.within20 / always.nodes >= 0.99, `always-wrong within 20 runs: ${always.within20}/${always.nodes}`)
    t.equal(r.falsePositives, 0, 'no honest node quarantined')
    t.ok(r.checkingOverhead < 0.1, `checking overhead ${(r.checkingOverhead * 100).toFixed(2)}%`)
    t.ok(r.checkingOverhead > 0.02, 'and checking does happen')
    for (const k of LIAR_KINDS) t.ok(r.byKind[k].quarantined / r.byKind[k].nodes >= 0.9, `${k}: ${r.byKind[k].quarantined}/${r.byKind[k].nodes} quarantined`)
    t.ok(r.undetectedWrong < 0.005, `wrong paid results not caught: ${(r.undetectedWrong * 100).toFixed(3)}%`)
  })
}

t.test('the same seed gives the same figures; with no checking, liars go free', async (t) => {
  const a = simulate({ seed: 7, nodes: 200, tasksPerNode: 50 })
  const b = simulate({ seed: 7, nodes: 200, tasksPerNode: 50 })
  t.same(a, b)
  const none = simulate({
    seed: 7, nodes: 200, tasksPerNode: 50,
    policy: { ...a.config && (await import('../policy.ts')).defaultTrustPolicy, replicateFresh: 0, replicateFloor: 0, validationRate: 0 },
  })
  t.equal(none.byKind['always-wrong'].quarantined, 0, 'nothing checked, nothing caught')
  t.equal(none.runs.replicas + none.runs.validationTasks, 0)
})

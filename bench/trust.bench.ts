// Worker trust (npm run bench -- trust; spec/trust.md "Simulation"): a seeded simulation of 1,000 nodes, 5%,
// 10% and 20% of them liars of four kinds, run through the daemons' own trust code (trust/sim). Printed:
// detection, false positives, runs to quarantine and the share of compute spent on checking. The baseline
// beside the checking overhead is full replication (every run twice: 50% of compute spent on checking).
// These are behaviours of a seeded model, not timings: the same seed prints the same figures.
import { printSection, type Figure } from './report.ts'
import { simulate, LIAR_KINDS } from '../trust/sim/simulation.ts'

const seed = Number(process.argv.find((a) => a.startsWith('--seed='))?.slice(7) ?? 1)
for (const liarShare of [0.05, 0.1, 0.2]) {
  const t0 = performance.now()
  const r = simulate({ seed, liarShare })
  const ms = performance.now() - t0
  const always = r.byKind['always-wrong']
  const figures: Figure[] = [
    { name: 'liars quarantined (all kinds)', value: r.detectionRate * 100, unit: '%', better: 'higher' },
    { name: 'always-wrong quarantined within 20 runs', value: (always.within20 / Math.max(1, always.nodes)) * 100, unit: '%', better: 'higher', target: '>= 99%' },
    { name: 'honest nodes quarantined', value: r.falsePositives, unit: 'nodes', better: 'lower', target: '0' },
    {
      name: 'checking overhead', value: r.checkingOverhead * 100, unit: '%', better: 'lower', target: '< 10%',
      baseline: { name: 'full replication', value: 50 },
    },
    { name: 'paid runs wrong and not caught', value: r.undetectedWrong * 100, unit: '%', better: 'lower' },
  ]
  for (const k of LIAR_KINDS) {
    const x = r.byKind[k]
    const t = x.runsToQuarantine
    figures.push({ name: `${k}: quarantined ${x.quarantined}/${x.nodes}, runs p50/p99`, value: t ? t.p50 : NaN, unit: `/${t ? t.p99 : '-'} runs`, better: 'lower' })
  }
  printSection(`trust simulation, seed ${seed}, ${r.config.nodes} nodes, ${liarShare * 100}% liars, ${r.runs.paid} paid runs (${Math.round(ms)} ms)`, figures)
  console.log(`  runs: paid ${r.runs.paid}, replicas ${r.runs.replicas}, validation tasks ${r.runs.validationTasks}, readmission tasks ${r.runs.readmissionTasks}; inconclusive quorums ${r.inconclusive}`)
}

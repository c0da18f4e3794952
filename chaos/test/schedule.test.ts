// The schedule generator: a seed is the whole description of a schedule, so the same seed must give the same
// schedule, and schedules must stay inside what the runner and the spec's bounds allow.
import t from 'tap'
import { describe, faultsOf, generateSchedule, KILL_PHASES, MAX_SKEW_MS, NODE_COUNT, ORCHESTRATOR } from '../schedule.ts'
import { Prng } from '../prng.ts'

t.test('the same seed gives the same schedule', async (t) => {
  for (const seed of [0, 1, 7, 42, 123_456, 2 ** 32 - 1]) t.same(generateSchedule(seed), generateSchedule(seed), `seed ${seed}`)
  t.same(describe(generateSchedule(99)), describe(generateSchedule(99)), 'and the same description')
})

t.test('different seeds give different schedules', async (t) => {
  const seen = new Set(Array.from({ length: 50 }, (_, i) => JSON.stringify(generateSchedule(i).ops)))
  t.ok(seen.size >= 49, `${seen.size} distinct schedules from 50 seeds`)
})

t.test('the PRNG is the same sequence everywhere (fixed values for seed 1)', async (t) => {
  const r = new Prng(1)
  t.same([r.int(0, 999_999), r.int(0, 999_999), r.int(0, 999_999)], [588_393, 73_188, 590_310], 'splitmix32 from seed 1')
})

t.test("schedules stay within the runner's and the spec's bounds", async (t) => {
  const kinds = new Set<string>()
  const phases = new Set<string>()
  for (let seed = 1; seed <= 300; seed++) {
    const s = generateSchedule(seed)
    t.equal(s.clockOffsetsMs.length, NODE_COUNT)
    if (s.clockOffsetsMs.some((o) => Math.abs(o) > MAX_SKEW_MS)) t.fail(`seed ${seed}: a clock offset beyond ${MAX_SKEW_MS} ms`)
    const keys = new Set(s.ops.filter((o) => o.kind === 'deploy').map((o) => (o as { key: string }).key))
    if (keys.size < 2) t.fail(`seed ${seed}: fewer than two deployments`)
    let staysDown = 0
    for (const op of s.ops) {
      kinds.add(op.kind === 'kill' ? `kill-${op.role}` : op.kind)
      if (op.kind === 'stop' && !keys.has(op.key)) t.fail(`seed ${seed}: stop of an unknown deployment`)
      if (op.kind === 'kill') {
        if (op.trigger) {
          phases.add(op.trigger.phase)
          if (!keys.has(op.trigger.key)) t.fail(`seed ${seed}: a kill timed on an unknown deployment`)
        }
        if (op.restartAfterMs === null) {
          staysDown++
          if (op.node !== ORCHESTRATOR) t.fail(`seed ${seed}: only the orchestrator may stay down`)
        }
      }
      if (op.kind === 'partition' && (op.sides[0].length === 0 || op.sides[1].length === 0 || op.sides[0].length + op.sides[1].length !== NODE_COUNT)) t.fail(`seed ${seed}: a partition that is not a split of the nodes`)
    }
    if (staysDown > 1) t.fail(`seed ${seed}: more than one kill leaves the orchestrator down`)
    const ordered = s.ops.every((op, i) => i === 0 || s.ops[i - 1]!.at <= op.at)
    if (!ordered) t.fail(`seed ${seed}: operations out of order`)
  }
  t.same([...kinds].sort(), ['cut', 'delay', 'deploy', 'kill-orchestrator', 'kill-provider', 'kill-standby', 'partition', 'stop'], 'every kind of operation and fault occurs')
  t.same([...phases].sort(), Object.values(KILL_PHASES).flat().sort(), 'kills are timed at every step boundary of placement, failover and stop')
})

t.test('faults are counted by kind, a skewed clock counting once per node', async (t) => {
  const s = generateSchedule(3)
  const f = faultsOf(s)
  t.equal(f.skew ?? 0, s.clockOffsetsMs.filter((o) => o !== 0).length)
  t.equal(Object.entries(f).filter(([k]) => k !== 'skew').reduce((n, [, v]) => n + v, 0), s.ops.filter((o) => o.kind !== 'deploy' && o.kind !== 'stop').length)
})

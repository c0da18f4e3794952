// A seeded simulation of many nodes, some of them liars, run through the same trust code as the daemons
// (TrustBook, the policy, judgeRuns, judgeKnownAnswer): only the network and the executors are simulated.
// spec/trust.md "Simulation" states the model and the figures; `npm run bench` prints them
// (bench/trust.bench.ts) and trust/test/simulation.test.ts asserts them on a fixed seed.
import { TrustBook } from '../book.ts'
import { defaultTrustPolicy, type TrustPolicy } from '../policy.ts'
import { judgeKnownAnswer, judgeRuns, type RunResult, type Verdict } from '../quorum.ts'
import { seeded } from './random.ts'

export type NodeKind = 'honest' | 'always-wrong' | 'sometimes-wrong' | 'inflates-capacity' | 'drops-work'
export const LIAR_KINDS: readonly NodeKind[] = ['always-wrong', 'sometimes-wrong', 'inflates-capacity', 'drops-work']

export interface SimulationConfig {
  seed: number
  nodes: number
  /** Nodes per owner id: owner of node i is `o${i % owners}` (several nodes share an owner). */
  owners: number
  /** Share of liars (0..1), split evenly over the liar kinds. */
  liarShare: number
  /** Paid job runs per node on average. */
  tasksPerNode: number
  /** How often an honest node drops a run (a crash, a reboot). */
  honestMissRate: number
  /** How often a sometimes-wrong node returns a wrong result. */
  sometimesWrongRate: number
  /** How often a node that drops work drops a run. */
  dropRate: number
  /** How much more capacity an inflating node claims than it has (it is picked that much more often)... */
  inflation: number
  /** ...and how often, overloaded, it fails to return a run it accepted. */
  inflatedMissRate: number
  /** Paid runs between two validation tasks of a quarantined node, doubled after each (readmission tests). */
  readmitBackoffRuns: number
  policy: TrustPolicy
}

export const defaultSimulation: SimulationConfig = {
  seed: 1,
  nodes: 1000,
  owners: 800,
  liarShare: 0.1,
  tasksPerNode: 300,
  honestMissRate: 0.002,
  sometimesWrongRate: 0.25,
  dropRate: 0.3,
  inflation: 4,
  inflatedMissRate: 0.3,
  readmitBackoffRuns: 1000,
  policy: defaultTrustPolicy,
}

export interface KindReport {
  nodes: number
  /** Quarantined at least once. */
  quarantined: number
  /** Quarantined at the end of the run. */
  quarantinedAtEnd: number
  /** Runs the node had been given when it was first quarantined: p50, p99, max (of those quarantined). */
  runsToQuarantine: { p50: number; p99: number; max: number } | null
  /** Quarantined within 20 runs. */
  within20: number
}

export interface SimulationReport {
  config: Omit<SimulationConfig, 'policy'>
  byKind: Record<NodeKind, KindReport>
  /** Liars quarantined at least once / liars. */
  detectionRate: number
  /** Honest nodes quarantined at least once. */
  falsePositives: number
  runs: { paid: number; replicas: number; validationTasks: number; readmissionTasks: number; total: number }
  /** Runs spent on checking (replicas, validation and readmission tasks) / every run. */
  checkingOverhead: number
  /** Paid runs whose wrong result no check caught / paid runs. */
  undetectedWrong: number
  /** Replicated runs whose quorum found no agreement (nobody struck). */
  inconclusive: number
}

interface SimNode {
  id: string
  owner: string
  kind: NodeKind
  /** Runs given to it (paid, replicas, validation tasks). */
  runs: number
  firstQuarantinedAt: number | null
  readmitNext: number
  readmitStep: number
}

const pct = (xs: number[], q: number): number => xs[Math.min(xs.length - 1, Math.max(0, Math.ceil(q * xs.length) - 1))]!

export function simulate(partial: Partial<SimulationConfig> = {}): SimulationReport {
  const c: SimulationConfig = { ...defaultSimulation, ...partial }
  const rnd = seeded(c.seed)
  const book = new TrustBook({ policy: c.policy, judgeUptime: false })
  const nodes: SimNode[] = []
  const liars = Math.round(c.nodes * c.liarShare)
  // liars spread over the ids by a seeded shuffle
  const order = Array.from({ length: c.nodes }, (_, i) => i)
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1))
    ;[order[i], order[j]] = [order[j]!, order[i]!]
  }
  const kindOf = new Map<number, NodeKind>()
  for (let k = 0; k < liars; k++) kindOf.set(order[k]!, LIAR_KINDS[k % LIAR_KINDS.length]!)
  for (let i = 0; i < c.nodes; i++) {
    nodes.push({ id: `n${i}`, owner: `o${i % c.owners}`, kind: kindOf.get(i) ?? 'honest', runs: 0, firstQuarantinedAt: null, readmitNext: Infinity, readmitStep: 0 })
  }
  const price = nodes.map(() => rnd())
  const runs = { paid: 0, replicas: 0, validationTasks: 0, readmissionTasks: 0, total: 0 }
  let undetectedWrong = 0
  let inconclusive = 0
  let step = 0

  /** What `n` returns for a job whose correct digest is `good`. */
  const run = (n: SimNode, good: string): string | null => {
    n.runs++
    runs.total++
    const u = rnd()
    switch (n.kind) {
      case 'honest': return u < c.honestMissRate ? null : good
      case 'always-wrong': return `wrong-${n.id}-${step}`
      case 'sometimes-wrong': return u < c.sometimesWrongRate ? `wrong-${n.id}-${step}` : good
      case 'drops-work': return u < c.dropRate ? null : good
      case 'inflates-capacity': return u < c.inflatedMissRate ? null : good
    }
  }
  const quarantined = (n: SimNode): boolean => book.isQuarantined(n.id)
  const apply = (n: SimNode, v: Verdict, by: 'replication' | 'known-answer'): void => {
    for (const e of book.apply(n.id, v, by, step)) {
      if (e.kind === 'quarantined') {
        n.firstQuarantinedAt ??= n.runs
        n.readmitStep = c.readmitBackoffRuns
        n.readmitNext = step + n.readmitStep
      } else {
        n.readmitNext = Infinity
      }
    }
  }
  /** The market's pick: two candidates (an inflating node shows up `inflation` times as often), the better score wins. */
  const pick = (): SimNode => {
    const draw = (): SimNode => {
      for (;;) {
        const n = nodes[Math.floor(rnd() * nodes.length)]!
        if (quarantined(n)) continue
        if (n.kind !== 'inflates-capacity' && rnd() * c.inflation >= 1) continue
        return n
      }
    }
    const a = draw()
    const b = draw()
    const score = (n: SimNode): number => 0.6 * (1 - price[Number(n.id.slice(1))]!) + 0.1 * book.trust(n.id, step)
    return score(a) >= score(b) ? a : b
  }
  /** A node for another run of a job: not quarantined, of an owner that has not run it yet. */
  const checker = (excludeOwners: Set<string>): SimNode => {
    for (;;) {
      const n = nodes[Math.floor(rnd() * nodes.length)]!
      if (!quarantined(n) && !excludeOwners.has(n.owner)) return n
    }
  }
  const knownAnswer = (n: SimNode): void => {
    const good = `kat-${step}`
    book.validationSent(n.id, step)
    const got = run(n, good)
    if (got !== null) book.returned(n.id, step)
    apply(n, judgeKnownAnswer(good, got), 'known-answer')
  }

  const paidRuns = c.nodes * c.tasksPerNode
  for (step = 0; step < paidRuns; step++) {
    // readmission tests of quarantined nodes whose time came
    if (step % 100 === 0) {
      for (const n of nodes) {
        if (n.readmitNext > step || !quarantined(n)) continue
        runs.readmissionTasks++
        knownAnswer(n)
        if (quarantined(n)) {
          n.readmitStep *= 2
          n.readmitNext = step + n.readmitStep
        }
      }
    }
    const good = `ok-${step}`
    const first = pick()
    runs.paid++
    const firstDigest = run(first, good)
    if (firstDigest !== null) book.returned(first.id, step)
    if (firstDigest === null) {
      // nothing to compare (the job is placed again: a paid retry, not checking, and not modelled)
      apply(first, 'missed', 'replication')
    } else if (book.shouldReplicate(first.id, rnd())) {
      const results: RunResult[] = [{ node: first.id, owner: first.owner, digest: firstDigest }]
      const byId = new Map<string, SimNode>([[first.id, first]])
      let state = judgeRuns(results, c.policy.maxRuns)
      while (state.kind === 'needs-run') {
        const n = checker(state.excludeOwners)
        byId.set(n.id, n)
        runs.replicas++
        const d = run(n, good)
        if (d !== null) book.returned(n.id, step)
        results.push({ node: n.id, owner: n.owner, digest: d })
        state = judgeRuns(results, c.policy.maxRuns)
      }
      if (state.kind === 'inconclusive') inconclusive++
      if (firstDigest !== good && state.verdicts.get(first.id) !== 'invalid') undetectedWrong++
      for (const [id, v] of state.verdicts) apply(byId.get(id)!, v, 'replication')
    } else if (firstDigest !== good) {
      undetectedWrong++
    }
    if (!quarantined(first) && book.shouldValidate(rnd())) {
      runs.validationTasks++
      knownAnswer(first)
    }
  }

  const byKind = {} as Record<NodeKind, KindReport>
  for (const kind of ['honest', ...LIAR_KINDS] as NodeKind[]) {
    const of = nodes.filter((n) => n.kind === kind)
    const times = of.filter((n) => n.firstQuarantinedAt !== null).map((n) => n.firstQuarantinedAt!).sort((a, b) => a - b)
    byKind[kind] = {
      nodes: of.length,
      quarantined: times.length,
      quarantinedAtEnd: of.filter(quarantined).length,
      runsToQuarantine: times.length > 0 ? { p50: pct(times, 0.5), p99: pct(times, 0.99), max: times[times.length - 1]! } : null,
      within20: times.filter((t) => t <= 20).length,
    }
  }
  const liarNodes = nodes.filter((n) => n.kind !== 'honest')
  const { policy: _policy, ...config } = c
  void _policy
  const checking = runs.replicas + runs.validationTasks + runs.readmissionTasks
  return {
    config,
    byKind,
    detectionRate: liarNodes.length === 0 ? 1 : liarNodes.filter((n) => n.firstQuarantinedAt !== null).length / liarNodes.length,
    falsePositives: byKind.honest.quarantined,
    runs,
    checkingOverhead: checking / runs.total,
    undetectedWrong: undetectedWrong / runs.paid,
    inconclusive,
  }
}

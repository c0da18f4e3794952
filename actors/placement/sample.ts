// Who is asked for binding bids, round by round (spec/orchestration.md, "Placement at scale"). A placement of
// `count` slots first asks a sample of d x needed nodes drawn from the capacity index (power of d choices,
// Sparrow's batch sampling: one joint sample for all the slots), at least `minSample`; when the sample yields
// fewer feasible bids than needed, a second round asks `widenFactor` times as many other nodes; the last
// resort is today's broadcast round. The plan is pure; `runRounds` drives it over the caller's ask and
// broadcast so the orchestrator and the bench run the same rule.
import type { Workload } from '../workload/workload.ts'
import type { CapacityIndex } from './capacity-index.ts'

export interface SamplePolicy {
  /** Nodes asked per needed bid in the first round. */
  d: number
  /** Fewest nodes a sampled round asks. */
  minSample: number
  /** How many times bigger each further sampled round is. */
  widenFactor: number
  /** Sampled rounds before the broadcast. */
  sampledRounds: number
  /** Index entries one draw may look at, per node asked (with `minTouches`: the bound of a query's work). */
  touchesPerCandidate: number
  minTouches: number
}

export const defaultSamplePolicy: Readonly<SamplePolicy> = Object.freeze({
  d: 2, minSample: 4, widenFactor: 4, sampledRounds: 2, touchesPerCandidate: 8, minTouches: 64,
})

export type RoundPlan =
  | { round: number; kind: 'sample'; size: number }
  | { round: number; kind: 'broadcast' }

/** Bids a placement needs: one per slot, and one more for the protected lane's standby. */
export function neededBids(count: number, standby = false): number {
  return Math.max(1, count) + (standby ? 1 : 0)
}

/** The plan of round `round` (0-based): a sample of max(minSample, d x needed) x widenFactor^round, then the broadcast. */
export function roundPlan(round: number, needed: number, policy: Readonly<SamplePolicy> = defaultSamplePolicy): RoundPlan {
  if (!Number.isSafeInteger(round) || round < 0) throw new RangeError('round must be an integer >= 0')
  if (round >= policy.sampledRounds) return { round, kind: 'broadcast' }
  const first = Math.max(policy.minSample, Math.ceil(policy.d * Math.max(1, needed)))
  return { round, kind: 'sample', size: first * policy.widenFactor ** round }
}

/** Messages a round costs at most (a request to each node asked and its answer, bid or decline); a broadcast reaches every one of `nodes`. */
export function roundMessages(plan: RoundPlan, nodes: number): number {
  return 2 * (plan.kind === 'sample' ? plan.size : nodes)
}

/** The widening rule: a round that leaves fewer feasible bids than needed is followed by a wider one. */
export function shouldWiden(feasibleBids: number, needed: number): boolean {
  return feasibleBids < needed
}

export interface CandidateChoice {
  /** Nodes to ask directly in this round (empty for a broadcast). */
  dids: string[]
  /** True when the index could not fill the requested round and a wider one was chosen instead. */
  widened: boolean
  /** The round chosen; the next one, if needed, is `plan.round + 1`. */
  plan: RoundPlan
  /** Index entries looked at. */
  touched: number
}

export interface ChooseOptions {
  /** The round to plan (0 for the first). */
  round?: number
  /** The protected lane's standby: one more bid needed. */
  standby?: boolean
  policy?: Readonly<SamplePolicy>
}

/**
 * The nodes to ask in round `o.round` for `count` slots of `workload`, never one in `exclude`. When the index
 * holds fewer feasible candidates than needed for that round, it widens at once: a bigger sample, or (when the
 * index has no more) the broadcast.
 */
export function chooseCandidates(index: CapacityIndex, workload: Workload, count: number, exclude: Iterable<string> = [], o: ChooseOptions = {}): CandidateChoice {
  const policy = o.policy ?? defaultSamplePolicy
  const needed = neededBids(count, o.standby === true)
  const ex = exclude instanceof Set ? (exclude as ReadonlySet<string>) : new Set(exclude)
  const first = o.round ?? 0
  let touched = 0
  for (let r = first; ; r++) {
    const plan = roundPlan(r, needed, policy)
    if (plan.kind === 'broadcast') return { dids: [], widened: r > first, plan, touched }
    const s = index.sample({ workload, want: plan.size, exclude: ex, budget: Math.max(policy.minTouches, policy.touchesPerCandidate * plan.size) })
    touched += s.touched
    if (s.dids.length >= needed) return { dids: s.dids, widened: r > first, plan, touched }
    // The whole pool was seen: a bigger sample would find nothing more, only the broadcast can.
    if (s.exhausted) return { dids: [], widened: true, plan: roundPlan(Math.max(r + 1, policy.sampledRounds), needed, policy), touched }
  }
}

export interface RoundsInit<B> {
  index: CapacityIndex
  workload: Workload
  count: number
  standby?: boolean
  /** Nodes never to ask (lost, fenced, refused). */
  exclude?: Iterable<string>
  policy?: Readonly<SamplePolicy>
  /** Asks these nodes directly for binding bids; resolves with the bids (declines and silence left out). */
  ask(dids: string[], plan: RoundPlan): Promise<readonly B[]> | readonly B[]
  /** The last resort, today's broadcast round; `asked` are the nodes whose answers are already in. */
  broadcast(plan: RoundPlan, asked: ReadonlySet<string>): Promise<readonly B[]> | readonly B[]
  /** How many of the bids so far are usable (default all; e.g. those within the latency and trust limits). */
  feasible?(bids: readonly B[]): number
}

export interface RoundsResult<B> {
  /** Every bid gathered, over all rounds. */
  bids: B[]
  rounds: { plan: RoundPlan; asked: number; widened: boolean }[]
  /** Nodes asked directly. */
  asked: Set<string>
  broadcast: boolean
  touched: number
}

/** Runs the rounds of one placement: sample, wider sample, broadcast, stopping at the first that leaves enough feasible bids. */
export async function runRounds<B>(o: RoundsInit<B>): Promise<RoundsResult<B>> {
  const needed = neededBids(o.count, o.standby === true)
  const asked = new Set<string>(o.exclude ?? [])
  const out: RoundsResult<B> = { bids: [], rounds: [], asked: new Set(), broadcast: false, touched: 0 }
  const feasible = o.feasible ?? ((b: readonly B[]) => b.length)
  for (let round = 0; ; ) {
    const c = chooseCandidates(o.index, o.workload, o.count, asked, { round, standby: o.standby === true, ...(o.policy ? { policy: o.policy } : {}) })
    out.touched += c.touched
    if (c.plan.kind === 'broadcast') {
      out.rounds.push({ plan: c.plan, asked: 0, widened: c.widened })
      out.broadcast = true
      out.bids.push(...await o.broadcast(c.plan, out.asked))
      return out
    }
    out.rounds.push({ plan: c.plan, asked: c.dids.length, widened: c.widened })
    for (const d of c.dids) {
      asked.add(d)
      out.asked.add(d)
    }
    out.bids.push(...await o.ask(c.dids, c.plan))
    if (!shouldWiden(feasible(out.bids), needed)) return out
    round = c.plan.round + 1 // rounds only grow: the broadcast ends the loop
  }
}

// A schedule: everything one chaos run does, drawn from a seed (as TigerBeetle's VOPR and Jepsen's
// generators): the deployments created and stopped, and the faults (kill -9 of a role, optionally at a step
// boundary of a deployment, link cuts, partitions, delays, per-node clock offsets), each at a time from the
// start. The same seed gives the same schedule (chaos/test/schedule.test.ts); the runner (runner.ts) plays
// it against real daemons.
import { Prng } from './prng.ts'

/** Five nodes: 0 orchestrates (and names 1 its standby orchestrator), 1-4 provide. */
export const NODE_COUNT = 5
export const ORCHESTRATOR = 0
export const STANDBY = 1
export const PROVIDERS = [1, 2, 3, 4] as const

export type Role = 'orchestrator' | 'standby' | 'provider'
export type Lane = 'best-effort' | 'protected'

/** Deployment phases a kill can be timed at: the step boundaries of placement, failover and stop. */
export const KILL_PHASES = {
  placement: ['bidding', 'committing', 'provisioning'],
  failover: ['degraded'],
  stop: ['stopping'],
} as const
export type KillPhase = (typeof KILL_PHASES)[keyof typeof KILL_PHASES][number]

export interface DeployOp { kind: 'deploy'; at: number; key: string; name: string; lane: Lane; replicas: number }
export interface StopOp { kind: 'stop'; at: number; key: string }
export interface KillOp {
  kind: 'kill'
  at: number
  node: number
  role: Role
  /** Wait (from `at`, at most `TRIGGER_WAIT_MS`) until this deployment enters this phase, then kill. */
  trigger: { key: string; phase: KillPhase } | null
  /** Restart this long after the kill; null: the node stays down (only the orchestrator: its standby takes over). */
  restartAfterMs: number | null
}
export interface CutOp { kind: 'cut'; at: number; node: number; forMs: number }
export interface PartitionOp { kind: 'partition'; at: number; sides: [number[], number[]]; forMs: number }
export interface DelayOp { kind: 'delay'; at: number; node: number; ms: number; forMs: number }
export type Operation = DeployOp | StopOp | KillOp | CutOp | PartitionOp | DelayOp

export interface Schedule {
  seed: number
  nodes: number
  /** Each node's wall-clock offset for the whole schedule (NOIR_CLOCK_OFFSET_MS), ms. */
  clockOffsetsMs: number[]
  /** When the last operation starts; faults still open then are healed by the runner. */
  durationMs: number
  ops: Operation[]
}

export type FaultKind = 'kill-orchestrator' | 'kill-standby' | 'kill-provider' | 'cut' | 'partition' | 'delay' | 'skew'

export const TRIGGER_WAIT_MS = 8_000
/** Clock offsets stay inside what the protocol tolerates (spec/chaos.md "Bounds"). */
export const MAX_SKEW_MS = 2_000

export interface ScheduleOptions {
  /** Window in which operations start, ms (default 12 s). */
  durationMs?: number
  /** Faults per schedule, inclusive range (default 2..4). */
  faults?: [number, number]
}

const roleOf = (node: number): Role => (node === ORCHESTRATOR ? 'orchestrator' : node === STANDBY ? 'standby' : 'provider')

export function generateSchedule(seed: number, opts: ScheduleOptions = {}): Schedule {
  const rng = new Prng(seed)
  const durationMs = opts.durationMs ?? 12_000
  const [minFaults, maxFaults] = opts.faults ?? [2, 4]
  const clockOffsetsMs = Array.from({ length: NODE_COUNT }, () => (rng.chance(0.4) ? rng.int(-MAX_SKEW_MS, MAX_SKEW_MS) : 0))
  const ops: Operation[] = []

  const deploys: DeployOp[] = []
  const deployCount = rng.int(2, 3)
  for (let i = 0; i < deployCount; i++) {
    const lane: Lane = rng.chance(0.4) ? 'protected' : 'best-effort'
    deploys.push({ kind: 'deploy', at: rng.int(0, Math.floor(durationMs * 0.4)), key: `s${seed}-d${i}`, name: `chaos-${i}`, lane, replicas: lane === 'protected' ? 2 : rng.int(1, 2) })
  }
  ops.push(...deploys)
  const stops = new Map<string, StopOp>()
  for (const d of deploys) {
    if (!rng.chance(0.35)) continue
    const stop: StopOp = { kind: 'stop', at: d.at + rng.int(2_000, 6_000), key: d.key }
    stops.set(d.key, stop)
    ops.push(stop)
  }

  let orchestratorStaysDown = false
  const faultCount = rng.int(minFaults, maxFaults)
  for (let f = 0; f < faultCount; f++) {
    const kind = rng.pick(['kill', 'kill', 'kill', 'cut', 'partition', 'delay'] as const)
    const at = rng.int(0, durationMs)
    if (kind === 'kill') {
      const node = rng.int(0, NODE_COUNT - 1)
      const role = roleOf(node)
      let trigger: KillOp['trigger'] = null
      if (rng.chance(0.6)) {
        const d = rng.pick(deploys)
        const stop = stops.get(d.key)
        const group = rng.pick(stop ? (['placement', 'failover', 'stop'] as const) : (['placement', 'failover'] as const))
        trigger = { key: d.key, phase: rng.pick(KILL_PHASES[group]) }
      }
      // at most one orchestrator kill per schedule leaves it down (its standby takes over)
      const staysDown = role === 'orchestrator' && !orchestratorStaysDown && rng.chance(0.25)
      if (staysDown) orchestratorStaysDown = true
      const restartAfterMs = staysDown ? null : rng.int(300, 3_000)
      // a timed kill starts watching when its deployment is created (or its stop is asked)
      const watchFrom = trigger === null ? at : trigger.phase === 'stopping' ? stops.get(trigger.key)!.at : deploys.find((d) => d.key === trigger!.key)!.at
      ops.push({ kind: 'kill', at: watchFrom, node, role, trigger, restartAfterMs })
    } else if (kind === 'cut') {
      ops.push({ kind: 'cut', at, node: rng.int(0, NODE_COUNT - 1), forMs: rng.int(1_000, 5_000) })
    } else if (kind === 'partition') {
      const order = rng.shuffle(Array.from({ length: NODE_COUNT }, (_, i) => i))
      const split = rng.int(1, NODE_COUNT - 1)
      ops.push({ kind: 'partition', at, sides: [order.slice(0, split).sort(), order.slice(split).sort()], forMs: rng.int(1_000, 5_000) })
    } else {
      ops.push({ kind: 'delay', at, node: rng.int(0, NODE_COUNT - 1), ms: rng.int(20, 200), forMs: rng.int(2_000, 6_000) })
    }
  }
  ops.sort((a, b) => a.at - b.at)
  return { seed, nodes: NODE_COUNT, clockOffsetsMs, durationMs, ops }
}

/** The faults a schedule injects, by kind (a node with a clock offset counts as one `skew`). */
export function faultsOf(s: Schedule): Partial<Record<FaultKind, number>> {
  const out: Partial<Record<FaultKind, number>> = {}
  const add = (k: FaultKind): void => void (out[k] = (out[k] ?? 0) + 1)
  for (const o of s.clockOffsetsMs) if (o !== 0) add('skew')
  for (const op of s.ops) {
    if (op.kind === 'kill') add(`kill-${op.role}`)
    else if (op.kind === 'cut' || op.kind === 'partition' || op.kind === 'delay') add(op.kind)
  }
  return out
}

/** One line per operation, for the report of a failing seed. */
export function describe(s: Schedule): string[] {
  const lines = [`seed ${s.seed}: clock offsets ${s.clockOffsetsMs.map((o, i) => `n${i}=${o}ms`).join(' ')}`]
  for (const op of s.ops) {
    const t = `+${(op.at / 1000).toFixed(1)}s`
    if (op.kind === 'deploy') lines.push(`${t} deploy ${op.key} (${op.lane}, ${op.replicas} replica${op.replicas > 1 ? 's' : ''})`)
    else if (op.kind === 'stop') lines.push(`${t} stop ${op.key}`)
    else if (op.kind === 'kill') lines.push(`${t} kill -9 n${op.node} (${op.role})${op.trigger ? ` when ${op.trigger.key} enters ${op.trigger.phase}` : ''}, ${op.restartAfterMs === null ? 'stays down' : `restart after ${op.restartAfterMs} ms`}`)
    else if (op.kind === 'cut') lines.push(`${t} cut n${op.node} for ${op.forMs} ms`)
    else if (op.kind === 'partition') lines.push(`${t} partition [${op.sides[0].map((n) => `n${n}`).join(',')}] | [${op.sides[1].map((n) => `n${n}`).join(',')}] for ${op.forMs} ms`)
    else lines.push(`${t} delay towards n${op.node} ${op.ms} ms for ${op.forMs} ms`)
  }
  return lines
}

// The checker: the invariants of issue 25, judged on an Observation (observation.ts) after the faults are
// healed. Pure: the chaos runner feeds it the real state, the unit tests feed it synthetic states that break
// each invariant (chaos/test/invariants.test.ts). spec/chaos.md states each invariant and its bounds.
import type { ContractSeen, DeploymentSeen, DoubleRun, FaultWindow, NodeSeen, Observation } from './observation.ts'

export type InvariantName =
  | 'container-attributed' // every running container belongs to a deployment its orchestrator knows
  | 'slot-runs-once' // no slot runs twice for longer than the bound
  | 'reservation-owned' // every reservation belongs to a live contract or ends with its lease
  | 'deployment-settled' // every deployment reaches its desired state or a terminal state with a reason
  | 'create-kept' // no acknowledged create is lost

export const INVARIANTS: readonly InvariantName[] = ['container-attributed', 'slot-runs-once', 'reservation-owned', 'deployment-settled', 'create-kept']

export interface Violation {
  invariant: InvariantName
  detail: string
  /**
   * Work that no live orchestrator tracks any more (its orchestrator lost it): contract leases renewed by the
   * consumer end such work by themselves. Not built yet; the runner tolerates these only when asked
   * (`--allow-known-until-leases`, spec/chaos.md).
   */
  awaitsLeases: boolean
}

export interface Bounds {
  /** Beyond a replica's watchdog grace, how long two copies of a slot may overlap (detection + sampling), ms. */
  doubleRunSlackMs: number
  /** After a network fault heals, how long its nodes may take to reconnect and hear the fences, ms. */
  healGraceMs: number
  /** A provider's reservation time-out (spec/contracts.md: 30 s) and the slack for clocks and the expiry step. */
  reservationTtlMs: number
  reservationSlackMs: number
}

export const DEFAULT_BOUNDS: Bounds = { doubleRunSlackMs: 1_000, healGraceMs: 20_000, reservationTtlMs: 30_000, reservationSlackMs: 5_000 }

const FINAL = new Set(['stopped', 'failed', 'completed'])
const LIVE_CONTRACT = new Set(['reserved', 'standby', 'active'])

export interface CurrentView { view: DeploymentSeen; node: NodeSeen }

/**
 * Each deployment as its current orchestrator sees it: among live nodes, the view that is not `handed-over`
 * with the highest orchestrator epoch (a standby that took over outranks the node it took over from).
 */
export function currentViews(nodes: readonly NodeSeen[]): Map<string, CurrentView> {
  const out = new Map<string, CurrentView>()
  for (const node of nodes) {
    if (!node.live) continue
    for (const view of node.deployments) {
      if (view.phase === 'handed-over') continue
      const held = out.get(view.id)
      if (!held || view.orchestratorEpoch > held.view.orchestratorEpoch) out.set(view.id, { view, node })
    }
  }
  return out
}

const short = (did: string): string => did.slice(-6)
const references = (v: DeploymentSeen, contractId: string): boolean =>
  v.replicas.some((r) => r.contractId === contractId) || v.standby?.contractId === contractId

export function checkInvariants(o: Observation, bounds: Bounds = DEFAULT_BOUNDS): Violation[] {
  const views = currentViews(o.nodes)
  return [
    ...containersAttributed(o, views),
    ...slotsRunOnce(o, bounds),
    ...reservationsOwned(o, views, bounds),
    ...deploymentsSettled(o, views),
    ...createsKept(o, views),
  ]
}

function containersAttributed(o: Observation, views: Map<string, CurrentView>): Violation[] {
  const out: Violation[] = []
  const byContract = new Map<string, CurrentView>()
  for (const cv of views.values()) for (const r of cv.view.replicas) if (r.contractId) byContract.set(r.contractId, cv)
  for (const c of o.containers) {
    const cv = byContract.get(c.contract)
    const at = `container ${c.id.slice(0, 12)} on ${short(c.node)} (slot ${c.slot}, contract ${c.contract.slice(0, 8)})`
    if (!cv) {
      out.push({ invariant: 'container-attributed', detail: `${at}: no live orchestrator's deployment holds its contract`, awaitsLeases: true })
      continue
    }
    const r = cv.view.replicas.find((x) => x.contractId === c.contract)!
    if (FINAL.has(cv.view.phase)) out.push({ invariant: 'container-attributed', detail: `${at}: its deployment ${cv.view.id.slice(0, 8)} is ${cv.view.phase} on its orchestrator ${short(cv.node.did)}`, awaitsLeases: false })
    else if (r.node !== c.node) out.push({ invariant: 'container-attributed', detail: `${at}: its orchestrator places that replica on ${r.node ? short(r.node) : 'no node'}`, awaitsLeases: false })
  }
  return out
}

/** The part of [from, to] not covered by `windows`. */
export function uncoveredMs(from: number, to: number, windows: ReadonlyArray<readonly [number, number]>): number {
  const cut = windows.map(([a, b]) => [Math.max(a, from), Math.min(b, to)] as const).filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0])
  let covered = 0
  let reach = from
  for (const [a, b] of cut) {
    if (b <= reach) continue
    covered += b - Math.max(a, reach)
    reach = b
  }
  return to - from - covered
}

/** Network faults excuse a double run while they last and `healGraceMs` after: the spec's fence bound. */
function excuses(run: DoubleRun, windows: readonly FaultWindow[], healGraceMs: number): Array<[number, number]> {
  return windows.filter((w) => w.kind === 'partition' || w.nodes.some((n) => run.nodes.includes(n))).map((w) => [w.from, w.to + healGraceMs])
}

function slotsRunOnce(o: Observation, bounds: Bounds): Violation[] {
  const out: Violation[] = []
  const bySlot = new Map<string, string[]>()
  for (const c of o.containers) bySlot.set(c.slot, [...(bySlot.get(c.slot) ?? []), c.node])
  for (const [slot, nodes] of bySlot) {
    if (nodes.length > 1) out.push({ invariant: 'slot-runs-once', detail: `slot ${slot} still runs ${nodes.length} copies after the run (on ${nodes.map(short).join(', ')})`, awaitsLeases: false })
  }
  for (const run of o.doubleRuns) {
    const unexcused = uncoveredMs(run.from, run.to, excuses(run, o.faultWindows, bounds.healGraceMs))
    const bound = run.graceMs + bounds.doubleRunSlackMs
    if (unexcused > bound) out.push({ invariant: 'slot-runs-once', detail: `slot ${run.slot} ran twice (on ${run.nodes.map(short).join(', ')}) for ${unexcused} ms outside network faults, bound ${bound} ms`, awaitsLeases: false })
  }
  return out
}

function reservationsOwned(o: Observation, views: Map<string, CurrentView>, bounds: Bounds): Violation[] {
  const out: Violation[] = []
  for (const node of o.nodes) {
    if (!node.live) continue
    const live = node.contracts.filter((c) => c.side === 'provider' && LIVE_CONTRACT.has(c.status))
    for (const c of live) {
      const cv = views.get(c.deploymentId)
      if (cv && references(cv.view, c.id) && !FINAL.has(cv.view.phase)) continue
      if (c.status === 'reserved' && o.at < c.startsAt + bounds.reservationTtlMs + bounds.reservationSlackMs) continue // ends with its reservation
      out.push(orphan(node, c, cv))
    }
    const held = live.reduce((s, c) => s + c.cpu, 0)
    if (node.usedCpu !== null && node.usedCpu > held + 1e-6) {
      out.push({ invariant: 'reservation-owned', detail: `node ${short(node.did)} holds ${node.usedCpu} cpu but its live contracts account for ${held}`, awaitsLeases: false })
    }
  }
  return out
}

function orphan(node: NodeSeen, c: ContractSeen, cv: CurrentView | undefined): Violation {
  const at = `node ${short(node.did)} keeps ${c.status} contract ${c.id.slice(0, 8)} (slot ${c.slot})`
  if (cv && references(cv.view, c.id)) return { invariant: 'reservation-owned', detail: `${at} of a deployment its orchestrator ${short(cv.node.did)} has ${cv.view.phase}`, awaitsLeases: false }
  return { invariant: 'reservation-owned', detail: `${at}: no live orchestrator holds it${cv ? ` (deployment ${c.deploymentId.slice(0, 8)} is ${cv.view.phase} there)` : ''}`, awaitsLeases: true }
}

function deploymentsSettled(o: Observation, views: Map<string, CurrentView>): Violation[] {
  const out: Violation[] = []
  for (const c of o.creates) {
    const cv = views.get(c.id)
    if (!cv) continue // create-kept reports it
    const v = cv.view
    const at = `deployment ${c.key} (${c.id.slice(0, 8)}) on ${short(cv.node.did)}`
    if (c.stopAckedAt !== null) {
      if (!FINAL.has(v.phase)) out.push({ invariant: 'deployment-settled', detail: `${at}: its stop was acknowledged, but it is ${v.phase}`, awaitsLeases: false })
      continue
    }
    if (v.phase === 'failed' && !v.reason) out.push({ invariant: 'deployment-settled', detail: `${at}: failed without a reason`, awaitsLeases: false })
    // a stop sent whose answer never came may have been carried out: stopped or not, both are right
    else if (v.phase === 'stopped' && (c.stopSentAt ?? null) === null) out.push({ invariant: 'deployment-settled', detail: `${at}: stopped, but nobody asked`, awaitsLeases: false })
    else if (!FINAL.has(v.phase)) {
      const running = v.replicas.filter((r) => r.state === 'running').length
      if (v.phase !== 'running' || running < v.desired) out.push({ invariant: 'deployment-settled', detail: `${at}: ${v.phase} with ${running} of ${v.desired} replicas running${v.reason ? ` (${v.reason})` : ''}`, awaitsLeases: false })
    }
  }
  return out
}

function createsKept(o: Observation, views: Map<string, CurrentView>): Violation[] {
  const out: Violation[] = []
  for (const c of o.creates) {
    if (!views.has(c.id)) {
      const heldBy = o.nodes.filter((n) => n.live && n.deployments.some((d) => d.id === c.id)).map((n) => short(n.did))
      out.push({ invariant: 'create-kept', detail: `acknowledged create ${c.key} (${c.id.slice(0, 8)}) is on no live orchestrator${heldBy.length ? ` (only handed over on ${heldBy.join(', ')})` : ''}`, awaitsLeases: false })
    }
    if (c.replayedId !== null && c.replayedId !== c.id) out.push({ invariant: 'create-kept', detail: `create ${c.key} retried with its key answered ${c.replayedId.slice(0, 8)}, not ${c.id.slice(0, 8)}`, awaitsLeases: false })
  }
  return out
}

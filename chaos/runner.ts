// Plays one schedule against five real daemons (Jepsen's shape: a generator's operations and a nemesis's
// faults run against the real system, a history of acknowledged operations is kept, the faults are healed,
// then final reads are checked): operations run at their times, faults are lifted at the end, killed nodes
// come back (but an orchestrator the schedule leaves down), creates are retried with their keys, and the
// checker is asked until the state converges (or the bound passes). The seed reproduces the schedule (the
// same operations at the same times); the interleaving with real processes may differ between runs.
import type { ApiClient } from '../cli/api-client.ts'
import { ChaosCluster } from './cluster.ts'
import { checkInvariants, DEFAULT_BOUNDS, type Bounds, type Violation } from './invariants.ts'
import type { AckedCreate, FaultWindow, Observation } from './observation.ts'
import { apiContracts, DoubleRunSampler, observeNode, runningContainers, type ContractSource } from './observe.ts'
import { faultsOf, ORCHESTRATOR, STANDBY, TRIGGER_WAIT_MS, type DeployOp, type FaultKind, type KillOp, type Operation, type Schedule } from './schedule.ts'

export interface RunOptions {
  bounds?: Bounds
  /** How long the state may take to converge after the faults are healed (default 90 s). */
  convergeTimeoutMs?: number
  /** Do not count violations that contract leases would fix (spec/chaos.md); off by default. */
  allowKnownUntilLeases?: boolean
  contracts?: ContractSource
  /** Progress lines (default none). */
  log?: (line: string) => void
}

export interface ScheduleResult {
  seed: number
  faults: Partial<Record<FaultKind, number>>
  /** Violations that fail the schedule. */
  violations: Violation[]
  /** Violations tolerated by `allowKnownUntilLeases`. */
  tolerated: Violation[]
  converged: boolean
  /** Heal to the first observation with no violation (null: never within the bound). */
  convergeMs: number | null
  notes: string[]
  elapsedMs: number
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const WORKLOAD_CPU = 0.2

function workloadOf(op: DeployOp): Record<string, unknown> {
  return {
    apiVersion: 'noir/v1', kind: 'service', name: op.name, lane: op.lane,
    runtime: { type: 'container', image: 'noir/busybox:latest', command: ['sh', '-c', 'while true; do sleep 1; done'] },
    resources: { cpu: WORKLOAD_CPU, memory: '16Mi' }, service: { replicas: op.replicas },
  }
}

interface View { id: string; phase: string; orchestratorEpoch?: number }

/** The state of one run: the cluster, the history, and the fault windows. */
class Run {
  readonly creates = new Map<string, AckedCreate>()
  readonly unacked = new Set<string>()
  readonly windows: FaultWindow[] = []
  readonly notes: string[] = []
  readonly staysDown = new Set<number>()
  readonly #cluster: ChaosCluster
  readonly #t0: number
  readonly #restarts: Array<Promise<void>> = []

  constructor(cluster: ChaosCluster, t0: number) {
    this.#cluster = cluster
    this.#t0 = t0
  }

  #api(i: number): ApiClient | null {
    return this.#cluster.live(i) ? this.#cluster.node(i).api : null
  }

  /** The deployment's view on its current orchestrator (node 0, or node 1 once it took over). */
  async currentView(id: string): Promise<{ view: View; node: number } | undefined> {
    let best: { view: View; node: number } | undefined
    for (const i of [ORCHESTRATOR, STANDBY]) {
      const view = await this.#api(i)?.get<View>(`/v1/deployments/${id}`, { signal: AbortSignal.timeout(3_000) }).catch(() => undefined)
      if (!view || view.phase === 'handed-over') continue
      if (!best || (view.orchestratorEpoch ?? 1) > (best.view.orchestratorEpoch ?? 1)) best = { view, node: i }
    }
    return best
  }

  async create(op: DeployOp, replay: boolean): Promise<void> {
    const api = this.#api(ORCHESTRATOR)
    if (!api) return void (replay || this.unacked.add(op.key))
    try {
      const v = await api.post<View>('/v1/deployments', { workload: workloadOf(op), idempotencyKey: op.key }, { signal: AbortSignal.timeout(15_000) })
      const held = this.creates.get(op.key)
      if (held) held.replayedId = v.id
      else this.creates.set(op.key, { key: op.key, id: v.id, via: ORCHESTRATOR, at: Date.now(), stopAckedAt: null, replayedId: null })
      this.unacked.delete(op.key)
    } catch (err) {
      if (!replay) this.unacked.add(op.key)
      this.notes.push(`create ${op.key}${replay ? ' (retried)' : ''} not acknowledged: ${(err as Error).name}`)
    }
  }

  async stop(key: string): Promise<void> {
    const c = this.creates.get(key)
    if (!c) return void this.notes.push(`stop ${key} skipped: its create was not acknowledged`)
    const cur = await this.currentView(c.id)
    const api = cur ? this.#api(cur.node) : null
    if (!api) return void this.notes.push(`stop ${key} not sent: no live orchestrator holds it`)
    c.stopSentAt = Date.now()
    try {
      await api.post(`/v1/deployments/${c.id}/stop`, {}, { signal: AbortSignal.timeout(30_000) })
      c.stopAckedAt = Date.now()
    } catch (err) {
      this.notes.push(`stop ${key} not acknowledged: ${(err as Error).name}`)
    }
  }

  async kill(op: KillOp): Promise<void> {
    if (op.trigger) {
      const trigger = op.trigger
      const deadline = Date.now() + TRIGGER_WAIT_MS
      let hit = false
      while (Date.now() < deadline && !hit) {
        const id = this.creates.get(trigger.key)?.id
        const cur = id ? await this.currentView(id) : undefined
        hit = cur?.view.phase === trigger.phase
        if (!hit) await sleep(25)
      }
      if (!hit) this.notes.push(`kill n${op.node}: ${trigger.key} never entered ${trigger.phase} within ${TRIGGER_WAIT_MS} ms; killed then`)
    }
    if (!this.#cluster.live(op.node)) return void this.notes.push(`kill n${op.node} skipped: already down`)
    await this.#cluster.kill(op.node)
    if (op.restartAfterMs === null) {
      this.staysDown.add(op.node)
      return
    }
    const restart = sleep(op.restartAfterMs).then(() => this.#cluster.restart(op.node)).catch((err: Error) => void this.notes.push(`restart n${op.node} failed: ${err.message.split('\n')[0]}`))
    this.#restarts.push(restart)
    await restart
  }

  async network(op: Extract<Operation, { kind: 'cut' | 'partition' | 'delay' }>): Promise<void> {
    const dids = this.#cluster.dids
    const from = Date.now()
    let lift: () => void
    let nodes: string[]
    if (op.kind === 'cut') {
      this.#cluster.cut(op.node)
      lift = () => this.#cluster.restore(op.node)
      nodes = [dids[op.node]!]
    } else if (op.kind === 'partition') {
      lift = this.#cluster.lab.partition(op.sides[0], op.sides[1])
      nodes = [...dids]
    } else {
      const how = this.#cluster.lab.delay(op.node, op.ms)
      if (how !== 'netem') this.notes.push(`delay towards n${op.node} by a rate limit (${how}): netem is not in this kernel`)
      lift = () => this.#cluster.lab.undelay(op.node)
      nodes = [dids[op.node]!]
    }
    const window: FaultWindow = { kind: op.kind, nodes, from, to: Number.POSITIVE_INFINITY }
    this.windows.push(window)
    await sleep(op.forMs)
    lift()
    window.to = Date.now()
  }

  async play(op: Operation): Promise<void> {
    await sleep(Math.max(0, this.#t0 + op.at - Date.now()))
    if (op.kind === 'deploy') return this.create(op, false)
    if (op.kind === 'stop') return this.stop(op.key)
    if (op.kind === 'kill') return this.kill(op)
    return this.network(op)
  }

  /** Lifts every fault; restarts every killed node the schedule does not leave down. */
  async heal(): Promise<void> {
    this.#cluster.healNetwork()
    const healedAt = Date.now()
    for (const w of this.windows) if (w.to === Number.POSITIVE_INFINITY) w.to = healedAt
    await Promise.all(this.#restarts)
    for (let i = 0; i < this.#cluster.dids.length; i++) {
      if (!this.#cluster.live(i) && !this.staysDown.has(i)) await this.#cluster.restart(i)
    }
  }

  async observe(sampler: DoubleRunSampler, contracts: ContractSource): Promise<Observation> {
    const dids = this.#cluster.dids
    const nodes = await Promise.all(dids.map((did, i) => observeNode(i, { did, live: this.#cluster.live(i), api: this.#api(i) }, contracts)))
    return { at: Date.now(), containers: await runningContainers(dids), nodes, creates: [...this.creates.values()], doubleRuns: sampler.runs, faultWindows: this.windows }
  }
}

/** Runs one schedule on a fresh cluster and checks the invariants; always removes what it made. */
export async function runSchedule(schedule: Schedule, opts: RunOptions = {}): Promise<ScheduleResult> {
  const started = Date.now()
  const log = opts.log ?? (() => undefined)
  const bounds = opts.bounds ?? DEFAULT_BOUNDS
  const contracts = opts.contracts ?? apiContracts
  // the cluster comes up before any fault: a start that fails (a daemon not ready on a starved machine) is the
  // harness's, not the system's; it is tried once more, then reported as a harness error by the caller
  const cluster = await ChaosCluster.start(schedule.clockOffsetsMs).catch((err: Error) => {
    log(`seed ${schedule.seed}: cluster did not come up (${err.message.split('\n')[0]}); trying once more`)
    return ChaosCluster.start(schedule.clockOffsetsMs)
  })
  const sampler = new DoubleRunSampler(cluster.dids).start()
  try {
    log(`seed ${schedule.seed}: cluster up in ${Date.now() - started} ms (daemons ready ${cluster.startedMs} ms, connected ${cluster.connectedMs} ms)`)
    const run = new Run(cluster, Date.now())
    await Promise.all(schedule.ops.map((op) => run.play(op).catch((err: Error) => void run.notes.push(`${op.kind} at +${op.at} ms failed: ${err.message.split('\n')[0]}`))))
    await run.heal()
    const healedAt = Date.now()
    // a create is retried with its key (acknowledged ones must answer the same deployment)
    for (const op of schedule.ops) if (op.kind === 'deploy') await run.create(op, true)
    log(`seed ${schedule.seed}: healed; waiting for convergence`)
    const split = (vs: Violation[]): { violations: Violation[]; tolerated: Violation[] } => ({
      violations: vs.filter((v) => !(opts.allowKnownUntilLeases && v.awaitsLeases)),
      tolerated: vs.filter((v) => opts.allowKnownUntilLeases === true && v.awaitsLeases),
    })
    const deadline = healedAt + (opts.convergeTimeoutMs ?? 90_000)
    let convergeMs: number | null = null
    let last: Violation[] = []
    for (;;) {
      await sampler.sample()
      const observed = await run.observe(sampler, contracts).catch((err: Error) => err)
      last = observed instanceof Error
        ? [{ invariant: 'deployment-settled', detail: observed.message, awaitsLeases: false }]
        : checkInvariants(observed, bounds)
      if (split(last).violations.length === 0) {
        convergeMs = Date.now() - healedAt
        break
      }
      if (Date.now() > deadline) break
      await sleep(500)
    }
    const { violations, tolerated } = split(last)
    if (violations.length > 0 && opts.log) {
      // what each node said about the faults and the copies it ended: the first thing to read of a failed seed
      const telling = /fence|lost|gone|is back|superseded|lease|watchdog|took up|taken up|taking over|handed|orphan|stale/i
      for (let i = 0; i < cluster.dids.length; i++) {
        const lines = cluster.logsOf(i).split('\n').filter((l) => telling.test(l)).slice(-25)
        for (const l of lines) log(`  n${i} ${l.slice(0, 400)}`)
      }
    }
    return { seed: schedule.seed, faults: faultsOf(schedule), violations, tolerated, converged: convergeMs !== null, convergeMs, notes: run.notes, elapsedMs: Date.now() - started }
  } finally {
    sampler.stop()
    await cluster.destroy()
  }
}

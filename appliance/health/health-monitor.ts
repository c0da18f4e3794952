// Health checks run by the provider (spec/ingress.md "Health checks"): for every running instance of a
// contract this node provides, the workload's check runs every `intervalSeconds`. An instance is ready only
// once its check passed since it (re)started; `failureThreshold` failures in a row make it not ready (the
// ingress stops sending it connections) and, unless its restart policy is `never`, restart it (the instance is
// stopped and the allocation's policy starts it again). A workload without a check is ready while it runs.
// Every change of readiness is an event, kept (the last MAX_EVENTS) for the status and the log.
import type { AllocationManager, AllocationRecord } from '../allocation/allocation-manager.ts'
import type { Executor, ExecutorKind } from '../executor/executor.ts'
import type { HealthCheck, Workload } from '../../actors/workload/workload.ts'
import { errorFields, type Log } from '../../p2p/log.ts'
import { dockerExec, probe, type ProbeResult } from './probe.ts'

const CONTRACT_PREFIX = 'c-'
const MAX_EVENTS = 200
/** How often running allocations are looked for (new ones, restarted ones). */
const SCAN_MS = 500

export interface ReplicaHealth {
  contractId: string
  allocationId: string
  ready: boolean
  /** Why it is not ready, or what the last check said. */
  detail: string
  check: HealthCheck['type'] | 'none'
  consecutiveFailures: number
  lastCheckAt: number | null
  /** When readiness last changed. */
  since: number
  /** Restarts this monitor asked for. */
  restarts: number
}

export interface HealthEvent {
  at: number
  contractId: string
  ready: boolean
  detail: string
  /** `restart`: the monitor stopped the instance for its policy to start it again. */
  kind: 'ready' | 'not-ready' | 'restart'
}

export interface HealthMonitorInit {
  allocations: Pick<AllocationManager, 'list' | 'onStatus'>
  executors: Partial<Record<ExecutorKind, Executor>>
  /** The workload of a contract this node provides (undefined: not one of ours, or gone). */
  workloadOf(contractId: string): Promise<Workload | undefined>
  onEvent?(e: HealthEvent): void
  log: Log
}

interface Tracked {
  health: ReplicaHealth
  workload: Workload
  /** The instance handle the state belongs to: a new one (a restart) starts over. */
  ref: string | null
  passedSinceStart: boolean
  timer: NodeJS.Timeout | undefined
  running: boolean
  probing: boolean
  /** The instance being stopped for a restart: not checked again. */
  restartingRef: string | null
}

export class HealthMonitor {
  readonly #i: HealthMonitorInit
  readonly #tracked = new Map<string, Tracked>()
  readonly #loading = new Set<string>()
  readonly #events: HealthEvent[] = []
  #scan: NodeJS.Timeout | undefined
  #unsubscribe: (() => void) | undefined
  #stopped = false

  constructor(init: HealthMonitorInit) {
    this.#i = init
  }

  start(): void {
    this.#unsubscribe = this.#i.allocations.onStatus((r) => this.#observe(r))
    this.#scan = setInterval(() => {
      for (const r of this.#i.allocations.list()) this.#observe(r)
    }, SCAN_MS)
    this.#scan.unref()
  }

  stop(): void {
    this.#stopped = true
    clearInterval(this.#scan)
    this.#unsubscribe?.()
    for (const t of this.#tracked.values()) clearInterval(t.timer)
    this.#tracked.clear()
  }

  /** The readiness of a contract's replica on this node: not ready when unknown. */
  readiness(contractId: string): { ready: boolean; why?: string } {
    const t = this.#tracked.get(contractId)
    if (!t) return { ready: false, why: 'no running instance of it on this node' }
    return t.health.ready ? { ready: true } : { ready: false, why: t.health.detail }
  }

  list(): ReplicaHealth[] {
    return [...this.#tracked.values()].map((t) => ({ ...t.health }))
  }

  events(contractId?: string): HealthEvent[] {
    return this.#events.filter((e) => contractId === undefined || e.contractId === contractId)
  }

  #observe(r: AllocationRecord): void {
    if (this.#stopped || !r.id.startsWith(CONTRACT_PREFIX)) return
    const contractId = r.id.slice(CONTRACT_PREFIX.length)
    const t = this.#tracked.get(contractId)
    const running = r.state === 'running' && r.handle !== null
    if (!t) {
      if (!running || this.#loading.has(contractId)) return
      this.#loading.add(contractId)
      void this.#i.workloadOf(contractId).then((w) => {
        this.#loading.delete(contractId)
        if (!w || this.#stopped || this.#tracked.has(contractId)) return
        this.#track(contractId, r, w)
      }, (err: unknown) => {
        this.#loading.delete(contractId)
        this.#i.log.warn('health check not set up', { contractId, ...errorFields(err) })
      })
      return
    }
    if (finalState(r.state)) {
      clearInterval(t.timer)
      this.#tracked.delete(contractId)
      return
    }
    const ref = r.handle?.ref ?? null
    if (running !== t.running || ref !== t.ref) {
      // stopped, backing off, or a new instance: it must pass again
      t.running = running
      t.ref = ref
      t.passedSinceStart = false
      t.health.consecutiveFailures = 0
      this.#set(t, false, running ? 'restarted: waiting for its first passing check' : `instance ${r.state}`)
      if (running && !t.workload.service?.healthCheck) this.#set(t, true, 'running (no health check declared)')
    }
  }

  #track(contractId: string, r: AllocationRecord, w: Workload): void {
    const check = w.service?.healthCheck
    const now = Date.now()
    const t: Tracked = {
      health: { contractId, allocationId: r.id, ready: false, detail: 'waiting for its first passing check', check: check?.type ?? 'none', consecutiveFailures: 0, lastCheckAt: null, since: now, restarts: 0 },
      workload: w, ref: r.handle?.ref ?? null, passedSinceStart: false, timer: undefined, running: true, probing: false, restartingRef: null,
    }
    this.#tracked.set(contractId, t)
    if (!check) {
      this.#set(t, true, 'running (no health check declared)')
      return
    }
    const run = (): void => void this.#runCheck(t, check, r)
    t.timer = setInterval(run, Math.max(100, Math.round(check.intervalSeconds * 1000)))
    t.timer.unref()
    run()
  }

  async #runCheck(t: Tracked, check: HealthCheck, first: AllocationRecord): Promise<void> {
    if (!t.running || t.probing || this.#stopped || (t.ref !== null && t.restartingRef === t.ref)) return
    t.probing = true
    let result: ProbeResult
    const rec = this.#i.allocations.list().find((a) => a.id === first.id)
    try {
      if (!rec || rec.state !== 'running' || !rec.handle) return
      const ports = rec.spec.network === 'none' ? [] : rec.spec.network.ports
      const hostPort = ports.find((p) => p.containerPort === check.port && p.protocol === 'tcp')?.hostPort
      const ref = rec.handle.ref
      result = await probe(check, {
        ...(hostPort !== undefined ? { hostPort } : {}),
        ...(rec.kind === 'docker' ? { exec: (cmd: string[], ms: number) => dockerExec(ref, cmd, ms) } : {}),
      })
      if (rec.handle.ref !== t.ref || !t.running || t.restartingRef === t.ref) return // restarted meanwhile: this result is of the old instance
    } finally {
      t.probing = false
    }
    const h = t.health
    h.lastCheckAt = Date.now()
    if (result.ok) {
      h.consecutiveFailures = 0
      t.passedSinceStart = true
      if (!h.ready) this.#set(t, true, result.detail)
      else h.detail = result.detail
      return
    }
    h.consecutiveFailures++
    if (h.consecutiveFailures < check.failureThreshold) {
      if (!h.ready) h.detail = `check failing: ${result.detail}`
      return
    }
    if (h.ready) this.#set(t, false, `${h.consecutiveFailures} checks failed in a row: ${result.detail}`)
    else h.detail = `${h.consecutiveFailures} checks failed in a row: ${result.detail}`
    // A starting instance gets three times the threshold before it is restarted (it may be slow to come up).
    const policy = t.workload.service?.restart ?? 'always'
    const due = t.passedSinceStart || h.consecutiveFailures >= 3 * check.failureThreshold
    if (policy !== 'never' && due) await this.#restart(t, rec!)
  }

  async #restart(t: Tracked, rec: AllocationRecord): Promise<void> {
    const ex = this.#i.executors[rec.kind]
    if (!ex || !rec.handle) return
    t.health.restarts++
    t.restartingRef = rec.handle.ref
    this.#event(t, 'restart', `restarting after ${t.health.consecutiveFailures} failed checks`)
    try {
      await ex.stop(rec.handle, { graceMs: 1000 })
    } catch (err) {
      this.#i.log.warn('unhealthy instance not stopped', { contractId: t.health.contractId, ...errorFields(err) })
    }
  }

  #set(t: Tracked, ready: boolean, detail: string): void {
    const h = t.health
    const changed = h.ready !== ready
    h.ready = ready
    h.detail = detail
    if (!changed) return
    h.since = Date.now()
    this.#event(t, ready ? 'ready' : 'not-ready', detail)
  }

  #event(t: Tracked, kind: HealthEvent['kind'], detail: string): void {
    const e: HealthEvent = { at: Date.now(), contractId: t.health.contractId, ready: t.health.ready, detail, kind }
    this.#events.push(e)
    if (this.#events.length > MAX_EVENTS) this.#events.shift()
    this.#i.log.info(`replica ${kind}`, { contractId: e.contractId, detail })
    this.#i.onEvent?.(e)
  }
}

const finalState = (s: AllocationRecord['state']): boolean => s === 'stopped' || s === 'exited' || s === 'failed'

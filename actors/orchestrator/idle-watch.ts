// Scale to zero, the orchestrator's half (spec/ingress.md "Scale to zero"): the ingresses that route a
// deployment's traffic report it (open connections, the time of the last one) to the deployment's
// orchestrator; a service that may scale to zero (`service.scale.min: 0`) and has had no traffic at any
// ingress for `idleSeconds` since it last became running is told IDLE. Pure bookkeeping: the orchestrator
// ticks it and tells the deployment actors.
import type { DeploymentView } from '../deployment/model.ts'
import type { Workload } from '../workload/workload.ts'

/** One ingress's word on one deployment. */
export interface TrafficReport {
  /** Connections open through that ingress now. */
  active: number
  /** When the last one opened or closed there (ms; 0: none yet). */
  lastTrafficAt: number
}

/** A report older than this no longer counts its open connections (the ingress may be gone). */
export const REPORT_STALE_MS = 15_000

export class IdleWatch {
  /** deployment -> ingress DID -> its last report and when it came. */
  readonly #reports = new Map<string, Map<string, TrafficReport & { at: number }>>()
  /** deployment -> since when its open connections have needed fewer replicas than it runs. */
  readonly #below = new Map<string, number>()

  report(deploymentId: string, ingress: string, r: TrafficReport, now: number): void {
    let m = this.#reports.get(deploymentId)
    if (!m) {
      if (this.#reports.size >= 10_000) return // bounded: a flood of made-up ids is not kept
      m = new Map()
      this.#reports.set(deploymentId, m)
    }
    if (!m.has(ingress) && m.size >= 64) return
    m.set(ingress, { active: r.active, lastTrafficAt: Math.min(r.lastTrafficAt, now), at: now })
  }

  forget(deploymentId: string): void {
    this.#reports.delete(deploymentId)
    this.#below.delete(deploymentId)
  }

  #active(id: string, now: number): number {
    let active = 0
    for (const r of this.#reports.get(id)?.values() ?? []) if (now - r.at <= REPORT_STALE_MS) active += r.active
    return active
  }

  /**
   * The running services to scale out now: open connections at the ingresses that reported lately, over
   * `scale.targetConnections` per replica, give ceil(active / target) replicas, at most `scale.max`; only more
   * than they run (scaling in happens at zero: a wake starts `replicas` again).
   */
  scaleOuts(views: DeploymentView[], workloadOf: (id: string) => Workload | undefined, now: number): { id: string; to: number; active: number }[] {
    const out: { id: string; to: number; active: number }[] = []
    for (const v of views) {
      if (v.phase !== 'running') continue
      const scale = workloadOf(v.id)?.service?.scale
      if (!scale || scale.max <= v.desired) continue
      const active = this.#active(v.id, now)
      const to = Math.min(scale.max, Math.ceil(active / (scale.targetConnections ?? 10)))
      if (to > v.desired) out.push({ id: v.id, to, active })
    }
    return out
  }

  /**
   * The running services to scale in now: a service that runs more replicas than its baseline (`replicas`, at
   * least `scale.min` and 1) whose open connections have needed fewer, ceil(active / targetConnections), for a
   * whole `idleSeconds` goes down to that many (never below the baseline); the clock starts again after each
   * step, so a service steps down at most once per `idleSeconds` (hysteresis: a burst resets it).
   */
  scaleIns(views: DeploymentView[], workloadOf: (id: string) => Workload | undefined, now: number): { id: string; to: number; active: number }[] {
    const out: { id: string; to: number; active: number }[] = []
    for (const v of views) {
      const w = workloadOf(v.id)
      const scale = w?.service?.scale
      const baseline = Math.max(1, scale?.min ?? 1, w?.service?.replicas ?? 1)
      if (v.phase !== 'running' || !scale || v.desired <= baseline || v.replicas.some((r) => r.retiring === true)) {
        this.#below.delete(v.id)
        continue
      }
      const active = this.#active(v.id, now)
      const to = Math.max(baseline, Math.ceil(active / (scale.targetConnections ?? 10)))
      if (to >= v.desired) {
        this.#below.delete(v.id)
        continue
      }
      const since = this.#below.get(v.id)
      if (since === undefined) this.#below.set(v.id, now)
      else if (now - since >= scale.idleSeconds * 1000) {
        this.#below.set(v.id, now)
        out.push({ id: v.id, to, active })
      }
    }
    return out
  }

  /**
   * The deployments to scale to zero now, with how long each has been idle: services with `scale.min: 0`,
   * running, no open connection at any ingress that reported lately, and no traffic for `idleSeconds` since
   * the later of their last traffic and the moment they (last) became running.
   */
  due(views: DeploymentView[], workloadOf: (id: string) => Workload | undefined, now: number): { id: string; idleMs: number }[] {
    const out: { id: string; idleMs: number }[] = []
    for (const v of views) {
      if (v.phase !== 'running') continue
      const scale = workloadOf(v.id)?.service?.scale
      if (!scale || scale.min !== 0) continue
      const runningSince = v.history.findLast((h) => h.phase === 'running')?.at ?? v.createdAt
      let last = runningSince
      let active = 0
      for (const r of this.#reports.get(v.id)?.values() ?? []) {
        if (now - r.at <= REPORT_STALE_MS) active += r.active
        if (r.lastTrafficAt > last) last = r.lastTrafficAt
      }
      const idleMs = now - last
      if (active === 0 && idleMs >= scale.idleSeconds * 1000) out.push({ id: v.id, idleMs })
    }
    return out
  }
}

// How much a deploy holds at admission (spec/billing.md "Admission"): the most the workload can cost in the
// hold window at its price cap. µNLC, integers.
import { maxPriceOf, type Workload } from '../../actors/workload/workload.ts'

export interface HoldPolicy {
  /** µNLC per replica-hour assumed for a workload without `constraints.maxPrice`. */
  defaultHourlyPrice: bigint
  /** Seconds of running the hold covers for a service (default an hour); a job is held for its deadline, rounded up to hours, at most this. */
  holdSeconds: number
}

export const DEFAULT_HOLD_POLICY: HoldPolicy = { defaultHourlyPrice: 1_000_000n, holdSeconds: 3600 }

/** Replicas that may run at once: a service's replicas (its scale max when it scales), a job's parallelism. */
export function concurrentReplicas(w: Workload): number {
  if (w.kind === 'service') return Math.max(w.service?.replicas ?? 1, w.service?.scale?.max ?? 0)
  return w.job?.parallelism ?? 1
}

/** The seconds a workload's hold covers: the window, or a job's deadline rounded up to hours when that is shorter. */
export function holdSecondsFor(w: Workload, p: HoldPolicy): number {
  const window = Math.max(1, Math.floor(p.holdSeconds))
  return w.kind === 'job' && w.job?.deadlineSeconds ? Math.min(window, Math.ceil(w.job.deadlineSeconds / 3600) * 3600) : window
}

/** The hold: price cap × replicas × the window's share of an hour, rounded up to a whole µNLC. */
export function holdFor(w: Workload, p: HoldPolicy): bigint {
  const price = maxPriceOf(w.constraints) ?? p.defaultHourlyPrice
  const units = price * BigInt(concurrentReplicas(w)) * BigInt(holdSecondsFor(w, p))
  return (units + 3599n) / 3600n
}

// How much a deploy holds at admission (spec/billing.md "Admission"): the most the workload can cost in the
// hold window at its price cap. µNLC, integers.
import { maxPriceOf, type Workload } from '../../actors/workload/workload.ts'

export interface HoldPolicy {
  /** µNLC per replica-hour assumed for a workload without `constraints.maxPrice`. */
  defaultHourlyPrice: bigint
  /** Hours of running the hold covers for a service (default 1); a job is held for its deadline, rounded up to hours, at most this. */
  holdHours: number
}

export const DEFAULT_HOLD_POLICY: HoldPolicy = { defaultHourlyPrice: 1_000_000n, holdHours: 1 }

/** Replicas that may run at once: a service's replicas (its scale max when it scales), a job's parallelism. */
export function concurrentReplicas(w: Workload): number {
  if (w.kind === 'service') return Math.max(w.service?.replicas ?? 1, w.service?.scale?.max ?? 0)
  return w.job?.parallelism ?? 1
}

/** The hold: price cap × replicas × hours (a job: its deadline's hours when shorter than the window). */
export function holdFor(w: Workload, p: HoldPolicy): bigint {
  const price = maxPriceOf(w.constraints) ?? p.defaultHourlyPrice
  const hours = w.kind === 'job' && w.job?.deadlineSeconds ? Math.min(p.holdHours, Math.ceil(w.job.deadlineSeconds / 3600)) : p.holdHours
  return price * BigInt(concurrentReplicas(w)) * BigInt(Math.max(1, hours))
}

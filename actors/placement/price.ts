// The owner's price policy (config.json `price`): how a node quotes one replica of a workload, NLC per hour.
import type { Lane, ResourceRequest } from '../workload/workload.ts'

export interface PricePolicy {
  cpuPerHour: number
  memoryGiBPerHour: number
  gpuPerHour: number
  diskGiBPerHour: number
  /** Multiplier for the protected lane (standby capacity and faster failover cost more). */
  protectedMultiplier: number
  /** Floor per replica-hour. */
  minimumPerHour: number
}

export const defaultPricePolicy: PricePolicy = {
  cpuPerHour: 1,
  memoryGiBPerHour: 0.25,
  gpuPerHour: 20,
  diskGiBPerHour: 0.01,
  protectedMultiplier: 1.5,
  minimumPerHour: 0.01,
}

const GiB = 2 ** 30

export function quote(policy: PricePolicy, r: ResourceRequest, lane: Lane): number {
  const raw = r.cpu * policy.cpuPerHour + (r.memoryBytes / GiB) * policy.memoryGiBPerHour + r.gpu * policy.gpuPerHour + (r.diskBytes / GiB) * policy.diskGiBPerHour
  const v = Math.max(policy.minimumPerHour, raw) * (lane === 'protected' ? policy.protectedMultiplier : 1)
  return Math.round(v * 1e6) / 1e6
}

/** Reads a partial policy (from config) over the defaults, rejecting negatives. */
export function pricePolicyFrom(partial: Partial<PricePolicy> | undefined): PricePolicy {
  const p = { ...defaultPricePolicy, ...(partial ?? {}) }
  for (const [k, v] of Object.entries(p)) if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new RangeError(`price.${k} must be a non-negative number`)
  return p
}

// The owner's price policy (config.json `orchestration.price`): how a node quotes one replica of a workload, in
// whole µNLC per replica-hour (1 NLC = 1,000,000 µNLC, spec/ledger.md "Amounts"). Every rate is an integer and
// the quote is computed in bigint, rounded up: a node never quotes less than its policy says.
import { InvalidPricePolicyError } from '../errors.ts'
import type { Lane, ResourceRequest } from '../workload/workload.ts'

export interface PricePolicy {
  /** µNLC per whole CPU-hour. */
  cpuPerHour: number
  /** µNLC per GiB-hour of memory. */
  memoryGiBPerHour: number
  /** µNLC per GPU-hour. */
  gpuPerHour: number
  /** µNLC per GiB-hour of disk. */
  diskGiBPerHour: number
  /** The protected lane's price in basis points of the best-effort one (15000 = 1.5x): standby capacity and faster failover cost more. */
  protectedMultiplierBps: number
  /** Floor per replica-hour, µNLC. */
  minimumPerHour: number
}

/** The unit of each field, for errors and docs. */
export const pricePolicyUnits: Readonly<Record<keyof PricePolicy, string>> = {
  cpuPerHour: 'µNLC per CPU-hour',
  memoryGiBPerHour: 'µNLC per GiB-hour of memory',
  gpuPerHour: 'µNLC per GPU-hour',
  diskGiBPerHour: 'µNLC per GiB-hour of disk',
  protectedMultiplierBps: 'basis points (10000 = 1x)',
  minimumPerHour: 'µNLC per replica-hour',
}

export const PRICE_POLICY_FIELDS = Object.keys(pricePolicyUnits) as (keyof PricePolicy)[]

/** 1 NLC per CPU-hour, 0.25 per GiB-hour of memory, 20 per GPU-hour, 0.01 per GiB-hour of disk, 1.5x protected, 0.01 at least. */
export const defaultPricePolicy: PricePolicy = {
  cpuPerHour: 1_000_000,
  memoryGiBPerHour: 250_000,
  gpuPerHour: 20_000_000,
  diskGiBPerHour: 10_000,
  protectedMultiplierBps: 15_000,
  minimumPerHour: 10_000,
}

const GiB = 1n << 30n
const BPS = 10_000n

const ceilDiv = (a: bigint, b: bigint): bigint => (a + b - 1n) / b

/** Whole millicores of a cpu request, rounded up (0.0101 cores holds 11 millicores, as the allocator counts it). */
export function millicores(cpu: number): bigint {
  const m = Math.ceil(cpu * 1000 - 1e-9)
  return BigInt(Math.max(0, m))
}

/**
 * The quote for one replica, µNLC per hour: `max(minimum, cpu*cpuPerHour + memGiB*memoryGiBPerHour +
 * gpu*gpuPerHour + diskGiB*diskGiBPerHour)`, times `protectedMultiplierBps / 10000` on the protected lane.
 * cpu counts in millicores, memory and disk in bytes; each division is rounded up, once, at its end.
 */
export function quote(policy: PricePolicy, r: ResourceRequest, lane: Lane): bigint {
  // numerator over a common denominator 1000 * 2^30 (millicores and bytes), so only one rounding happens
  const den = 1000n * GiB
  const num =
    millicores(r.cpu) * BigInt(policy.cpuPerHour) * GiB +
    BigInt(r.memoryBytes) * BigInt(policy.memoryGiBPerHour) * 1000n +
    BigInt(r.gpu) * BigInt(policy.gpuPerHour) * den +
    BigInt(r.diskBytes) * BigInt(policy.diskGiBPerHour) * 1000n
  const raw = ceilDiv(num, den)
  const base = raw > BigInt(policy.minimumPerHour) ? raw : BigInt(policy.minimumPerHour)
  return lane === 'protected' ? ceilDiv(base * BigInt(policy.protectedMultiplierBps), BPS) : base
}

/**
 * Reads a partial policy (from config) over the defaults. Every field must be a whole non-negative number
 * (a safe integer) of its unit; a float, a negative, a string or the retired `protectedMultiplier` is
 * InvalidPricePolicyError naming the field and its unit.
 */
export function pricePolicyFrom(partial: unknown): PricePolicy {
  if (partial === undefined || partial === null) return { ...defaultPricePolicy }
  if (typeof partial !== 'object' || Array.isArray(partial)) throw new InvalidPricePolicyError("price must be an object of whole numbers", { field: 'price' })
  const x = partial as Record<string, unknown>
  if ('protectedMultiplier' in x) {
    throw new InvalidPricePolicyError('price.protectedMultiplier is retired: set price.protectedMultiplierBps in basis points (15000 = 1.5x)', { field: 'protectedMultiplier', unit: pricePolicyUnits.protectedMultiplierBps })
  }
  const p = { ...defaultPricePolicy }
  for (const k of PRICE_POLICY_FIELDS) {
    if (!(k in x)) continue
    const v = x[k]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new InvalidPricePolicyError(`price.${k} must be a whole number >= 0 of ${pricePolicyUnits[k]} (got ${typeof v === 'number' || typeof v === 'string' ? JSON.stringify(v) : typeof v})`, { field: k, unit: pricePolicyUnits[k] })
    }
    p[k] = v
  }
  return p
}

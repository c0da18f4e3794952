// The trust policy (spec/trust.md "Policy"): how often a node's results are checked, what a wrong, dropped or
// valid result does to its record, when it is quarantined and how it comes back. One object, shared by the
// daemons (appliance/node-services/trust-service.ts) and the simulation (trust/sim), so the figures the
// simulation reports are the figures of the code that runs.
import { InvalidTrustConfigError } from './errors.ts'

export interface TrustPolicy {
  /** Replication probability of a node with no streak (a fresh identity): every run checked. */
  replicateFresh: number
  /** The replication probability never falls below this (BOINC's adaptive replication keeps spot checks). */
  replicateFloor: number
  /** Each `halvingStreak` consecutive valid results halve the replication probability. */
  halvingStreak: number
  /** The share of a node's paid runs followed by a known-answer validation task on the same node. */
  validationRate: number
  /** Strikes a wrong result earns. */
  strikeInvalid: number
  /** Strikes a dropped result (accepted, never returned) earns. */
  strikeMissed: number
  /** At this many strikes a node is quarantined. */
  quarantineStrikes: number
  /** Each this many consecutive valid results forgive `forgiveStrikes` strikes. */
  forgiveEvery: number
  forgiveStrikes: number
  /** Each this many runs returned (a result came back, checked or not) forgive one dropped run's strikes. */
  forgiveDroppedEvery: number
  /** Consecutive validation tasks a quarantined node must pass to be readmitted. */
  readmitAfter: number
  /** Total runs of one job when results disagree (the first, its replica, the third that decides). */
  maxRuns: number
}

export const defaultTrustPolicy: TrustPolicy = Object.freeze({
  replicateFresh: 1,
  replicateFloor: 0.04,
  halvingStreak: 2,
  validationRate: 0.02,
  strikeInvalid: 1,
  strikeMissed: 0.5,
  quarantineStrikes: 2,
  forgiveEvery: 10,
  forgiveStrikes: 0.5,
  forgiveDroppedEvery: 50,
  readmitAfter: 3,
  maxRuns: 3,
})

/** The probability that a run of a node with this streak is replicated (falls as the record grows). */
export function replicationProbability(p: TrustPolicy, streak: number): number {
  return Math.max(p.replicateFloor, Math.min(1, p.replicateFresh * 2 ** (-Math.max(0, streak) / p.halvingStreak)))
}

const share = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= 1
const positive = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0

/** A policy from config.json `trust.policy` (fields omitted keep their default); InvalidTrustConfigError lists every bad field. */
export function trustPolicyFrom(raw: unknown): TrustPolicy {
  if (raw === undefined || raw === null) return { ...defaultTrustPolicy }
  if (typeof raw !== 'object' || Array.isArray(raw)) throw new InvalidTrustConfigError('trust.policy must be an object')
  const r = raw as Record<string, unknown>
  const out: TrustPolicy = { ...defaultTrustPolicy }
  const problems: string[] = []
  for (const [k, v] of Object.entries(r)) {
    if (!(k in defaultTrustPolicy)) {
      problems.push(`trust.policy.${k}: unknown field`)
      continue
    }
    const key = k as keyof TrustPolicy
    const isShare = key === 'replicateFresh' || key === 'replicateFloor' || key === 'validationRate'
    const isInt = key === 'readmitAfter' || key === 'maxRuns' || key === 'forgiveEvery' || key === 'forgiveDroppedEvery'
    if (isShare ? !share(v) : !positive(v) || (isInt && !Number.isInteger(v))) {
      problems.push(`trust.policy.${k}: must be ${isShare ? 'a number from 0 to 1' : isInt ? 'a positive integer' : 'a positive number'}`)
      continue
    }
    out[key] = v as number
  }
  if (out.maxRuns < 2) problems.push('trust.policy.maxRuns: at least 2 (a run and its replica)')
  if (problems.length > 0) throw new InvalidTrustConfigError(problems.join('; '), { problems })
  return out
}

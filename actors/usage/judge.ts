// How a consumer judges a usage record against what it observed itself (spec/ledger.md "Metering"): the
// replica's running interval as its orchestrator saw it (the running report or the start answer, and the
// end report or the stop), within a stated tolerance. A pure function: the desk (desk.ts) supplies the facts.
import type { UsageAnswer, UsageBody } from './record.ts'
import { usageAmount } from './record.ts'

/** What the consumer observed of one contract's replica, on its own clock (ms since the epoch). */
export interface Observation {
  /** When it first knew the replica running; null: never seen running. */
  start: number | null
  /** When it knew the replica ended; null: still running (judged up to `now`). */
  end: number | null
}

/**
 * The tolerance (spec/ledger.md): a record's replicaMs is accepted in full when it is at most the observed
 * overlap plus `ms` plus `ratio` of that overlap (reports travel, clocks differ a little).
 */
export interface Tolerance {
  ms: number
  ratio: number
}
export const DEFAULT_TOLERANCE: Tolerance = { ms: 2000, ratio: 0.05 }

/** The milliseconds of [from, to) during which the consumer saw the replica running. */
export function observedMs(o: Observation, from: number, to: number, now: number): number {
  if (o.start === null) return 0
  const a = Math.max(from, o.start)
  const b = Math.min(to, o.end ?? now)
  return Math.max(0, b - a)
}

export interface Judgement extends Omit<UsageAnswer, 'at'> {}

/**
 * Accepts the record in full, or disputes it with the reason and what the consumer accepts: the observed
 * replica time at the contract's price (never more than the record claims, nor more than `cap` µNLC when
 * the prepaid hold is smaller).
 */
export function judgeUsage(o: { body: UsageBody; price: bigint; observation: Observation; now: number; tolerance?: Tolerance; cap?: bigint }): Judgement {
  const b = o.body
  const tol = o.tolerance ?? DEFAULT_TOLERANCE
  const claimed = BigInt(b.amount)
  const reasons: string[] = []
  let ms = b.replicaMs
  if (ms > b.to - b.from) {
    reasons.push(`replicaMs ${b.replicaMs} is longer than the interval (${b.to - b.from} ms)`)
    ms = b.to - b.from
  }
  const seen = observedMs(o.observation, b.from, b.to, o.now)
  // the tolerance widens observed time, never creates it: an interval in which the replica was not seen running
  // is paid nothing however short (else a provider could sell many 2 s records of intervals before the start)
  const allowed = seen === 0 ? 0 : seen + tol.ms + Math.ceil(seen * tol.ratio)
  if (ms > allowed) {
    reasons.push(`replicaMs ${b.replicaMs} exceeds the ${seen} ms observed running (tolerance ${tol.ms} ms + ${tol.ratio * 100}%)`)
    ms = seen
  }
  if (BigInt(b.pricePerHour) !== o.price) reasons.push(`pricePerHour ${b.pricePerHour} is not the contract's ${o.price}`)
  let accepted = usageAmount(o.price, ms)
  if (reasons.length === 0 && accepted !== claimed) reasons.push(`amount ${b.amount} is not ceil(${o.price} x ${ms} / 3600000) = ${accepted}`)
  if (accepted > claimed) accepted = claimed
  if (o.cap !== undefined && accepted > o.cap) {
    reasons.push(`the amount exceeds the ${o.cap} µNLC held for this record`)
    accepted = o.cap
  }
  if (reasons.length === 0) return { verdict: 'accepted', acceptedAmount: b.amount, acceptedReplicaMs: b.replicaMs }
  return { verdict: 'disputed', acceptedAmount: String(accepted), acceptedReplicaMs: ms, reason: reasons.join('; ') }
}

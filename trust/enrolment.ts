// Enrolment (spec/trust.md "Enrolment"): a validator measures a new node against what it claims. The node's
// bid claims free capacity; the validator asks it to take a job sized to that claim and run the enrolment
// benchmark in it: one CPU worker alone for `seconds`, then one worker per claimed core at once, each counting
// rounds of a fixed loop. A node that bids for its claim and then cannot reserve it, or whose cores do not
// scale (N workers doing the work of far fewer), claims more than it has: it is flagged. The benchmark is
// measured against the node itself (alone vs together), so it needs no reference hardware.
import type { Capacity } from '../actors/placement/offer.ts'

/** Workers at once never exceed this (a node claiming more is measured on this many). */
export const ENROL_MAX_WORKERS = 16
/** Below this share of linear scaling, the claimed cores are not there. */
export const ENROL_MIN_EFFICIENCY = 0.5

export interface EnrolmentMeasure {
  /** Rounds one worker alone did. */
  single: number
  /** Rounds all workers together did (in the same time). */
  total: number
  workers: number
  /** total / (workers × single): 1 for cores that are all there. */
  efficiency: number
}

export interface Enrolment {
  at: number
  claimed: { cpu: number; memoryBytes: number }
  measured: EnrolmentMeasure | null
  verdict: 'passed' | 'inflated'
  reason: string
}

/**
 * The benchmark as a busybox shell script: each worker counts rounds of a 1,000-step loop until `seconds`
 * have passed on /proc/uptime (read without a fork); first one worker, then `workers` at once. Prints
 * `enrolment single=S total=T workers=W`.
 */
export function enrolmentScript(workers: number, seconds: number): string {
  const cs = Math.round(seconds * 100)
  return [
    'work() { read u _ < /proc/uptime; s=${u%.*}${u#*.}; e=$((s+' + cs + ')); n=0; while :; do i=0; while [ $i -lt 1000 ]; do i=$((i+1)); done; n=$((n+1)); read u _ < /proc/uptime; [ ${u%.*}${u#*.} -ge $e ] && break; done; echo $n; }',
    'single=$(work)',
    `k=0; while [ $k -lt ${workers} ]; do work > /tmp/enrol.$k & k=$((k+1)); done; wait`,
    'total=0; for f in /tmp/enrol.*; do read n < $f; total=$((total+n)); done',
    `echo "enrolment single=$single total=$total workers=${workers}"`,
  ].join('\n')
}

/** The workers for a claim: one per whole claimed core, at least one, at most ENROL_MAX_WORKERS. */
export function enrolmentWorkers(claimed: Pick<Capacity, 'cpu'>): number {
  return Math.max(1, Math.min(ENROL_MAX_WORKERS, Math.floor(claimed.cpu)))
}

/** The measure in the benchmark's output; undefined when there is none (the node did not run it). */
export function parseEnrolment(stdout: string[], workers: number): EnrolmentMeasure | undefined {
  for (const line of stdout) {
    const m = /^enrolment single=(\d+) total=(\d+) workers=(\d+)$/.exec(line.trim())
    if (!m || Number(m[3]) !== workers) continue
    const single = Number(m[1])
    const total = Number(m[2])
    if (single <= 0) return undefined
    return { single, total, workers, efficiency: Math.round((total / (workers * single)) * 1000) / 1000 }
  }
  return undefined
}

/** The verdict on a measured claim: inflated when the claimed cores (more than one) scale below ENROL_MIN_EFFICIENCY. */
export function judgeEnrolment(claimed: Enrolment['claimed'], measured: EnrolmentMeasure, at: number): Enrolment {
  if (measured.workers > 1 && measured.efficiency < ENROL_MIN_EFFICIENCY) {
    return { at, claimed, measured, verdict: 'inflated', reason: `claims ${claimed.cpu} cpu; ${measured.workers} workers did ${measured.efficiency} of ${measured.workers} times one worker's work` }
  }
  return { at, claimed, measured, verdict: 'passed', reason: `${measured.workers} worker(s) at ${measured.efficiency} of linear scaling` }
}

/** The verdict on a node that bid for its claim and then refused the contract for lack of capacity. */
export function refusedClaim(claimed: Enrolment['claimed'], reason: string, at: number): Enrolment {
  return { at, claimed, measured: null, verdict: 'inflated', reason: `bid for ${claimed.cpu} cpu and ${claimed.memoryBytes} bytes of memory, then could not reserve them: ${reason}` }
}

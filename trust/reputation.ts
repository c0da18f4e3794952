// The reputation formula (spec/trust.md "Reputation"): pure functions of a node's verified history.
//   trust = uptime x wilsonLower(streak, streak + strikes)
// where `streak` is the node's consecutive valid results (results a replica or a known answer confirmed),
// `strikes` its current strikes (a wrong result 1, a dropped one 0.5, forgiven slowly by valid results), and
// `uptime` the share of the last hour's minutes in which its signed heartbeat was heard. A node with no
// verified result has trust 0: a fresh identity starts at the bottom and needs evidence to climb, so throwing
// a key away and making a new one never helps. One wrong result sets the streak to 0, and with it the trust.

/** z of the one-sided 95% lower bound. */
export const WILSON_Z = 1.6449

/**
 * The Wilson score interval's lower bound for `successes` out of `n` trials (0 when n = 0): the proportion
 * the evidence supports with 95% confidence, small for little evidence whatever the ratio.
 */
export function wilsonLower(successes: number, n: number, z = WILSON_Z): number {
  if (!(n > 0)) return 0
  const p = Math.min(1, Math.max(0, successes / n))
  const z2 = z * z
  const centre = p + z2 / (2 * n)
  const margin = z * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n))
  return Math.max(0, (centre - margin) / (1 + z2 / n))
}

/** Minutes of heartbeat history uptime is judged on. */
export const UPTIME_WINDOW_MINUTES = 60

/**
 * The share of the minutes since the node was first heard (at most the window) in which a heartbeat was
 * heard. `minutes` are the distinct minute numbers (ms / 60000, floored) with at least one beat.
 */
export function uptimeShare(minutes: readonly number[], firstSeenMinute: number, nowMinute: number): number {
  const from = Math.max(firstSeenMinute, nowMinute - UPTIME_WINDOW_MINUTES + 1)
  const span = nowMinute - from + 1
  if (span <= 0) return 0
  let up = 0
  for (const m of minutes) if (m >= from && m <= nowMinute) up++
  return Math.min(1, up / span)
}

export interface ReputationInput {
  streak: number
  strikes: number
  /** 0..1; 1 when heartbeats are not judged (a simulation without clocks). */
  uptime: number
}

/** The node's trust, 0..1, rounded to 4 digits (what placement and `noir trust` show). */
export function reputation(r: ReputationInput): number {
  const t = Math.min(1, Math.max(0, r.uptime)) * wilsonLower(r.streak, r.streak + Math.max(0, r.strikes))
  return Math.round(t * 10_000) / 10_000
}

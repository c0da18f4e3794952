// What a node's watchdog decides, apart from how it learns the facts (spec/appliance.md "Watchdog"): the
// daemon renews a lease every RENEW_MS; when it stops (killed, hung, stopped) every contract replica whose
// grace has passed since the last renewal is stopped, because its consumer has failed it over by then.
// Pure functions, tested on a simulated clock (appliance/test/watchdog.test.ts).

/** How often the daemon renews its lease. */
export const RENEW_MS = 250
/**
 * How long a replica outlives its daemon's last renewal, by lane: about when the consumer's failure
 * detector convicts the node (protected: phi 3 on 250 ms beats; best-effort: phi 6), so the replacement
 * and the stale copy overlap as little as possible, and a daemon restarted within it keeps its work.
 */
export const GRACE_MS = { protected: 1_000, 'best-effort': 3_000 } as const
/** The Docker label a contract replica carries its grace in; containers without it (the owner's own) are left alone. */
export const LABEL_GRACE = 'noir.grace-ms'

export interface Lease {
  /** The daemon's pid. */
  pid: number
  /** When it last renewed (ms since the epoch). */
  at: number
}

export interface Replica {
  id: string
  graceMs: number
}

export interface WatchState {
  /** The lease as last read (undefined: none written yet, or the file is gone). */
  lease: Lease | undefined
  /** Whether the daemon's process still exists. */
  daemonAlive: boolean
  /** The pid this watchdog watches over. */
  watchedPid: number
}

export type Verdict =
  | { action: 'wait' }
  | { action: 'exit'; why: string }
  | { action: 'stop'; replicas: string[]; silentMs: number }

/** What to do now about `replicas` (the contract replicas still running for this node). */
export function decide(now: number, s: WatchState, replicas: readonly Replica[]): Verdict {
  // A new daemon took the home over: it has a watchdog of its own.
  if (s.lease && s.lease.pid !== s.watchedPid) return { action: 'exit', why: `daemon ${s.lease.pid} took over` }
  const last = s.lease?.at ?? 0
  const silentMs = now - last
  const renewing = s.daemonAlive && silentMs < Math.min(...replicas.map((r) => r.graceMs), GRACE_MS.protected)
  if (renewing) return { action: 'wait' }
  const due = replicas.filter((r) => silentMs >= r.graceMs).map((r) => r.id)
  if (due.length > 0) return { action: 'stop', replicas: due, silentMs }
  if (!s.daemonAlive && replicas.length === 0) return { action: 'exit', why: 'the daemon is gone and no replica of it runs' }
  return { action: 'wait' }
}

export function parseLease(text: string): Lease | undefined {
  try {
    const v = JSON.parse(text) as Partial<Lease>
    return Number.isSafeInteger(v.pid) && Number.isSafeInteger(v.at) ? { pid: v.pid!, at: v.at! } : undefined
  } catch {
    return undefined
  }
}

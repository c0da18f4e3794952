// How long this node's own event loop could not run: a node whose loop was stalled (a flood to refuse, a
// long GC, a blocked turn) did not read the heartbeats that reached it meanwhile, so a peer's silence over
// that time says nothing about the peer. The failure detector subtracts the stalls it saw since a peer's
// last heartbeat from that peer's silence (spec/orchestration.md, "Failure detection"): a dead peer is still
// convicted (its silence keeps growing), a live one is not convicted for our own pause.
//
// Two measures, the larger counts: the lateness of the caller's own periodic check (a timer that fired late)
// and the largest event-loop delay node:perf_hooks saw since the last check (a stall between two checks).
import { monitorEventLoopDelay } from 'node:perf_hooks'

type IntervalHistogram = ReturnType<typeof monitorEventLoopDelay>

export interface LoopStallsOptions {
  /** How often the caller samples (its check interval), ms: lateness beyond it is a stall. */
  intervalMs: number
  /** Lateness and delay up to this are ordinary jitter, not a stall. Default 20 ms. */
  toleranceMs?: number
  /** Stalls older than this are forgotten. Default 60 s. */
  keepMs?: number
  now?: () => number
  /** Measure event-loop delay with node:perf_hooks (default true; tests of the arithmetic turn it off). */
  histogram?: boolean
}

export class LoopStalls {
  readonly #interval: number
  readonly #tolerance: number
  readonly #keep: number
  readonly #now: () => number
  readonly #hist: IntervalHistogram | undefined
  /** Stalls seen, oldest first: when each ended and how long it was. */
  #stalls: { at: number; ms: number }[] = []
  #last: number | undefined
  #total = 0
  #longest = 0

  constructor(opts: LoopStallsOptions) {
    this.#interval = opts.intervalMs
    this.#tolerance = opts.toleranceMs ?? 20
    this.#keep = opts.keepMs ?? 60_000
    this.#now = opts.now ?? Date.now
    if (opts.histogram !== false) {
      this.#hist = monitorEventLoopDelay({ resolution: 10 })
      this.#hist.enable()
    }
  }

  /** Called at each periodic check: records (and returns) the stall since the previous call, in ms. */
  sample(now = this.#now()): number {
    const last = this.#last
    this.#last = now
    let stall = 0
    if (last !== undefined) stall = Math.max(0, now - last - this.#interval)
    if (this.#hist !== undefined) {
      // max is in ns; the histogram's own resolution is part of every sample
      const delayMs = this.#hist.max / 1e6 - 10
      this.#hist.reset()
      if (Number.isFinite(delayMs)) stall = Math.max(stall, delayMs)
    }
    if (stall <= this.#tolerance) return 0
    this.#stalls.push({ at: now, ms: stall })
    this.#total += stall
    if (stall > this.#longest) this.#longest = stall
    while (this.#stalls.length > 0 && this.#stalls[0]!.at < now - this.#keep) this.#stalls.shift()
    return stall
  }

  /** Milliseconds this loop was stalled in stalls that ended after `t` (a peer's last heartbeat). */
  since(t: number): number {
    let ms = 0
    for (let i = this.#stalls.length - 1; i >= 0; i--) {
      const s = this.#stalls[i]!
      if (s.at <= t) break
      ms += s.ms
    }
    return ms
  }

  /** Stalls recorded since start: how many, their total and the longest, ms. */
  get stats(): { count: number; totalMs: number; longestMs: number } {
    return { count: this.#stalls.length, totalMs: Math.round(this.#total), longestMs: Math.round(this.#longest) }
  }

  stop(): void {
    this.#hist?.disable()
  }
}

// Time as a dependency: the kernel asks a Clock for "now" and for timers, so tests can drive time-outs
// with a SimulatedClock instead of waiting. The real clock is the default.

/** An opaque timer handle returned by `Clock.setTimeout`. */
export type TimerHandle = { readonly __timer: true } | object

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number
  setTimeout(fn: () => void, ms: number): TimerHandle
  clearTimeout(handle: TimerHandle): void
}

/** Wall-clock time and Node's timers. Timers are unref'd: a pending ask alone does not keep a process alive. */
export const realClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms)
    t.unref?.()
    return t
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
}

interface SimTimer {
  at: number
  seq: number
  fn: () => void
  cancelled: boolean
}

/** A clock that moves only when told to. Timers fire in due order (then creation order) during `advance`. */
export class SimulatedClock implements Clock {
  #now: number
  #seq = 0
  #timers: SimTimer[] = []

  constructor(startMs = 1_700_000_000_000) {
    this.#now = startMs
  }

  now(): number {
    return this.#now
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: SimTimer = { at: this.#now + Math.max(0, ms), seq: this.#seq++, fn, cancelled: false }
    this.#timers.push(timer)
    return timer
  }

  clearTimeout(handle: TimerHandle): void {
    ;(handle as SimTimer).cancelled = true
  }

  /** Number of timers still due to fire. */
  get pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length
  }

  /** Moves time forward by `ms`, firing every timer that falls due (timers set while firing included). */
  advance(ms: number): void {
    const target = this.#now + ms
    for (;;) {
      let next: SimTimer | undefined
      for (const t of this.#timers) {
        if (t.cancelled || t.at > target) continue
        if (!next || t.at < next.at || (t.at === next.at && t.seq < next.seq)) next = t
      }
      if (!next) break
      this.#timers = this.#timers.filter((t) => t !== next && !t.cancelled)
      this.#now = Math.max(this.#now, next.at)
      next.fn()
    }
    this.#now = target
  }
}

// The phi-accrual failure detector (Hayashibara et al., 2004; as in Akka and Cassandra). Instead of a yes/no
// time-out it gives a suspicion level phi = -log10(P(a heartbeat arrives later than now)), from the
// distribution of the inter-arrival times seen so far. phi 1 ~ 10% chance of a false alarm, 3 ~ 0.1%, 8 ~ 1e-8.
// The protected lane uses a low threshold (fast detection); best-effort a higher one.

export interface PhiAccrualOptions {
  /** Inter-arrival samples kept (a sliding window). */
  windowSize?: number
  /** Floor on the standard deviation, ms: keeps phi sane when heartbeats are very regular. */
  minStdDevMs?: number
  /** Extra pause tolerated on top of the mean (GC, a busy event loop), ms. */
  acceptablePauseMs?: number
  /** Assumed interval before the second heartbeat arrives, ms. */
  firstIntervalMs?: number
}

export class PhiAccrualDetector {
  readonly #window: number[] = []
  readonly #size: number
  readonly #minStd: number
  readonly #pause: number
  #sum = 0
  #sumSq = 0
  #last: number | undefined

  constructor(opts: PhiAccrualOptions = {}) {
    this.#size = opts.windowSize ?? 100
    this.#minStd = opts.minStdDevMs ?? 50
    this.#pause = opts.acceptablePauseMs ?? 0
    const first = opts.firstIntervalMs ?? 1000
    // Seed with two samples around the first interval (mean = first, std = first/4), as Akka does.
    this.#push(first - first / 4)
    this.#push(first + first / 4)
  }

  /** Records a heartbeat arrival at `now` (ms). */
  heartbeat(now: number): void {
    if (this.#last !== undefined) {
      const dt = now - this.#last
      if (dt >= 0) this.#push(dt)
    }
    this.#last = now
  }

  get lastHeartbeat(): number | undefined {
    return this.#last
  }

  /** Suspicion level at `now`; 0 before the first heartbeat. */
  phi(now: number): number {
    if (this.#last === undefined) return 0
    const n = this.#window.length
    const mean = this.#sum / n
    const variance = Math.max(0, this.#sumSq / n - mean * mean)
    const std = Math.max(Math.sqrt(variance), this.#minStd)
    return phiOf(now - this.#last, mean + this.#pause, std)
  }

  isAvailable(now: number, threshold: number): boolean {
    return this.phi(now) < threshold
  }

  #push(dt: number): void {
    this.#window.push(dt)
    this.#sum += dt
    this.#sumSq += dt * dt
    if (this.#window.length > this.#size) {
      const old = this.#window.shift()!
      this.#sum -= old
      this.#sumSq -= old * old
    }
  }
}

/** phi for a delay given the mean and standard deviation, using the logistic approximation of the normal CDF. */
export function phiOf(elapsed: number, mean: number, std: number): number {
  const y = (elapsed - mean) / std
  const e = Math.exp(-y * (1.5976 + 0.070566 * y * y))
  const p = elapsed > mean ? e / (1 + e) : 1 - 1 / (1 + e)
  return -Math.log10(Math.max(p, Number.MIN_VALUE))
}

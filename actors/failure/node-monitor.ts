// Watches many nodes' heartbeats with one phi-accrual detector each and reports a node lost once its phi
// crosses the threshold (and alive again if it comes back). The caller feeds verified heartbeats and ticks
// it; the clock is injected, so tests need no real time.
import { PhiAccrualDetector, type PhiAccrualOptions } from './phi-accrual.ts'

export interface NodeMonitorOptions extends PhiAccrualOptions {
  /** phi at which a node counts as lost. */
  threshold: number
  now?: () => number
}

export type NodeEvent = { type: 'lost'; nodeDid: string; phi: number; silentMs: number } | { type: 'alive'; nodeDid: string }

export class NodeMonitor {
  readonly #opts: NodeMonitorOptions
  readonly #detectors = new Map<string, PhiAccrualDetector>()
  readonly #lost = new Set<string>()
  readonly #now: () => number

  constructor(opts: NodeMonitorOptions) {
    this.#opts = opts
    this.#now = opts.now ?? Date.now
  }

  /** Records a (verified) heartbeat; returns an `alive` event when a lost node comes back. */
  heartbeat(nodeDid: string, at = this.#now()): NodeEvent | undefined {
    let d = this.#detectors.get(nodeDid)
    if (!d) {
      d = new PhiAccrualDetector(this.#opts)
      this.#detectors.set(nodeDid, d)
    }
    d.heartbeat(at)
    if (this.#lost.delete(nodeDid)) return { type: 'alive', nodeDid }
    return undefined
  }

  /** Nodes newly found lost since the last check. */
  check(at = this.#now()): NodeEvent[] {
    const out: NodeEvent[] = []
    for (const [did, d] of this.#detectors) {
      if (this.#lost.has(did)) continue
      const phi = d.phi(at)
      if (phi >= this.#opts.threshold) {
        this.#lost.add(did)
        out.push({ type: 'lost', nodeDid: did, phi, silentMs: at - (d.lastHeartbeat ?? at) })
      }
    }
    return out
  }

  phi(nodeDid: string, at = this.#now()): number | undefined {
    return this.#detectors.get(nodeDid)?.phi(at)
  }

  isLost(nodeDid: string): boolean {
    return this.#lost.has(nodeDid)
  }

  known(): string[] {
    return [...this.#detectors.keys()]
  }

  forget(nodeDid: string): void {
    this.#detectors.delete(nodeDid)
    this.#lost.delete(nodeDid)
  }
}

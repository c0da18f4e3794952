// Bounds the work a bid request can make this node do (spec/pubsub.md "Admission"): at most one answer in
// flight per orchestrator and at most MAX_IN_FLIGHT in all; a request that finds either full is dropped,
// counted, and logged as a count per interval. An orchestrator that does not exist (a fresh key of an
// attacker) costs one slot for at most the answer's time-out, never a queue that grows.
import { RejectionTally } from '../../p2p/admission.ts'
import type { Log } from '../../p2p/log.ts'

export const MAX_IN_FLIGHT = 32
/** Answers to orchestrators this node has no connection to (each needs a dial, maybe a DHT look-up). */
export const MAX_IN_FLIGHT_UNCONNECTED = 4

export class BidAnswerLimiter {
  readonly #inFlight = new Set<string>()
  readonly #unconnected = new Set<string>()
  readonly #max: number
  readonly dropped: RejectionTally
  answered = 0

  constructor(log: Log, max = MAX_IN_FLIGHT) {
    this.#max = max
    this.dropped = new RejectionTally(log, 'bid requests not answered (counts by reason)')
  }

  get inFlight(): number {
    return this.#inFlight.size
  }

  /**
   * Runs `answer` for `orchestrator` unless one is in flight for it or the node is at its bound. Answers
   * that need a dial to a peer this node has no connection to share a smaller bound of their own.
   */
  run(orchestrator: string, connected: boolean, answer: () => Promise<unknown>): void {
    const now = Date.now()
    if (this.#inFlight.has(orchestrator)) return this.dropped.add('one-in-flight-per-orchestrator', now)
    if (this.#inFlight.size >= this.#max) return this.dropped.add('answers-at-bound', now)
    if (!connected && this.#unconnected.size >= MAX_IN_FLIGHT_UNCONNECTED) return this.dropped.add('dials-at-bound', now)
    this.#inFlight.add(orchestrator)
    if (!connected) this.#unconnected.add(orchestrator)
    answer().then(
      () => this.answered++,
      (err: Error) => this.dropped.add(`failed:${err.name}`, Date.now()),
    ).finally(() => {
      this.#inFlight.delete(orchestrator)
      this.#unconnected.delete(orchestrator)
    })
  }
}

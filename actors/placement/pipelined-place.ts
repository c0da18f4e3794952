// Placements kept in flight while their picks' signatures are verified elsewhere (spec/orchestration.md, "Bids
// verified on the signature thread"). `placeVerified`'s rule, asynchronous: `submit` places at once and hands
// every pick's verification to `verify` (identity/signature-worker.ts verifyDetached for a signed bid, on the
// second core), then returns, so the caller chooses and scores the next placement meanwhile. A placement is
// handed to `onPlaced` only once every pick (and the standby) answered: all passed, or the placement is made
// again without the nodes whose bid failed (place.ts skips an excluded offer before scoring anything) and the
// new picks verified in turn. No pick reaches `onPlaced` unverified; a verifier that answers at once (no thread)
// makes this placeVerified with all the picks of a round verified together.
import type { NodeOffer } from './offer.ts'
import { place, type PlacementRequest } from './place.ts'
import type { VerifiedPlacement } from './verified-place.ts'

/** Starts verifying the binding statement behind `offer`; `done` runs exactly once: undefined when it holds, else why not. */
export type AsyncOfferVerifier = (offer: NodeOffer, done: (error: Error | undefined) => void) => void

export interface PlacementPipelineOptions<T> {
  verify: AsyncOfferVerifier
  /** One call per submitted placement, when its picks are verified (or it is infeasible), with the caller's tag. */
  onPlaced: (tag: T, placement: VerifiedPlacement) => void
}

interface InFlight<T> {
  req: PlacementRequest
  tag: T
  exclude: ReadonlySet<string> | undefined
  /** Nodes whose bid verified in this placement (not verified again when picked again). */
  verifiedNodes: Set<string>
  refused: VerifiedPlacement['refused']
  verified: number
  /** Answers awaited in the current attempt, plus one while the attempt is being handed out. */
  pending: number
  failed: string[]
  result: VerifiedPlacement['result'] | undefined
}

export class PlacementPipeline<T> {
  readonly #verify: AsyncOfferVerifier
  readonly #onPlaced: (tag: T, placement: VerifiedPlacement) => void
  #inFlight = 0

  constructor(opts: PlacementPipelineOptions<T>) {
    this.#verify = opts.verify
    this.#onPlaced = opts.onPlaced
  }

  /** Placements submitted and not yet handed to `onPlaced`. */
  get inFlight(): number {
    return this.#inFlight
  }

  /** Places `req` now; its verified outcome reaches `onPlaced(tag, ...)` later (or before this returns, when `verify` answers at once). */
  submit(req: PlacementRequest, tag: T): void {
    this.#inFlight++
    this.#attempt({ req, tag, exclude: req.exclude, verifiedNodes: new Set(), refused: [], verified: 0, pending: 0, failed: [], result: undefined })
  }

  #attempt(p: InFlight<T>): void {
    const result = place(p.exclude === p.req.exclude ? p.req : { ...p.req, exclude: p.exclude })
    if (!result.ok) {
      this.#finish(p, { result, refused: p.refused, verified: p.verified })
      return
    }
    p.result = result
    p.pending = 1
    const asked = new Set<string>()
    const picks = result.standby ? [...result.picks, result.standby] : result.picks
    for (const pick of picks) {
      const node = pick.offer.nodeDid
      if (p.verifiedNodes.has(node) || asked.has(node)) continue
      asked.add(node)
      p.verified++
      p.pending++
      let answered = false
      const done = (error: Error | undefined): void => {
        if (answered) return // a verifier's second answer counts for nothing
        answered = true
        if (error === undefined) p.verifiedNodes.add(node)
        else {
          p.refused.push({ node, error })
          p.failed.push(node)
        }
        this.#answered(p)
      }
      try {
        this.#verify(pick.offer, done)
      } catch (err) {
        done(err instanceof Error ? err : new Error(String(err)))
      }
    }
    this.#answered(p) // the attempt is handed out
  }

  #answered(p: InFlight<T>): void {
    if (--p.pending > 0) return
    if (p.failed.length > 0) {
      // the refused bids are excluded and the placement made again: the next best bids take their places
      p.exclude = new Set([...(p.exclude ?? []), ...p.failed])
      p.failed = []
      this.#attempt(p)
      return
    }
    this.#finish(p, { result: p.result!, refused: p.refused, verified: p.verified })
  }

  #finish(p: InFlight<T>, placement: VerifiedPlacement): void {
    this.#inFlight--
    this.#onPlaced(p.tag, placement)
  }
}

/**
 * placeVerified's rule with an asynchronous verifier (the picks verified on the signature thread): resolves
 * once every pick (and the standby) answered, the refused ones excluded and replaced as placeVerified does.
 * For a caller that places one request at a time and awaits it (the orchestrator's deployment steps): its
 * thread serves other deployments meanwhile, so concurrent deployments' picks reach the thread together.
 */
export function placeVerifiedAsync(req: PlacementRequest, verify: AsyncOfferVerifier): Promise<VerifiedPlacement> {
  return new Promise((resolve) => new PlacementPipeline<null>({ verify, onPlaced: (_tag, placement) => resolve(placement) }).submit(req, null))
}

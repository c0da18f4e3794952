// Placement over bids whose signatures are checked only when acted on (spec/orchestration.md, "Bids verified
// when acted on"). A bid that passed its cheap checks (shape, freshness, request, price) is a candidate; before
// any pick is used (reserved, proposed to, committed) its signature is verified, in the order of the choice:
// the replicas, then the standby. A pick whose signature fails is excluded (place.ts skips an excluded offer
// before it scores anything, so it weighs in no score, not even the price scale) and the placement is made
// again without it: the next best bid takes its place. Bids never picked are never verified: about 2.3 Ed25519 verifications per placement
// instead of one per answer (~5.3 for the sampled rounds of bench/placement.bench.ts).
import type { NodeOffer } from './offer.ts'
import { place, type PlacementRequest, type PlacementResult } from './place.ts'

/** Verifies the binding statement behind `offer` (its bid's signature); throws a typed error when it fails. */
export type OfferVerifier = (offer: NodeOffer) => void

export interface VerifiedPlacement {
  /** The placement; when ok, every pick (and the standby) passed `verify`. */
  result: PlacementResult
  /** Nodes whose bid was picked and failed verification, with the error: left out of the placement. */
  refused: { node: string; error: Error }[]
  /** Calls of `verify` made (one per distinct node picked, however many replicas it holds). */
  verified: number
}

/**
 * `place(req)`, with every pick verified before it is returned. `alreadyVerified` names nodes whose bid in
 * `req.offers` was verified before (they are not verified again); the nodes verified here are added to it.
 */
export function placeVerified(req: PlacementRequest, verify: OfferVerifier, alreadyVerified: Set<string> = new Set()): VerifiedPlacement {
  const refused: VerifiedPlacement['refused'] = []
  let exclude = req.exclude
  let verified = 0
  for (;;) {
    const result = place(exclude === req.exclude ? req : { ...req, exclude })
    if (!result.ok) return { result, refused, verified }
    const picks = result.standby ? [...result.picks, result.standby] : result.picks
    let failed: string | undefined
    for (const p of picks) {
      const node = p.offer.nodeDid
      if (alreadyVerified.has(node)) continue
      verified++
      try {
        verify(p.offer)
      } catch (err) {
        refused.push({ node, error: err instanceof Error ? err : new Error(String(err)) })
        failed = node
        break
      }
      alreadyVerified.add(node)
    }
    if (failed === undefined) return { result, refused, verified }
    // excluded offers are skipped before anything is scored (place.ts): the refused bid weighs in nothing
    exclude = new Set([...(exclude ?? []), failed])
  }
}

// Deployment snapshots written before prices were whole µNLC (terms v2, spec/contracts.md "Terms v2") hold
// floats of NLC: each replica's price and contract, the workload's `maxPrice`, and the bids of a round in
// progress. They are read through this one migration boundary, where each becomes whole µNLC by
// Math.round(NLC * 1e6) (v1 quotes were rounded to 1e-6). Snapshots already in µNLC pass unchanged.
import { upgradeStoredTerms, type ContractTermsV1 } from '../contracts/contract.ts'

type Loose = Record<string, unknown>
const isObject = (x: unknown): x is Loose => typeof x === 'object' && x !== null && !Array.isArray(x)
const micro = (nlc: unknown): unknown => (typeof nlc === 'number' && Number.isFinite(nlc) && nlc >= 0 ? String(Math.round(nlc * 1e6)) : nlc)

/** A persisted deployment snapshot with its v1 prices read as µNLC (a copy when anything changed). */
export function upgradeDeploymentSnapshot(snapshot: unknown): unknown {
  if (!isObject(snapshot) || !isObject(snapshot.context)) return snapshot
  const c = snapshot.context
  let changed = false
  const replicas = Array.isArray(c.replicas)
    ? c.replicas.map((r: unknown) => {
        if (!isObject(r)) return r
        const contract = isObject(r.contract) && isObject(r.contract.terms) && r.contract.terms.v === 1
          ? { ...r.contract, terms: upgradeStoredTerms(r.contract.terms as unknown as ContractTermsV1) }
          : r.contract
        if (typeof r.pricePerHour !== 'number' && contract === r.contract) return r
        changed = true
        return { ...r, pricePerHour: micro(r.pricePerHour), contract }
      })
    : c.replicas
  let workload = c.workload
  if (isObject(workload) && isObject(workload.constraints) && typeof workload.constraints.maxPrice === 'number') {
    changed = true
    workload = { ...workload, constraints: { ...workload.constraints, maxPrice: micro(workload.constraints.maxPrice) } }
  }
  let round = c.round
  if (isObject(round) && Array.isArray(round.bids) && round.bids.some((b: unknown) => isObject(b) && b.v === 1)) {
    // a round in progress is re-read as v2; its signatures cover the v1 bytes, so none of its bids will verify
    // and the round ends with a new bid round (spec/orchestration.md "Bids verified when acted on")
    changed = true
    const bid = (b: unknown): unknown => (isObject(b) && b.v === 1 ? { ...b, v: 2, pricePerHour: micro(b.pricePerHour) } : b)
    const offer = (o: unknown): unknown => (isObject(o) ? { ...o, pricePerHour: micro(o.pricePerHour) } : o)
    round = { ...round, bids: round.bids.map(bid), offers: Array.isArray(round.offers) ? round.offers.map(offer) : round.offers }
  }
  if (!changed) return snapshot
  return { ...snapshot, context: { ...c, replicas, workload, round } }
}

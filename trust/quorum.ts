// Judging the runs of one job (spec/trust.md "Redundant execution"): each run gives an output digest, or
// none when the node dropped it. Two runs on nodes of different owners that agree make a quorum: they are
// valid, every run with another digest is invalid. Without a quorum another run is asked for, on an owner
// not used yet, up to `maxRuns`; when those are used up the runs that returned something stay unjudged
// (inconclusive: nobody is struck on a tie). A dropped run is `missed` at once, quorum or not.

export interface RunResult {
  node: string
  owner: string
  /** The output digest (spec/trust.md "Output digest"), or null: no result by the deadline. */
  digest: string | null
}

export type Verdict = 'valid' | 'invalid' | 'missed'

export type QuorumState =
  | { kind: 'decided'; digest: string; verdicts: Map<string, Verdict> }
  | { kind: 'needs-run'; excludeOwners: Set<string>; verdicts: Map<string, Verdict> }
  | { kind: 'inconclusive'; verdicts: Map<string, Verdict> }

/** The state of a job's runs so far. */
export function judgeRuns(runs: readonly RunResult[], maxRuns: number): QuorumState {
  const verdicts = new Map<string, Verdict>()
  const byDigest = new Map<string, Set<string>>()
  for (const r of runs) {
    if (r.digest === null) {
      verdicts.set(r.node, 'missed')
      continue
    }
    let owners = byDigest.get(r.digest)
    if (!owners) byDigest.set(r.digest, (owners = new Set()))
    owners.add(r.owner)
  }
  for (const [digest, owners] of byDigest) {
    if (owners.size < 2) continue
    for (const r of runs) if (r.digest !== null) verdicts.set(r.node, r.digest === digest ? 'valid' : 'invalid')
    return { kind: 'decided', digest, verdicts }
  }
  if (runs.length < maxRuns) return { kind: 'needs-run', excludeOwners: new Set(runs.map((r) => r.owner)), verdicts }
  return { kind: 'inconclusive', verdicts }
}

/** The verdict of a known-answer task: the validator knows the digest. */
export function judgeKnownAnswer(expected: string, digest: string | null): Verdict {
  return digest === null ? 'missed' : digest === expected ? 'valid' : 'invalid'
}

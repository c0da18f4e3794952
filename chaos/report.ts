// The lines `npm run chaos` prints: one per schedule, and the totals (schedules run, faults injected by
// kind, violations with the command that replays each failing seed, the longest time to converge).
import type { FaultKind } from './schedule.ts'
import type { ScheduleResult } from './runner.ts'

export const replayCommand = (seed: number, allowKnownUntilLeases: boolean): string =>
  `npm run chaos -- --seed ${seed}${allowKnownUntilLeases ? ' --allow-known-until-leases' : ''}`

export function scheduleLine(r: ScheduleResult, index: number, total: number): string {
  const faults = Object.entries(r.faults).map(([k, n]) => `${k}=${n}`).join(' ') || 'none'
  const verdict = r.violations.length === 0 ? 'ok' : `FAIL (${r.violations.length} violation${r.violations.length > 1 ? 's' : ''})`
  const conv = r.convergeMs === null ? 'did not converge' : `converged in ${r.convergeMs} ms`
  const tol = r.tolerated.length > 0 ? `, ${r.tolerated.length} tolerated until leases` : ''
  return `[${index + 1}/${total}] seed ${r.seed}: ${verdict}; ${conv}${tol}; faults ${faults}; ${Math.round(r.elapsedMs / 1000)} s`
}

export interface Totals {
  schedules: number
  failed: number
  faults: Partial<Record<FaultKind, number>>
  violations: number
  tolerated: number
  longestConvergeMs: number | null
  longestSeed: number | null
}

export function totals(results: readonly ScheduleResult[]): Totals {
  const faults: Partial<Record<FaultKind, number>> = {}
  let longest: number | null = null
  let longestSeed: number | null = null
  for (const r of results) {
    for (const [k, n] of Object.entries(r.faults) as Array<[FaultKind, number]>) faults[k] = (faults[k] ?? 0) + n
    if (r.convergeMs !== null && (longest === null || r.convergeMs > longest)) {
      longest = r.convergeMs
      longestSeed = r.seed
    }
  }
  return {
    schedules: results.length,
    failed: results.filter((r) => r.violations.length > 0).length,
    faults,
    violations: results.reduce((s, r) => s + r.violations.length, 0),
    tolerated: results.reduce((s, r) => s + r.tolerated.length, 0),
    longestConvergeMs: longest,
    longestSeed,
  }
}

export function summary(results: readonly ScheduleResult[], allowKnownUntilLeases: boolean): string[] {
  const t = totals(results)
  const lines = [
    `schedules run: ${t.schedules} (${t.failed} failed)`,
    `faults injected: ${Object.entries(t.faults).sort().map(([k, n]) => `${k} ${n}`).join(', ') || 'none'}`,
    `violations: ${t.violations}${allowKnownUntilLeases ? ` (and ${t.tolerated} tolerated until leases)` : ''}`,
    `longest time to converge: ${t.longestConvergeMs === null ? 'n/a' : `${t.longestConvergeMs} ms (seed ${t.longestSeed})`}`,
  ]
  for (const r of results.filter((x) => x.violations.length > 0)) {
    lines.push(`seed ${r.seed} violated (replay: ${replayCommand(r.seed, allowKnownUntilLeases)}):`)
    for (const v of r.violations) lines.push(`  ${v.invariant}${v.awaitsLeases ? ' [known until leases]' : ''}: ${v.detail}`)
  }
  return lines
}

// How every benchmark prints: each figure beside its baseline measured in the same run, as a ratio.
// Benchmarks are not tests: nothing here fails on a number.

export interface Figure {
  /** What was measured, e.g. "envelope sign+verify". */
  name: string
  value: number
  /** Unit of `value`, e.g. "ops/s", "ms", "MiB". */
  unit: string
  /** The baseline this figure is compared with, measured in the same run. */
  baseline?: { name: string; value: number }
  /** "higher" when more is better (throughput), "lower" when less is better (latency). */
  better: 'higher' | 'lower'
  /** Optional target ratio, printed for reference (e.g. ">= 0.8 of raw"). */
  target?: string
}

const fmt = (n: number): string =>
  Math.abs(n) >= 100 ? Math.round(n).toLocaleString('en-US') : n >= 10 ? n.toFixed(1) : n.toFixed(3)

/** Ratio of the figure to its baseline, oriented so that 1.0 means "as good as the baseline" and higher is better. */
export function ratio(f: Figure): number | undefined {
  if (!f.baseline || f.baseline.value === 0 || f.value === 0) return undefined
  return f.better === 'higher' ? f.value / f.baseline.value : f.baseline.value / f.value
}

export function printSection(title: string, figures: Figure[]): void {
  console.log(`\n## ${title}`)
  for (const f of figures) {
    const r = ratio(f)
    const base = f.baseline ? `  vs ${f.baseline.name} ${fmt(f.baseline.value)} ${f.unit}` : ''
    const rs = r === undefined ? '' : `  ratio ${r.toFixed(2)}${f.better === 'lower' ? ' (baseline/ours)' : ''}`
    const tg = f.target ? `  [target ${f.target}]` : ''
    console.log(`  ${f.name.padEnd(44)} ${fmt(f.value).padStart(12)} ${f.unit.padEnd(8)}${base}${rs}${tg}`)
  }
}

/** Runs `fn` repeatedly for about `ms` milliseconds and returns operations per second. */
export async function opsPerSecond(fn: () => unknown, ms = 1000, batch = 100): Promise<number> {
  // warm-up
  for (let i = 0; i < batch; i++) await fn()
  let n = 0
  const start = process.hrtime.bigint()
  const end = start + BigInt(ms) * 1_000_000n
  let now = start
  while (now < end) {
    for (let i = 0; i < batch; i++) await fn()
    n += batch
    now = process.hrtime.bigint()
  }
  return n / (Number(now - start) / 1e9)
}

/** Percentile (0..100) of a list of samples. */
export function percentile(samples: number[], p: number): number {
  if (samples.length === 0) return NaN
  const s = [...samples].sort((a, b) => a - b)
  const i = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))
  return s[i]!
}

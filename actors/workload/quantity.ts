// Byte quantities in workload objects: an integer (bytes) or a string with a unit ("256Mi", "1.5GiB", "2G").
const units: Record<string, number> = {
  '': 1, B: 1,
  K: 1e3, KB: 1e3, M: 1e6, MB: 1e6, G: 1e9, GB: 1e9, T: 1e12, TB: 1e12,
  Ki: 2 ** 10, KiB: 2 ** 10, Mi: 2 ** 20, MiB: 2 ** 20, Gi: 2 ** 30, GiB: 2 ** 30, Ti: 2 ** 40, TiB: 2 ** 40,
}

/** Bytes for a quantity, or undefined when it is not one. */
export function parseQuantity(q: number | string): number | undefined {
  if (typeof q === 'number') return Number.isInteger(q) && q >= 0 ? q : undefined
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B?|B)?$/.exec(q.trim())
  if (!m) return undefined
  const mult = units[m[2] ?? '']
  if (mult === undefined) return undefined
  return Math.round(Number(m[1]) * mult)
}

/** Short human form: 268435456 -> "256MiB". */
export function formatBytes(n: number): string {
  for (const [u, m] of [['TiB', 2 ** 40], ['GiB', 2 ** 30], ['MiB', 2 ** 20], ['KiB', 2 ** 10]] as const) {
    if (n >= m) {
      const v = n / m
      return `${Number.isInteger(v) ? v : v.toFixed(1)}${u}`
    }
  }
  return `${n}B`
}

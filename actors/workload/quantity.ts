// Byte quantities, with one meaning everywhere a size is written (workload objects, the owner's `--share`,
// allocation requests): an integer (bytes) or a number with a unit. Decimal units are powers of 1000
// (`K`/`KB`, `M`/`MB`, `G`/`GB`, `T`/`TB`), binary units powers of 1024 (`Ki`/`KiB`, `Mi`/`MiB`, `Gi`/`GiB`,
// `Ti`/`TiB`), as Kubernetes reads them; `B` is bytes; letters in any case (`4gib` is `4GiB`).
const units: Record<string, number> = {
  '': 1, b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  ki: 2 ** 10, kib: 2 ** 10, mi: 2 ** 20, mib: 2 ** 20, gi: 2 ** 30, gib: 2 ** 30, ti: 2 ** 40, tib: 2 ** 40,
}

/** Bytes for a quantity (whole bytes, rounded), or undefined when it is not one. */
export function parseQuantity(q: number | string): number | undefined {
  if (typeof q === 'number') return Number.isSafeInteger(q) && q >= 0 ? q : undefined
  const m = /^([0-9]+(?:\.[0-9]+)?)\s*([kmgt]i?b?|b)?$/i.exec(q.trim())
  if (!m) return undefined
  const mult = units[(m[2] ?? '').toLowerCase()]
  if (mult === undefined) return undefined
  const bytes = Math.round(Number(m[1]) * mult)
  return Number.isSafeInteger(bytes) ? bytes : undefined
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

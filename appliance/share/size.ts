// Byte sizes as owners write them: `4GiB`, `512MiB`, `20GB`, `1073741824`. Binary units are powers of 1024,
// decimal units powers of 1000; a bare number is bytes.
import { InvalidSizeError } from '../errors.ts'

const units: Record<string, number> = {
  b: 1,
  k: 1024, kb: 1000, kib: 1024,
  m: 1024 ** 2, mb: 1000 ** 2, mib: 1024 ** 2,
  g: 1024 ** 3, gb: 1000 ** 3, gib: 1024 ** 3,
  t: 1024 ** 4, tb: 1000 ** 4, tib: 1024 ** 4,
}

export function parseSize(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new InvalidSizeError(String(input))
    return Math.floor(input)
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input)
  if (!m) throw new InvalidSizeError(input)
  const mult = units[(m[2] ?? '').toLowerCase() || 'b']
  if (mult === undefined) throw new InvalidSizeError(input)
  return Math.floor(Number(m[1]) * mult)
}

/** `4294967296` -> `4GiB` (exact binary units where possible). */
export function formatSize(bytes: number): string {
  for (const [u, m] of [['TiB', 1024 ** 4], ['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes >= m && bytes % (m / 1024) === 0) {
      const v = bytes / m
      return `${Number.isInteger(v) ? v : v.toFixed(2)}${u}`
    }
  }
  return `${bytes}B`
}

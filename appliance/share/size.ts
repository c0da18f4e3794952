// Byte sizes as owners write them (`4GiB`, `512MiB`, `20GB`, `1073741824`): the same parser, with the same
// meaning, as workload quantities (actors/workload/quantity.ts): `G` is 10^9 bytes, `Gi`/`GiB` 2^30.
import { parseQuantity } from '../../actors/workload/quantity.ts'
import { InvalidSizeError } from '../errors.ts'

export function parseSize(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0) throw new InvalidSizeError(String(input))
    return Math.floor(input)
  }
  const bytes = parseQuantity(input)
  if (bytes === undefined) throw new InvalidSizeError(input)
  return bytes
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

// The output digest of one job run (spec/trust.md "Output digest"): what two runs must agree on. Until job
// outputs are artifacts, it covers the run's exit code and its standard output:
//   "sha256:" + hex(SHA-256(RFC 8785 canonical JSON of { v: 1, code, stdout }))
// with `stdout` the run's stdout lines joined with "\n" (each line as the executor split it).
import { createHash } from 'node:crypto'
import { canonicalJson } from '../identity/canonical-json.ts'

export function outputDigest(code: number | null, stdoutLines: readonly string[]): string {
  const body = canonicalJson({ v: 1, code, stdout: stdoutLines.join('\n') })
  return `sha256:${createHash('sha256').update(body).digest('hex')}`
}

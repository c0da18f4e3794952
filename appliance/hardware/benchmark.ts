// The short benchmark run at enrollment: a single-core CPU figure (SHA-256 throughput) and a memory figure
// (copy bandwidth over a buffer larger than the caches). It takes about half a second; the result is
// recorded in the node's store and reported in `noir node info`, so placement and trust can compare what a
// node claims with what it measured.
import { createHash } from 'node:crypto'

export interface BenchmarkResult {
  /** SHA-256 over 64 KiB blocks, one core, MB/s. */
  cpuSha256MBps: number
  /** memcpy of a 32 MiB buffer, GB/s. */
  memoryCopyGBps: number
  durationMs: number
  at: string
}

export function runEnrollmentBenchmark(opts: { cpuMs?: number; memoryMs?: number } = {}): BenchmarkResult {
  const t0 = performance.now()
  const cpuMs = opts.cpuMs ?? 250
  const block = Buffer.alloc(64 * 1024, 7)
  let hashed = 0
  const cpuStart = performance.now()
  while (performance.now() - cpuStart < cpuMs) {
    for (let i = 0; i < 16; i++) createHash('sha256').update(block).digest()
    hashed += 16 * block.length
  }
  const cpuSecs = (performance.now() - cpuStart) / 1000

  const memMs = opts.memoryMs ?? 250
  const a = Buffer.alloc(32 * 1024 * 1024, 1)
  const b = Buffer.alloc(32 * 1024 * 1024)
  let copied = 0
  const memStart = performance.now()
  while (performance.now() - memStart < memMs) {
    a.copy(b)
    copied += a.length
  }
  const memSecs = (performance.now() - memStart) / 1000
  return {
    cpuSha256MBps: Math.round(hashed / 1e6 / cpuSecs),
    memoryCopyGBps: Math.round((copied / 1e9 / memSecs) * 100) / 100,
    durationMs: Math.round(performance.now() - t0),
    at: new Date().toISOString(),
  }
}

// The daemon's V8 heap setting (appliance/daemon/heap-limits.ts): asked for on the V8 versions that have the
// flag without it being the default, and what it is for: a process that passes many buffers through, beside a
// heap it keeps (a daemon), runs far fewer mark-compacts with it. Counted by a child process (major
// collections seen by a PerformanceObserver), never timed.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { needsExternalMemoryFlag } from '../heap-limits.ts'

const module = fileURLToPath(new URL('../heap-limits.ts', import.meta.url))

t.test('the versions that need the flag', async (t) => {
  for (const v of ['13.6.233.17-node.53', '13.0.1.1', '14.6.202.9-node.12', '14.7.1.0']) t.ok(needsExternalMemoryFlag(v), `${v}: set`)
  for (const v of ['14.8.1.0', '15.0.0.0', '12.4.254.21-node.24', 'nonsense']) t.notOk(needsExternalMemoryFlag(v), `${v}: left as it is`)
})

// 2 GiB in 512 KiB buffers no one keeps, beside ~70 MB of kept objects; prints the major collections it saw
const CHILD = `
import { PerformanceObserver, constants } from 'node:perf_hooks'
if (process.argv[1] === 'on') (await import(${JSON.stringify(module)})).countBuffersInHeapLimit()
const kept = []
for (let i = 0; i < 500_000; i++) kept.push({ i, s: 'x' + i, a: [i, i + 1] })
let major = 0
new PerformanceObserver((list) => { for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++ }).observe({ entryTypes: ['gc'] })
await new Promise((r) => setTimeout(r, 50))
const before = major
for (let i = 0; i < 4096; i++) {
  Buffer.allocUnsafe(512 * 1024)[0] = i
  if (i % 16 === 0) await new Promise((r) => setImmediate(r))
}
await new Promise((r) => setTimeout(r, 100))
process.stdout.write(String(major - before) + ' ' + kept.length)
`

function majorCollections(mode: 'on' | 'off'): number {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD, mode], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`child exited ${r.status}: ${r.stderr}`)
  return Number(r.stdout.split(' ')[0])
}

t.test('buffers passing through start far fewer mark-compacts with the flag', { skip: needsExternalMemoryFlag(process.versions.v8) ? false : `V8 ${process.versions.v8} does not take the flag` }, async (t) => {
  const without = majorCollections('off')
  const withFlag = majorCollections('on')
  t.ok(without >= 4, `without the flag: ${without} mark-compacts for 2 GiB of buffers (up to one per 64 MB of them)`)
  t.ok(withFlag * 4 <= without, `with it: ${withFlag}, at most a quarter of ${without}`)
})

// The wasm executor: the compliance suite with hand-assembled WASI modules, then its limits.
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import { WasmExecutor } from '../executor/wasm/wasm-executor.ts'
import { capModuleMemory } from '../executor/wasm/memory-limit.ts'
import { wasmApi } from '../executor/wasm/wasm-api.ts'
import type { ExecSpec } from '../executor/executor.ts'
import { runExecutorCompliance } from './executor-compliance.ts'
import { wasmFixture, type WasmFixture } from './wasm-fixtures.ts'
import { InvalidExecSpecError } from '../errors.ts'

const MiB = 1024 * 1024
const dir = mkdtempSync(join(tmpdir(), 'noir-wasm-fixtures-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const modulePath = (f: WasmFixture, maxPages?: number): string => {
  const p = join(dir, `${f}-${maxPages ?? 'nomax'}.wasm`)
  writeFileSync(p, wasmFixture(f, maxPages === undefined ? {} : { maxPages }))
  return p
}

const executor = new WasmExecutor()
t.teardown(async () => {
  for (const h of await executor.list()) await executor.remove(h)
  await executor.close()
})

const spec = (f: WasmFixture, over: Partial<ExecSpec> = {}): ExecSpec => ({
  allocationId: `wasm-${f}-${randomUUID().slice(0, 8)}`,
  runtime: { kind: 'wasm', module: modulePath(f) },
  env: {},
  limits: { cpu: 1, memoryBytes: 16 * MiB },
  network: 'none',
  stateDir: over.stateDir ?? '/nonexistent',
  ...over,
})
const tempState = (tt: Test): string => {
  const d = mkdtempSync(join(tmpdir(), 'noir-wasm-state-'))
  tt.teardown(() => rmSync(d, { recursive: true, force: true }))
  return d
}

t.test('compliance', async (t) => {
  runExecutorCompliance(t, {
    executor,
    makeSpec: (scenario, ctx) => spec(scenario, { ...ctx }),
  })
})

t.test('a module that grows its memory past the limit is reported as OOM', async (t) => {
  const h = await executor.prepare(spec('memory-hog', { stateDir: tempState(t), limits: { cpu: 1, memoryBytes: 2 * MiB } }))
  await executor.start(h)
  const s = await executor.wait(h)
  t.equal(s.reason, 'oom')
  t.equal(s.oomKilled, true)
  await executor.remove(h)
})

t.test('a module above its CPU-time budget is ended with reason cpu-time', async (t) => {
  const h = await executor.prepare(spec('busy', { stateDir: tempState(t), limits: { cpu: 1, memoryBytes: 4 * MiB, cpuTimeMs: 300 } }))
  await executor.start(h)
  const s = await executor.wait(h)
  t.equal(s.reason, 'cpu-time')
  t.equal(s.code, null)
  await executor.remove(h)
})

t.test('the memory cap is written into the module and a minimum above the limit is refused', async (t) => {
  const capped = capModuleMemory(wasmFixture('exit-zero'), 4 * MiB)
  const wa = wasmApi!
  const mod = new wa.Module(capped)
  t.ok(wa.validate(capped), 'the capped module is still valid')
  t.same(wa.Module.exports(mod).map((e) => e.name).sort(), ['_start', 'memory'])
  const loose = capModuleMemory(wasmFixture('exit-zero', { maxPages: 1000 }), 4 * MiB)
  t.ok(wa.validate(loose), 'a declared maximum above the limit is lowered')
  t.throws(() => capModuleMemory(wasmFixture('exit-zero'), 32 * 1024), InvalidExecSpecError, 'below one page is refused')
  t.throws(() => capModuleMemory(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]), MiB), InvalidExecSpecError, 'not wasm is refused')
})

t.test('a module sees only its state directory: paths outside /state cannot be opened', async (t) => {
  // The state-read fixture opens out.txt relative to fd 3 (/state); with no such file it exits 100 + ENOENT.
  const h = await executor.prepare(spec('state-read', { stateDir: tempState(t) }))
  await executor.start(h)
  const s = await executor.wait(h)
  t.equal(s.code, 100 + 44, 'ENOENT (44) inside an empty state dir: nothing from the host leaks in')
  await executor.remove(h)
})

t.test('an unreadable module is refused with InvalidExecSpecError', async (t) => {
  await t.rejects(executor.prepare(spec('exit-zero', { stateDir: tempState(t), runtime: { kind: 'wasm', module: join(dir, 'missing.wasm') } })), InvalidExecSpecError)
})

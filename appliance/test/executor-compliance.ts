// The Executor compliance suite (as js-libp2p's interface-compliance-tests): every executor (docker, wasm,
// microvm, actor) runs these same scenarios against its real runtime. An executor supplies one fixture per
// scenario through `makeSpec`; the suite owns the assertions.
//
//   import { runExecutorCompliance } from './executor-compliance.ts'
//   runExecutorCompliance(t, { executor, makeSpec: (scenario, ctx) => ({ ...ctx, runtime: ..., ... }) })
//
// Fixture contract, per scenario (what the workload must do):
//   exit-zero    print `hello` on stdout (or the console), exit 0
//   exit-code    exit with COMPLIANCE_EXIT_CODE (3) without being signalled
//   env          print the value of the env var COMPLIANCE_ENV_NAME (the suite puts it in ctx.env)
//   log-stream   print `tick 1` .. `tick 5`, one line every ~200 ms, then exit 0
//   graceful     run until SIGTERM (or the executor's equivalent), then print `term` and exit 0 at once
//   ignore-term  run forever and ignore SIGTERM (the executor must kill it after the grace period)
//   busy         burn CPU in a loop forever, holding some memory
//   state-write  write the text `persisted` to the file `out.txt` in its state directory (/state), exit 0
//   state-read   print the contents of `out.txt` from its state directory, exit 0
//   sleep        do nothing for a long time (at least a minute), then exit 0
import type { Test } from 'tap'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'
import type { ExecHandle, ExecSpec, Executor, ExitStatus, LogLine } from '../executor/executor.ts'

export const COMPLIANCE_EXIT_CODE = 3
export const COMPLIANCE_ENV_NAME = 'NOIR_COMPLIANCE_VALUE'

export const complianceScenarios = [
  'exit-zero',
  'exit-code',
  'env',
  'log-stream',
  'graceful',
  'ignore-term',
  'busy',
  'state-write',
  'state-read',
  'sleep',
] as const
export type ComplianceScenario = (typeof complianceScenarios)[number]

/** What the suite hands to `makeSpec`: spread it into the ExecSpec (allocationId, stateDir, env). */
export interface ComplianceContext {
  allocationId: string
  stateDir: string
  env: Record<string, string>
}

export interface ComplianceOptions {
  executor: Executor
  /** Builds the spec that runs the fixture for `scenario`; keep `ctx`'s allocationId, stateDir and env. */
  makeSpec(scenario: ComplianceScenario, ctx: ComplianceContext): ExecSpec | Promise<ExecSpec>
  /**
   * Scenarios this executor cannot support by design, with the reason (printed as a skip; e.g. WASI has
   * no signals, so a wasm module cannot handle SIGTERM). Keep this list empty wherever possible.
   */
  unsupported?: Partial<Record<ComplianceScenario, string>>
  /** Grace period used by the stop scenarios (default 1500 ms). */
  graceMs?: number
  /** How long any one wait may take before the suite gives up (default 30 s; not a speed check). */
  waitLimitMs?: number
}

/** Registers the compliance scenarios as subtests of `t`. Call it from a `*.test.ts` file. */
export function runExecutorCompliance(t: Test, opts: ComplianceOptions): void {
  const { executor } = opts
  const graceMs = opts.graceMs ?? 1500
  const waitLimitMs = opts.waitLimitMs ?? 30_000

  /** Prepares a fixture with its own state dir; everything is removed on teardown, even on failure. */
  const prepare = async (
    tt: Test,
    scenario: ComplianceScenario,
    stateDir?: string,
  ): Promise<{ handle: ExecHandle; spec: ExecSpec; stateDir: string }> => {
    const dir = stateDir ?? mkdtempSync(join(tmpdir(), `noir-compliance-${executor.kind}-`))
    if (stateDir === undefined) tt.teardown(() => rmSync(dir, { recursive: true, force: true }))
    const ctx: ComplianceContext = {
      allocationId: `compliance-${scenario}-${randomUUID().slice(0, 8)}`,
      stateDir: dir,
      env: { [COMPLIANCE_ENV_NAME]: `value-${randomUUID().slice(0, 8)}` },
    }
    const spec = await opts.makeSpec(scenario, ctx)
    const handle = await executor.prepare(spec)
    tt.teardown(async () => {
      await executor.stop(handle, { graceMs: 0 }).catch(() => undefined)
      await executor.remove(handle).catch(() => undefined)
    })
    return { handle, spec, stateDir: dir }
  }

  const waitFor = async (handle: ExecHandle): Promise<ExitStatus> =>
    withLimit(executor.wait(handle), waitLimitMs, `wait(${handle.allocationId})`)

  const collect = async (handle: ExecHandle, follow: boolean): Promise<LogLine[]> => {
    const out: LogLine[] = []
    for await (const l of executor.logs(handle, { follow })) out.push(l)
    return out
  }

  const scenario = (name: ComplianceScenario, title: string, fn: (tt: Test) => Promise<void>): void => {
    const why = opts.unsupported?.[name]
    if (why !== undefined) {
      t.test(`${executor.kind}: ${title}`, { skip: `${executor.kind} does not support '${name}': ${why}` }, async () => {})
      return
    }
    t.test(`${executor.kind}: ${title}`, fn)
  }

  t.test(`${executor.kind}: the executor says it is available here`, async (tt) => {
    const a = await executor.available()
    tt.same(a, { ok: true }, a.ok ? 'available' : `unavailable: ${a.reason}`)
  })

  scenario('exit-zero', 'a workload that exits 0 is reported as exited with code 0, and its output is in the logs', async (tt) => {
    const { handle } = await prepare(tt, 'exit-zero')
    tt.equal(handle.kind, executor.kind, 'the handle names its executor')
    await executor.start(handle)
    const status = await waitFor(handle)
    tt.equal(status.code, 0, 'exit code 0')
    tt.equal(status.reason, 'exited', 'reason exited')
    tt.equal(status.oomKilled, false, 'not OOM-killed')
    tt.type(status.finishedAt, 'number')
    const lines = await collect(handle, false)
    tt.ok(lines.some((l) => l.line === 'hello'), 'the logs hold the line it printed')
    const again = await waitFor(handle)
    tt.same(again, status, 'waiting again gives the same status')
  })

  scenario('exit-code', 'a non-zero exit code is reported exactly', async (tt) => {
    const { handle } = await prepare(tt, 'exit-code')
    await executor.start(handle)
    const status = await waitFor(handle)
    tt.equal(status.code, COMPLIANCE_EXIT_CODE, `exit code ${COMPLIANCE_EXIT_CODE}`)
    tt.equal(status.reason, 'exited')
    tt.equal(status.oomKilled, false)
    const stopped = await executor.stop(handle, { graceMs })
    tt.equal(stopped.code, COMPLIANCE_EXIT_CODE, 'stopping an ended instance returns how it ended')
  })

  scenario('env', 'the environment reaches the workload', async (tt) => {
    const { handle, spec } = await prepare(tt, 'env')
    await executor.start(handle)
    const status = await waitFor(handle)
    tt.equal(status.code, 0)
    const lines = await collect(handle, false)
    const want = spec.env[COMPLIANCE_ENV_NAME]
    tt.ok(want !== undefined && lines.some((l) => l.line === want), `the workload printed ${want}`)
  })

  scenario('log-stream', 'logs stream with timestamps while the workload runs, and follow ends at exit', async (tt) => {
    const { handle } = await prepare(tt, 'log-stream')
    const t0 = Date.now()
    await executor.start(handle)
    let ended = false
    const done = executor.wait(handle).then((s) => {
      ended = true
      return s
    })
    const received: Array<{ line: LogLine; whileRunning: boolean }> = []
    await withLimit(
      (async () => {
        for await (const l of executor.logs(handle, { follow: true })) received.push({ line: l, whileRunning: !ended })
      })(),
      waitLimitMs,
      'logs follow to end',
    )
    const status = await withLimit(done, waitLimitMs, 'wait')
    tt.equal(status.code, 0)
    const ticks = received.filter((r) => /^tick \d$/.test(r.line.line))
    tt.same(ticks.map((r) => r.line.line), ['tick 1', 'tick 2', 'tick 3', 'tick 4', 'tick 5'], 'every line, in order')
    tt.ok(ticks[0]?.whileRunning, 'the first line arrived while the workload was still running')
    for (const r of ticks) {
      tt.ok(r.line.ts >= t0 - 1000 && r.line.ts <= Date.now() + 1000, 'each line carries a wall-clock timestamp')
      tt.ok(['stdout', 'stderr', 'console'].includes(r.line.stream), 'and names its stream')
    }
    const tss = ticks.map((r) => r.line.ts)
    tt.ok(tss.every((v, i) => i === 0 || v >= tss[i - 1]!), 'timestamps do not go backwards')
    tt.ok((tss.at(-1) ?? 0) - (tss[0] ?? 0) >= 300, 'lines are stamped when produced, not all at exit')
  })

  scenario('graceful', 'stop is graceful: a workload that handles SIGTERM exits 0 within the grace period', async (tt) => {
    const { handle } = await prepare(tt, 'graceful')
    await executor.start(handle)
    await sleep(700) // let it install its handler
    const t0 = Date.now()
    const status = await withLimit(executor.stop(handle, { graceMs: 10_000 }), waitLimitMs, 'stop')
    const took = Date.now() - t0
    tt.equal(status.reason, 'stopped', 'reason stopped')
    tt.equal(status.code, 0, 'it exited 0 by itself')
    tt.ok(took < 10_000, `it ended before the grace period ran out (${took} ms)`)
    const lines = await collect(handle, false)
    tt.ok(lines.some((l) => l.line === 'term'), 'its handler ran')
    tt.same(await waitFor(handle), status, 'wait agrees with stop')
  })

  scenario('ignore-term', 'a workload that ignores SIGTERM is killed once the grace period is over', async (tt) => {
    const { handle } = await prepare(tt, 'ignore-term')
    await executor.start(handle)
    await sleep(500)
    const t0 = Date.now()
    const status = await withLimit(executor.stop(handle, { graceMs }), waitLimitMs, 'stop')
    const took = Date.now() - t0
    tt.equal(status.reason, 'killed', 'reason killed')
    tt.equal(status.oomKilled, false)
    tt.ok(took >= graceMs - 100, `it was given the grace period first (${took} ms >= ${graceMs} ms)`)
    tt.same(await waitFor(handle), status, 'wait agrees with stop')
  })

  scenario('busy', 'stats report CPU time and memory of a running workload', async (tt) => {
    const { handle, spec } = await prepare(tt, 'busy')
    await executor.start(handle)
    await sleep(800)
    const a = await executor.stats(handle)
    await sleep(700)
    const b = await executor.stats(handle)
    tt.ok(a.cpuNanos > 0, `CPU time is counted (${a.cpuNanos} ns)`)
    tt.ok(b.cpuNanos > a.cpuNanos, 'and grows while it burns CPU')
    tt.ok(b.memoryBytes > 0, `memory in use is reported (${b.memoryBytes} bytes)`)
    tt.ok(b.memoryLimitBytes > 0 && b.memoryLimitBytes <= spec.limits.memoryBytes, 'the memory limit is the one asked for (or lower)')
    tt.ok(b.ts >= a.ts, 'stats are stamped')
    const s = await executor.stop(handle, { graceMs: 500 })
    tt.ok(['stopped', 'killed'].includes(s.reason), `stop ends it (${s.reason})`)
  })

  scenario('state-write', 'the state directory is writable and what is written there persists for the next instance', async (tt) => {
    const { handle, stateDir } = await prepare(tt, 'state-write')
    await executor.start(handle)
    tt.equal((await waitFor(handle)).code, 0, 'the writer exited 0')
    tt.equal(readFileSync(join(stateDir, 'out.txt'), 'utf8').trim(), 'persisted', 'the file is on the host in the state dir')
    await executor.remove(handle)
    if (opts.unsupported?.['state-read'] !== undefined) return
    const next = await prepare(tt, 'state-read', stateDir)
    await executor.start(next.handle)
    tt.equal((await waitFor(next.handle)).code, 0, 'the reader exited 0')
    const lines = await collect(next.handle, false)
    tt.ok(lines.some((l) => l.line.trim() === 'persisted'), 'a new instance on the same state dir reads it back')
  })

  scenario('sleep', 'list finds prepared and running instances; remove is idempotent and forgets them', async (tt) => {
    const { handle } = await prepare(tt, 'sleep')
    const has = async (): Promise<boolean> => (await executor.list()).some((h) => h.allocationId === handle.allocationId && h.ref === handle.ref)
    tt.ok(await has(), 'a prepared instance is listed')
    await executor.start(handle)
    tt.ok(await has(), 'a running instance is listed')
    const s = await executor.stop(handle, { graceMs: 500 })
    tt.ok(['stopped', 'killed'].includes(s.reason))
    await executor.remove(handle)
    tt.notOk(await has(), 'a removed instance is not listed')
    await executor.remove(handle)
    tt.pass('removing twice is harmless')
  })
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Rejects with a clear message if `p` takes longer than `ms` (a hang guard, never a speed check). */
async function withLimit<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  try {
    return await Promise.race([
      p,
      new Promise<T>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)
      }),
    ])
  } finally {
    clearTimeout(timer)
  }
}

// The `wasm` executor: a WASI (preview1) module in a worker thread. The embedded default: it needs no
// daemon. Limits: the module's memory maximum is rewritten to the memory limit (memory-limit.ts) and the
// worker's own JS heap is capped with resourceLimits; CPU time is watched through worker.cpuUsage() and
// the worker is terminated past limits.cpuTimeMs (reason `cpu-time`). Only the state directory is
// preopened (as /state); the environment is exactly spec.env. Stop: the module sees
// `noir.stop_requested()` turn 1 and its sleeps wake (our SIGTERM); after the grace period the worker is
// terminated (reason `killed`). Instances live in this process: they do not survive a daemon restart.
import { Worker } from 'node:worker_threads'
import { killAfterGrace } from '../grace.ts'
import { randomUUID } from 'node:crypto'
import { mkdirSync, readFileSync } from 'node:fs'
import { isAbsolute } from 'node:path'
import type { Availability, ExecHandle, ExecSpec, Executor, ExitStatus, InstancePhase, LogLine, UsageStats } from '../executor.ts'
import { InvalidExecSpecError, UnknownInstanceError } from '../../errors.ts'
import { capModuleMemory, WASM_PAGE } from './memory-limit.ts'
import { wasmApi } from './wasm-api.ts'
import type { WasmWorkerData, WasmWorkerMessage } from './wasm-worker.ts'
import { siblingModule } from '../../../core/module-url.ts'

const workerUrl = siblingModule(import.meta.url, './wasm-worker.ts')
const MAX_LOG_LINES = 10_000

interface Instance {
  handle: ExecHandle
  spec: ExecSpec
  module: Uint8Array
  control: SharedArrayBuffer
  worker?: Worker
  state: 'prepared' | 'running' | 'ended'
  status?: ExitStatus
  exited: PromiseWithResolvers<ExitStatus>
  logs: LogLine[]
  /** Count of lines dropped from the front of `logs` (bounded buffer). */
  dropped: number
  partial: Record<'stdout' | 'stderr', string>
  wake: Set<() => void>
  stopRequested: boolean
  killed: boolean
  cpuExceeded: boolean
  lastCpuNanos: number
  cpuWatch?: NodeJS.Timeout
}

export interface WasmExecutorInit {
  /** How often CPU time is checked against limits.cpuTimeMs (default 50 ms). */
  cpuCheckMs?: number
  /**
   * Keep one worker started ahead (default false; the daemon turns it on): the next start skips the worker's
   * boot (loading and type-stripping its module, the bulk of the start latency). Call close() when done: an
   * idle spare is unref'd, but loader hooks (tap's, for one) can keep a process alive through it.
   */
  warm?: boolean
}

const workerOptions = {
  env: {},
  stdout: true,
  stderr: true,
  resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16, stackSizeMb: 4 },
} as const

export class WasmExecutor implements Executor {
  readonly kind = 'wasm' as const
  readonly #instances = new Map<string, Instance>()
  readonly #cpuCheckMs: number
  readonly #warm: boolean
  #spare: Worker | undefined

  constructor(init: WasmExecutorInit = {}) {
    this.#cpuCheckMs = init.cpuCheckMs ?? 50
    this.#warm = init.warm ?? false
  }

  /** Ends the warm spare worker (instances are not touched). */
  async close(): Promise<void> {
    const s = this.#spare
    this.#spare = undefined
    await s?.terminate()
  }

  #takeWorker(data: WasmWorkerData): Worker {
    const spare = this.#spare
    this.#spare = undefined
    let worker: Worker
    if (spare) {
      spare.removeAllListeners()
      spare.ref()
      spare.postMessage(data)
      worker = spare
    } else {
      worker = new Worker(workerUrl, { ...workerOptions, workerData: data })
    }
    if (this.#warm) setImmediate(() => this.#startSpare())
    return worker
  }

  #startSpare(): void {
    if (this.#spare) return
    const w = new Worker(workerUrl, workerOptions)
    w.unref()
    const forget = (): void => {
      if (this.#spare === w) this.#spare = undefined
    }
    w.on('error', forget)
    w.on('exit', forget)
    this.#spare = w
  }

  async available(): Promise<Availability> {
    return wasmApi ? { ok: true } : { ok: false, reason: 'this Node has no WebAssembly' }
  }

  async validate(spec: ExecSpec): Promise<void> {
    this.#load(spec)
  }

  /** Reads the module and caps its memory; the typed errors of a bad spec. */
  #load(spec: ExecSpec): Uint8Array {
    const rt = spec.runtime
    if (rt.kind !== 'wasm') throw new InvalidExecSpecError(`the wasm executor cannot run a '${rt.kind}' runtime`)
    if (!isAbsolute(spec.stateDir)) throw new InvalidExecSpecError(`stateDir must be an absolute path (got '${spec.stateDir}')`)
    if (spec.network !== 'none' && spec.network.ports.length > 0) throw new InvalidExecSpecError('wasm modules have no network: use network none')
    let bytes: Uint8Array
    try {
      bytes = readFileSync(rt.module)
    } catch (err) {
      throw new InvalidExecSpecError(`cannot read module ${rt.module}: ${(err as Error).message}`)
    }
    const module = capModuleMemory(bytes, spec.limits.memoryBytes)
    if (!wasmApi?.validate(module)) throw new InvalidExecSpecError(`${rt.module} is not a valid WebAssembly module`)
    return module
  }

  async prepare(spec: ExecSpec): Promise<ExecHandle> {
    const module = this.#load(spec)
    mkdirSync(spec.stateDir, { recursive: true })
    const handle: ExecHandle = { allocationId: spec.allocationId, kind: 'wasm', ref: `wasm-${randomUUID()}` }
    this.#instances.set(handle.ref, {
      handle,
      spec,
      module,
      control: new SharedArrayBuffer(8),
      state: 'prepared',
      exited: Promise.withResolvers<ExitStatus>(),
      logs: [],
      dropped: 0,
      partial: { stdout: '', stderr: '' },
      wake: new Set(),
      stopRequested: false,
      killed: false,
      cpuExceeded: false,
      lastCpuNanos: 0,
    })
    return handle
  }

  async start(handle: ExecHandle): Promise<void> {
    const inst = this.#get(handle)
    if (inst.state !== 'prepared') return // started already: nothing runs twice
    const rt = inst.spec.runtime
    const data: WasmWorkerData = {
      module: inst.module,
      args: rt.kind === 'wasm' ? (rt.args ?? []) : [],
      env: { ...inst.spec.env },
      stateDir: inst.spec.stateDir,
      control: inst.control,
    }
    const worker = this.#takeWorker(data)
    inst.worker = worker
    inst.state = 'running'
    worker.on('message', (m: WasmWorkerMessage) => this.#onMessage(inst, m))
    worker.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'ERR_WORKER_OUT_OF_MEMORY') this.#finish(inst, { code: null, oomKilled: true, reason: 'oom', message: err.message })
      else this.#finish(inst, { code: null, oomKilled: false, reason: 'error', message: err.message })
    })
    worker.on('exit', () => {
      if (inst.killed) this.#finish(inst, { code: null, signal: 'SIGKILL', oomKilled: false, reason: 'killed' })
      else if (inst.cpuExceeded) this.#finish(inst, { code: null, signal: 'SIGXCPU', oomKilled: false, reason: 'cpu-time', message: `CPU time above ${inst.spec.limits.cpuTimeMs} ms` })
      else this.#finish(inst, { code: null, oomKilled: false, reason: 'error', message: 'the worker ended without an exit status' })
    })
    const budget = inst.spec.limits.cpuTimeMs
    inst.cpuWatch = setInterval(() => {
      void worker.cpuUsage().then(
        (u) => {
          inst.lastCpuNanos = (u.user + u.system) * 1000
          if (budget !== undefined && inst.state === 'running' && inst.lastCpuNanos > budget * 1e6) {
            inst.cpuExceeded = true
            void worker.terminate()
          }
        },
        () => undefined,
      )
    }, this.#cpuCheckMs)
    inst.cpuWatch.unref()
  }

  async stop(handle: ExecHandle, opts: { graceMs: number }): Promise<ExitStatus> {
    const inst = this.#get(handle)
    if (inst.state === 'prepared') {
      this.#finish(inst, { code: null, oomKilled: false, reason: 'stopped' })
      return inst.exited.promise
    }
    if (inst.state === 'ended') return inst.exited.promise
    inst.stopRequested = true
    const ctl = new Int32Array(inst.control)
    Atomics.store(ctl, 0, 1)
    Atomics.notify(ctl, 0)
    await killAfterGrace(inst.exited.promise, opts.graceMs, async () => {
      if (inst.state !== 'running') return
      inst.killed = true
      await inst.worker?.terminate()
    })
    return inst.exited.promise
  }

  wait(handle: ExecHandle): Promise<ExitStatus> {
    return this.#get(handle).exited.promise
  }

  async *logs(handle: ExecHandle, opts: { follow: boolean; since?: number }): AsyncIterable<LogLine> {
    const inst = this.#get(handle)
    const since = opts.since ?? 0
    let next = inst.dropped // absolute index of the next line to yield
    for (;;) {
      if (next < inst.dropped) next = inst.dropped
      while (next - inst.dropped < inst.logs.length) {
        const l = inst.logs[next - inst.dropped]!
        next++
        if (l.ts >= since) yield l
      }
      if (!opts.follow || inst.state === 'ended') return
      await new Promise<void>((resolve) => {
        const w = (): void => {
          inst.wake.delete(w)
          resolve()
        }
        inst.wake.add(w)
      })
    }
  }

  async stats(handle: ExecHandle): Promise<UsageStats> {
    const inst = this.#get(handle)
    let heap = 0
    if (inst.state === 'running' && inst.worker) {
      const w = inst.worker
      const [cpu, h] = await Promise.all([
        w.cpuUsage().catch(() => undefined),
        Promise.race([w.getHeapStatistics().catch(() => undefined), new Promise<undefined>((r) => setTimeout(() => r(undefined), 200))]),
      ])
      if (cpu) inst.lastCpuNanos = (cpu.user + cpu.system) * 1000
      heap = h?.used_heap_size ?? 0
    }
    const wasmPages = new Int32Array(inst.control)[1] ?? 0
    return {
      ts: Date.now(),
      cpuNanos: inst.lastCpuNanos,
      memoryBytes: heap + wasmPages * WASM_PAGE,
      memoryLimitBytes: inst.spec.limits.memoryBytes,
      netRxBytes: 0,
      netTxBytes: 0,
      diskReadBytes: 0,
      diskWriteBytes: 0,
    }
  }

  async remove(handle: ExecHandle): Promise<void> {
    const inst = this.#instances.get(handle.ref)
    if (!inst) return
    if (inst.state === 'running') {
      inst.killed = true
      await inst.worker?.terminate()
    }
    if (inst.state !== 'ended') this.#finish(inst, { code: null, oomKilled: false, reason: 'stopped' })
    this.#instances.delete(handle.ref)
  }

  async list(): Promise<ExecHandle[]> {
    return [...this.#instances.values()].map((i) => i.handle)
  }

  async phase(handle: ExecHandle): Promise<InstancePhase> {
    const st = this.#get(handle).state
    return st === 'prepared' ? 'created' : st
  }

  #get(handle: ExecHandle): Instance {
    const inst = this.#instances.get(handle.ref)
    if (!inst) throw new UnknownInstanceError(handle.ref)
    return inst
  }

  #onMessage(inst: Instance, m: WasmWorkerMessage): void {
    if (m.type === 'output') {
      const parts = (inst.partial[m.stream] + m.text).split('\n')
      inst.partial[m.stream] = parts.pop() ?? ''
      for (const line of parts) this.#pushLine(inst, { ts: m.ts, stream: m.stream, line })
      this.#wakeFollowers(inst)
    } else if (m.type === 'exit') {
      if (inst.stopRequested) this.#finish(inst, { code: m.code, oomKilled: false, reason: 'stopped' })
      else this.#finish(inst, { code: m.code, oomKilled: false, reason: 'exited' })
    } else {
      // A trap with the memory at its cap is an out-of-memory end: memory.grow failed and the module gave up.
      const atCap = m.memoryBytes + WASM_PAGE > inst.spec.limits.memoryBytes
      this.#finish(inst, atCap
        ? { code: null, oomKilled: true, reason: 'oom', message: m.message }
        : { code: null, oomKilled: false, reason: 'error', message: m.message })
    }
  }

  #pushLine(inst: Instance, l: LogLine): void {
    inst.logs.push(l)
    if (inst.logs.length > MAX_LOG_LINES) {
      inst.logs.shift()
      inst.dropped++
    }
  }

  #wakeFollowers(inst: Instance): void {
    for (const w of [...inst.wake]) w()
  }

  #finish(inst: Instance, s: Omit<ExitStatus, 'finishedAt'>): void {
    if (inst.state === 'ended') return
    for (const stream of ['stdout', 'stderr'] as const) {
      if (inst.partial[stream].length > 0) this.#pushLine(inst, { ts: Date.now(), stream, line: inst.partial[stream] })
      inst.partial[stream] = ''
    }
    inst.state = 'ended'
    if (inst.cpuWatch) clearInterval(inst.cpuWatch)
    const status: ExitStatus = { ...s, finishedAt: Date.now() }
    inst.status = status
    inst.exited.resolve(status)
    if (inst.worker) void inst.worker.terminate()
    this.#wakeFollowers(inst)
  }
}

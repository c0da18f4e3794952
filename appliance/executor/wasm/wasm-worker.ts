// Runs one WASI module inside a worker thread (started by wasm-executor.ts). What it gives the module:
// its args and env (nothing of the host's), only its state directory preopened as /state, stdout/stderr
// sent to the parent as timestamped chunks, clock sleeps that wake at once on a stop request, and the
// import `noir.stop_requested() -> i32` (1 once the executor asked it to stop: our SIGTERM).
import { parentPort, workerData } from 'node:worker_threads'
import { WASI } from 'node:wasi'
import { wasmApi, type WasmMemory } from './wasm-api.ts'

export interface WasmWorkerData {
  module: Uint8Array
  args: string[]
  env: Record<string, string>
  stateDir: string
  /** Int32Array over a SharedArrayBuffer: [0] = stop requested (0/1), [1] = module memory in pages. */
  control: SharedArrayBuffer
}

export type WasmWorkerMessage =
  | { type: 'output'; stream: 'stdout' | 'stderr'; text: string; ts: number }
  | { type: 'exit'; code: number }
  | { type: 'trap'; message: string; memoryBytes: number }

const port = parentPort
if (!port) throw new Error('wasm-worker.ts runs only as a worker thread')
// A warm (pre-started) worker gets its instance by its first message instead of workerData.
const data = (workerData as WasmWorkerData | undefined) ?? (await new Promise<WasmWorkerData>((resolve) => port.once('message', resolve)))
const control = new Int32Array(data.control)
const post = (m: WasmWorkerMessage): void => port.postMessage(m)

const wasi = new WASI({ version: 'preview1', args: ['module.wasm', ...data.args], env: data.env, preopens: { '/state': data.stateDir }, returnOnExit: true })
const base = (wasi.getImportObject() as { wasi_snapshot_preview1: Record<string, (...a: never[]) => number> }).wasi_snapshot_preview1
let memory: WasmMemory | undefined
/** Publishes the module's memory size (pages) in control[1] for the parent's stats. */
const notePages = (): void => {
  if (memory) Atomics.store(control, 1, memory.buffer.byteLength / 65536)
}
const view = (): DataView => {
  notePages()
  return new DataView(memory!.buffer)
}
const decoder = new TextDecoder()

const ERRNO_SUCCESS = 0
const imports = {
  wasi_snapshot_preview1: {
    ...base,
    fd_write(fd: number, iovs: number, iovsLen: number, nwritten: number): number {
      if (fd !== 1 && fd !== 2) return (base.fd_write as (a: number, b: number, c: number, d: number) => number)(fd, iovs, iovsLen, nwritten)
      const v = view()
      let text = ''
      let total = 0
      for (let i = 0; i < iovsLen; i++) {
        const ptr = v.getUint32(iovs + i * 8, true)
        const len = v.getUint32(iovs + i * 8 + 4, true)
        text += decoder.decode(new Uint8Array(memory!.buffer, ptr, len), { stream: true })
        total += len
      }
      post({ type: 'output', stream: fd === 1 ? 'stdout' : 'stderr', text, ts: Date.now() })
      v.setUint32(nwritten, total, true)
      return ERRNO_SUCCESS
    },
    poll_oneoff(inPtr: number, outPtr: number, nsubs: number, neventsPtr: number): number {
      // Clock-only polls (sleeps) wait on the control word, so a stop request wakes them at once and a
      // terminate() is never stuck behind a long native sleep.
      const v = view()
      let min = Infinity
      let which = -1
      for (let i = 0; i < nsubs; i++) {
        const s = inPtr + i * 48
        if (v.getUint8(s + 8) !== 0) return (base.poll_oneoff as (a: number, b: number, c: number, d: number) => number)(inPtr, outPtr, nsubs, neventsPtr)
        const flags = v.getUint16(s + 40, true)
        const timeout = Number(v.getBigUint64(s + 24, true))
        const relNs = (flags & 1) === 1 ? Math.max(0, timeout - Number(process.hrtime.bigint())) : timeout
        if (relNs < min) { min = relNs; which = i }
      }
      if (which < 0) { v.setUint32(neventsPtr, 0, true); return ERRNO_SUCCESS }
      if (Atomics.load(control, 0) === 0) Atomics.wait(control, 0, 0, min / 1e6)
      const e = outPtr
      v.setBigUint64(e, v.getBigUint64(inPtr + which * 48, true), true) // userdata
      v.setUint16(e + 8, 0, true) // errno
      v.setUint8(e + 10, 0) // type: clock
      v.setUint32(neventsPtr, 1, true)
      return ERRNO_SUCCESS
    },
  },
  noir: {
    stop_requested: (): number => {
      notePages()
      return Atomics.load(control, 0)
    },
  },
}

try {
  if (!wasmApi) throw new Error('this Node has no WebAssembly')
  const mod = await wasmApi.compile(data.module)
  const instance = await wasmApi.instantiate(mod, imports)
  memory = instance.exports.memory as WasmMemory | undefined
  if (!memory) throw new Error('the module exports no memory')
  notePages()
  const code = wasi.start(instance)
  post({ type: 'exit', code })
} catch (err) {
  const mem = memory as WasmMemory | undefined
  post({ type: 'trap', message: err instanceof Error ? err.message : String(err), memoryBytes: mem?.buffer.byteLength ?? 0 })
}

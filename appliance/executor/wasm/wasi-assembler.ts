// Tiny WASI (preview1) modules assembled byte by byte: no wasm toolchain is needed. Used by `noir demo`
// (demo-modules.ts) and the wasm executor's test fixtures. Every module imports the same functions, exports
// `memory` and `_start`, and lays out its memory the same way:
//   0..8    iovec (buf, len)          8       nwritten / nread scratch
//   16..64  one clock subscription    64..96  one event       96  nevents
//   100     fd from path_open         104     bytes read       200/204  environ count / size
//   128..   constant strings          1024..  read buffer      2048..  environ pointers  4096..  environ bytes
// A module that wants the executor's stop request calls the import `noir.stop_requested` (the wasm
// executor's equivalent of SIGTERM, spec/executor.md).

// ---- encoding helpers -------------------------------------------------------------------------------
export const uleb = (n: number | bigint): number[] => {
  let v = BigInt(n)
  const out: number[] = []
  do {
    let b = Number(v & 0x7fn)
    v >>= 7n
    if (v !== 0n) b |= 0x80
    out.push(b)
  } while (v !== 0n)
  return out
}
export const sleb = (n: number | bigint): number[] => {
  let v = BigInt(n)
  const out: number[] = []
  for (;;) {
    const b = Number(v & 0x7fn)
    v >>= 7n
    const done = (v === 0n && (b & 0x40) === 0) || (v === -1n && (b & 0x40) !== 0)
    out.push(done ? b : b | 0x80)
    if (done) return out
  }
}
const str = (s: string): number[] => {
  const b = [...Buffer.from(s, 'utf8')]
  return [...uleb(b.length), ...b]
}
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()]
const section = (id: number, body: number[]): number[] => [id, ...uleb(body.length), ...body]

const I32 = 0x7f
const I64 = 0x7e
const functype = (params: number[], results: number[]): number[] => [0x60, ...vec(params.map((p) => [p])), ...vec(results.map((r) => [r]))]

// ---- instructions ---------------------------------------------------------------------------------
export const op = {
  i32: (n: number): number[] => [0x41, ...sleb(n)],
  i64: (n: number | bigint): number[] => [0x42, ...sleb(n)],
  get: (i: number): number[] => [0x20, ...uleb(i)],
  set: (i: number): number[] => [0x21, ...uleb(i)],
  call: (f: number): number[] => [0x10, ...uleb(f)],
  load: (): number[] => [0x28, 2, 0], // i32.load align=4 offset=0
  load8u: (): number[] => [0x2d, 0, 0],
  store: (): number[] => [0x36, 2, 0],
  store8: (): number[] => [0x3a, 0, 0],
  store64: (): number[] => [0x37, 3, 0],
  drop: [0x1a],
  add: [0x6a],
  sub: [0x6b],
  and: [0x71],
  eq: [0x46],
  eqz: [0x45],
  geu: [0x4f],
  block: [0x02, 0x40],
  loop: [0x03, 0x40],
  if: [0x04, 0x40],
  else: [0x05],
  end: [0x0b],
  br: (d: number): number[] => [0x0c, ...uleb(d)],
  brIf: (d: number): number[] => [0x0d, ...uleb(d)],
  unreachable: [0x00],
  memGrow: [0x40, 0x00],
}

/** Imported functions, by index. */
export const F = { fd_write: 0, proc_exit: 1, environ_sizes_get: 2, environ_get: 3, poll_oneoff: 4, fd_read: 5, path_open: 6, stop_requested: 7 }
const IMPORT_COUNT = 8
const STR_BASE = 128

/** The body of `_start`: how many i32 locals, and its instructions (without the final `end`). */
export interface WasiBody {
  locals: number
  code: number[]
}

/**
 * Helpers bound to one table of constant strings (laid out from address 128): print one, print bytes at a
 * dynamic address, exit, sleep, check an errno; and `module()` to assemble a body into a module's bytes.
 */
export function wasiProgram<K extends string>(strings: Record<K, string>) {
  const strAt = {} as Record<K, { ptr: number; len: number }>
  let p = STR_BASE
  for (const [k, v] of Object.entries(strings) as Array<[K, string]>) {
    strAt[k] = { ptr: p, len: Buffer.byteLength(v) }
    p += Buffer.byteLength(v)
  }
  /** Writes `len` bytes at `ptr` to fd 1 (ptr and len are instruction sequences). */
  const printDyn = (ptr: number[], len: number[]): number[] => [
    ...op.i32(0), ...ptr, ...op.store(),
    ...op.i32(4), ...len, ...op.store(),
    ...op.i32(1), ...op.i32(0), ...op.i32(1), ...op.i32(8), ...op.call(F.fd_write), ...op.drop,
  ]
  const print = (s: K): number[] => printDyn(op.i32(strAt[s].ptr), op.i32(strAt[s].len))
  const exit = (code: number): number[] => [...op.i32(code), ...op.call(F.proc_exit)]
  /** Sleeps `ms` with poll_oneoff on a relative monotonic clock subscription. */
  const sleepMs = (ms: number): number[] => [
    ...op.i32(16 + 8), ...op.i32(0), ...op.store8(), // tag: clock
    ...op.i32(16 + 16), ...op.i32(1), ...op.store(), // clock id: monotonic
    ...op.i32(16 + 24), ...op.i64(BigInt(ms) * 1_000_000n), ...op.store64(), // timeout, ns
    ...op.i32(16), ...op.i32(64), ...op.i32(1), ...op.i32(96), ...op.call(F.poll_oneoff), ...op.drop,
  ]
  /** `if errno != 0 then proc_exit(100 + errno)` for the value on the stack. */
  const checkErrno = (tmp: number): number[] => [
    ...op.set(tmp), ...op.get(tmp), ...op.if, ...op.get(tmp), ...op.i32(100), ...op.add, ...op.call(F.proc_exit), ...op.end,
  ]
  /** The bytes of a WASI module running `body`. `maxPages` declares a memory maximum (none by default). */
  const module = (body: WasiBody, opts: { maxPages?: number } = {}): Uint8Array => {
    const imp = (mod: string, name: string, type: number): number[] => [...str(mod), ...str(name), 0x00, ...uleb(type)]
    const types = [
      functype([I32, I32, I32, I32], [I32]), // 0: fd_write, poll_oneoff, fd_read
      functype([I32], []), // 1: proc_exit
      functype([I32, I32], [I32]), // 2: environ_*
      functype([], []), // 3: _start
      functype([], [I32]), // 4: stop_requested
      functype([I32, I32, I32, I32, I32, I64, I64, I32, I32], [I32]), // 5: path_open
    ]
    const W = 'wasi_snapshot_preview1'
    const imports = [
      imp(W, 'fd_write', 0),
      imp(W, 'proc_exit', 1),
      imp(W, 'environ_sizes_get', 2),
      imp(W, 'environ_get', 2),
      imp(W, 'poll_oneoff', 0),
      imp(W, 'fd_read', 0),
      imp(W, 'path_open', 5),
      imp('noir', 'stop_requested', 4),
    ]
    const limits = opts.maxPages === undefined ? [0x00, ...uleb(1)] : [0x01, ...uleb(1), ...uleb(opts.maxPages)]
    const data = [...Buffer.from(Object.values<string>(strings).join(''), 'utf8')]
    const fn = [...(body.locals > 0 ? vec([[...uleb(body.locals), I32]]) : vec([])), ...body.code, ...op.end]
    return Uint8Array.from([
      0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
      ...section(1, vec(types)),
      ...section(2, vec(imports)),
      ...section(3, vec([uleb(3)])),
      ...section(5, vec([limits])),
      ...section(7, vec([[...str('memory'), 0x02, 0x00], [...str('_start'), 0x00, ...uleb(IMPORT_COUNT)]])),
      ...section(10, vec([[...uleb(fn.length), ...fn]])),
      ...section(11, vec([[0x00, ...op.i32(STR_BASE), ...op.end, ...uleb(data.length), ...data]])),
    ])
  }
  return { strAt, print, printDyn, exit, sleepMs, checkErrno, module }
}

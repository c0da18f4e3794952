// Tiny WASI (preview1) modules for the wasm executor's tests, assembled here byte by byte: no wasm
// toolchain is needed. Every module imports the same functions, exports `memory` and `_start`, and lays
// out its memory the same way:
//   0..8    iovec (buf, len)          8       nwritten / nread scratch
//   16..64  one clock subscription    64..96  one event       96  nevents
//   100     fd from path_open         104     bytes read       200/204  environ count / size
//   128..   constant strings          1024..  read buffer      2048..  environ pointers  4096..  environ bytes
// A fixture that wants the executor's stop request calls the import `noir.stop_requested` (the wasm
// executor's equivalent of SIGTERM, spec/executor.md).
import type { ComplianceScenario } from './executor-compliance.ts'
import { COMPLIANCE_EXIT_CODE } from './executor-compliance.ts'

// ---- encoding helpers -------------------------------------------------------------------------------
const uleb = (n: number | bigint): number[] => {
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
const sleb = (n: number | bigint): number[] => {
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
const op = {
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

// Imported functions, by index.
const F = { fd_write: 0, proc_exit: 1, environ_sizes_get: 2, environ_get: 3, poll_oneoff: 4, fd_read: 5, path_open: 6, stop_requested: 7 }
const IMPORT_COUNT = 8

// Constant strings in the data segment.
const STR_BASE = 128
const strings = { hello: 'hello\n', tick: 'tick 0\n', term: 'term\n', outTxt: 'out.txt', persisted: 'persisted\n' }
const strAt: Record<keyof typeof strings, { ptr: number; len: number }> = (() => {
  let p = STR_BASE
  const out = {} as Record<keyof typeof strings, { ptr: number; len: number }>
  for (const [k, v] of Object.entries(strings) as Array<[keyof typeof strings, string]>) {
    out[k] = { ptr: p, len: Buffer.byteLength(v) }
    p += Buffer.byteLength(v)
  }
  return out
})()

/** Writes `len` bytes at `ptr` to fd 1 (ptr and len are instruction sequences). */
const printDyn = (ptr: number[], len: number[]): number[] => [
  ...op.i32(0), ...ptr, ...op.store(),
  ...op.i32(4), ...len, ...op.store(),
  ...op.i32(1), ...op.i32(0), ...op.i32(1), ...op.i32(8), ...op.call(F.fd_write), ...op.drop,
]
const print = (s: keyof typeof strings): number[] => printDyn(op.i32(strAt[s].ptr), op.i32(strAt[s].len))
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

interface Body {
  locals: number // i32 locals
  code: number[]
}

const bodies: Record<ComplianceScenario | 'memory-hog', () => Body> = {
  'exit-zero': () => ({ locals: 0, code: [...print('hello'), ...exit(0)] }),
  'exit-code': () => ({ locals: 0, code: exit(COMPLIANCE_EXIT_CODE) }),
  env: () => {
    // locals: 0 i, 1 end, 2 inValue, 3 valueStart, 4 byte
    const [i, end, inval, vstart, b] = [0, 1, 2, 3, 4]
    return {
      locals: 5,
      code: [
        ...op.i32(200), ...op.i32(204), ...op.call(F.environ_sizes_get), ...op.drop,
        ...op.i32(2048), ...op.i32(4096), ...op.call(F.environ_get), ...op.drop,
        ...op.i32(4096), ...op.set(i),
        ...op.i32(4096), ...op.i32(204), ...op.load(), ...op.add, ...op.set(end),
        ...op.block, ...op.loop,
        ...op.get(i), ...op.get(end), ...op.geu, ...op.brIf(1),
        ...op.get(i), ...op.load8u(), ...op.set(b),
        ...op.get(b), ...op.i32(61), ...op.eq, ...op.get(inval), ...op.eqz, ...op.and,
        ...op.if,
        ...op.i32(1), ...op.set(inval), ...op.get(i), ...op.i32(1), ...op.add, ...op.set(vstart),
        ...op.else,
        ...op.get(b), ...op.eqz,
        ...op.if,
        ...op.get(inval),
        ...op.if,
        ...op.get(i), ...op.i32(10), ...op.store8(),
        ...printDyn(op.get(vstart), [...op.get(i), ...op.i32(1), ...op.add, ...op.get(vstart), ...op.sub]),
        ...op.end,
        ...op.i32(0), ...op.set(inval),
        ...op.end,
        ...op.end,
        ...op.get(i), ...op.i32(1), ...op.add, ...op.set(i),
        ...op.br(0),
        ...op.end, ...op.end,
        ...exit(0),
      ],
    }
  },
  'log-stream': () => {
    const code: number[] = []
    for (let n = 1; n <= 5; n++) {
      code.push(...op.i32(strAt.tick.ptr + 5), ...op.i32(48 + n), ...op.store8(), ...print('tick'), ...sleepMs(200))
    }
    return { locals: 0, code: [...code, ...exit(0)] }
  },
  graceful: () => ({
    locals: 0,
    code: [
      ...op.loop,
      ...op.call(F.stop_requested),
      ...op.if, ...print('term'), ...exit(0), ...op.end,
      ...sleepMs(50),
      ...op.br(0),
      ...op.end,
      ...exit(1),
    ],
  }),
  'ignore-term': () => ({ locals: 0, code: [...op.loop, ...sleepMs(50), ...op.br(0), ...op.end, ...exit(1)] }),
  busy: () => ({
    // grow to 17 pages (~1 MiB) and keep writing across it forever
    locals: 1,
    code: [
      ...op.i32(16), ...op.memGrow, ...op.drop,
      ...op.loop,
      ...op.get(0), ...op.i32(1), ...op.add, ...op.i32(0xfffff), ...op.and, ...op.set(0),
      ...op.get(0), ...op.i32(65536), ...op.add, ...op.get(0), ...op.store8(),
      ...op.br(0),
      ...op.end,
      ...exit(1),
    ],
  }),
  'state-write': () => ({
    locals: 1,
    code: [
      // path_open(dirfd 3, dirflags 0, "out.txt", oflags CREAT|TRUNC, rights fd_write|fd_read, 0, fdflags 0, &fd)
      ...op.i32(3), ...op.i32(0), ...op.i32(strAt.outTxt.ptr), ...op.i32(strAt.outTxt.len), ...op.i32(9),
      ...op.i64(66), ...op.i64(0), ...op.i32(0), ...op.i32(100), ...op.call(F.path_open), ...checkErrno(0),
      ...op.i32(0), ...op.i32(strAt.persisted.ptr), ...op.store(),
      ...op.i32(4), ...op.i32(strAt.persisted.len), ...op.store(),
      ...op.i32(100), ...op.load(), ...op.i32(0), ...op.i32(1), ...op.i32(8), ...op.call(F.fd_write), ...checkErrno(0),
      ...exit(0),
    ],
  }),
  'state-read': () => ({
    locals: 1,
    code: [
      ...op.i32(3), ...op.i32(0), ...op.i32(strAt.outTxt.ptr), ...op.i32(strAt.outTxt.len), ...op.i32(0),
      ...op.i64(2), ...op.i64(0), ...op.i32(0), ...op.i32(100), ...op.call(F.path_open), ...checkErrno(0),
      ...op.i32(0), ...op.i32(1024), ...op.store(),
      ...op.i32(4), ...op.i32(256), ...op.store(),
      ...op.i32(100), ...op.load(), ...op.i32(0), ...op.i32(1), ...op.i32(104), ...op.call(F.fd_read), ...checkErrno(0),
      ...printDyn(op.i32(1024), [...op.i32(104), ...op.load()]),
      ...exit(0),
    ],
  }),
  sleep: () => ({ locals: 0, code: [...op.loop, ...sleepMs(100), ...op.br(0), ...op.end, ...exit(0)] }),
  'memory-hog': () => ({
    // grow one page (64 KiB) at a time forever; trap when the memory cannot grow any more
    locals: 0,
    code: [
      ...op.loop,
      ...op.i32(1), ...op.memGrow, ...op.i32(-1), ...op.eq,
      ...op.if, ...op.unreachable, ...op.end,
      ...op.br(0),
      ...op.end,
    ],
  }),
}

export type WasmFixture = keyof typeof bodies

/** The bytes of a WASI module for `fixture`. `maxPages` declares a memory maximum (none by default). */
export function wasmFixture(fixture: WasmFixture, opts: { maxPages?: number } = {}): Uint8Array {
  const body = bodies[fixture]()
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
  const data = [...Buffer.from(Object.values(strings).join(''), 'utf8')]
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

// Tiny WASI (preview1) modules for the wasm executor's tests, assembled by the product's assembler
// (appliance/executor/wasm/wasi-assembler.ts, which documents the memory layout). A fixture that wants the
// executor's stop request calls the import `noir.stop_requested` (the wasm executor's SIGTERM).
import type { ComplianceScenario } from './executor-compliance.ts'
import { COMPLIANCE_EXIT_CODE } from './executor-compliance.ts'
import { F, op, wasiProgram, type WasiBody } from '../executor/wasm/wasi-assembler.ts'

const program = wasiProgram({ hello: 'hello\n', tick: 'tick 0\n', term: 'term\n', outTxt: 'out.txt', persisted: 'persisted\n' })
const { strAt, print, printDyn, exit, sleepMs, checkErrno } = program
type Body = WasiBody

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
  return program.module(bodies[fixture](), opts)
}

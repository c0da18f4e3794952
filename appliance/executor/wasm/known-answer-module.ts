// The WASI module of known-answer validation tasks (trust/known-answer.ts is its reference): finds SEED=...
// in its environment, hashes the value (FNV-1a, then rounds of xor-shift-multiply), prints 8 hex digits and a
// newline, exits 0; exits 3 when SEED is missing. Assembled byte by byte like the demo modules.
import { KNOWN_ANSWER_ROUNDS } from '../../../trust/known-answer.ts'
import { F, op, wasiProgram } from './wasi-assembler.ts'

const i32xor = [0x73]
const i32mul = [0x6c]
const i32shrU = [0x76]
const i32ltU = [0x49]
const select = [0x1b]

// locals: 0 i (entry index / byte index), 1 count, 2 h, 3 p (pointer), 4 r, 5 nib, 6 found
const [I, COUNT, H, P, R, NIB, FOUND] = [0, 1, 2, 3, 4, 5, 6]
const SEED_LE = 0x44454553 // "SEED" read as a little-endian i32

export function knownAnswerModule(): Uint8Array {
  const { printDyn, exit, module } = wasiProgram({ pad: '\n' })
  const code: number[] = [
    // environ_sizes_get(200, 204); environ_get(2048, 4096)
    ...op.i32(200), ...op.i32(204), ...op.call(F.environ_sizes_get), ...op.drop,
    ...op.i32(2048), ...op.i32(4096), ...op.call(F.environ_get), ...op.drop,
    ...op.i32(200), ...op.load(), ...op.set(COUNT),
    ...op.i32(0), ...op.set(FOUND),
    // for each entry: p = ptrs[i]; if *(i32*)p == "SEED" && p[4] == '=' -> found = p + 5
    ...op.i32(0), ...op.set(I),
    ...op.block, ...op.loop,
    ...op.get(I), ...op.get(COUNT), ...op.geu, ...op.brIf(1),
    ...op.get(I), ...op.i32(4), ...i32mul, ...op.i32(2048), ...op.add, ...op.load(), ...op.set(P),
    ...op.get(P), ...op.load(), ...op.i32(SEED_LE), ...op.eq,
    ...op.if,
    ...op.get(P), ...op.i32(4), ...op.add, ...op.load8u(), ...op.i32(61), ...op.eq,
    ...op.if, ...op.get(P), ...op.i32(5), ...op.add, ...op.set(FOUND), ...op.end,
    ...op.end,
    ...op.get(I), ...op.i32(1), ...op.add, ...op.set(I),
    ...op.br(0),
    ...op.end, ...op.end,
    ...op.get(FOUND), ...op.eqz, ...op.if, ...exit(3), ...op.end,
    // FNV-1a over the value's bytes up to its NUL
    ...op.i32(0x811c9dc5 | 0), ...op.set(H),
    ...op.get(FOUND), ...op.set(P),
    ...op.block, ...op.loop,
    ...op.get(P), ...op.load8u(), ...op.eqz, ...op.brIf(1),
    ...op.get(H), ...op.get(P), ...op.load8u(), ...i32xor, ...op.i32(0x01000193), ...i32mul, ...op.set(H),
    ...op.get(P), ...op.i32(1), ...op.add, ...op.set(P),
    ...op.br(0),
    ...op.end, ...op.end,
    // rounds: h = (h ^ (h >>> 15)) * 0x2c1b3c6d; h ^= r
    ...op.i32(0), ...op.set(R),
    ...op.block, ...op.loop,
    ...op.get(R), ...op.i32(KNOWN_ANSWER_ROUNDS), ...op.geu, ...op.brIf(1),
    ...op.get(H), ...op.get(H), ...op.i32(15), ...i32shrU, ...i32xor, ...op.i32(0x2c1b3c6d), ...i32mul, ...op.get(R), ...i32xor, ...op.set(H),
    ...op.get(R), ...op.i32(1), ...op.add, ...op.set(R),
    ...op.br(0),
    ...op.end, ...op.end,
    // 8 hex digits at 1024.., '\n' at 1032
    ...op.i32(0), ...op.set(I),
    ...op.block, ...op.loop,
    ...op.get(I), ...op.i32(8), ...op.geu, ...op.brIf(1),
    ...op.get(H), ...op.i32(28), ...op.get(I), ...op.i32(4), ...i32mul, ...op.sub, ...i32shrU, ...op.i32(15), ...op.and, ...op.set(NIB),
    ...op.i32(1024), ...op.get(I), ...op.add,
    ...op.get(NIB), ...op.i32(48), ...op.add, ...op.get(NIB), ...op.i32(87), ...op.add, ...op.get(NIB), ...op.i32(10), ...i32ltU, ...select,
    ...op.store8(),
    ...op.get(I), ...op.i32(1), ...op.add, ...op.set(I),
    ...op.br(0),
    ...op.end, ...op.end,
    ...op.i32(1032), ...op.i32(10), ...op.store8(),
    ...printDyn(op.i32(1024), op.i32(9)),
    ...exit(0),
  ]
  return module({ locals: 7, code })
}

// Caps a WebAssembly module's memory by rewriting its binary: every memory it defines or imports gets
// `maximum = min(declared maximum, limit)`, so `memory.grow` past the limit fails inside the module (it
// returns -1) instead of taking the host's memory. A module whose *minimum* is already above the limit is
// refused before it runs.
import { InvalidExecSpecError } from '../../errors.ts'

export const WASM_PAGE = 65536

interface Reader {
  bytes: Uint8Array
  pos: number
}

function readUleb(r: Reader): number {
  let result = 0
  let shift = 0
  for (;;) {
    const b = r.bytes[r.pos++]
    if (b === undefined) throw new InvalidExecSpecError('truncated wasm module')
    result += (b & 0x7f) * 2 ** shift
    if ((b & 0x80) === 0) return result
    shift += 7
    if (shift > 35) throw new InvalidExecSpecError('malformed LEB128 in wasm module')
  }
}

function uleb(n: number): number[] {
  const out: number[] = []
  do {
    let b = n % 128
    n = Math.floor(n / 128)
    if (n !== 0) b |= 0x80
    out.push(b)
  } while (n !== 0)
  return out
}

/** Reads limits at r.pos and returns the re-encoded, capped limits. */
function capLimits(r: Reader, limitPages: number): number[] {
  const flags = r.bytes[r.pos++]
  if (flags === undefined) throw new InvalidExecSpecError('truncated wasm module')
  if (flags > 1) throw new InvalidExecSpecError(`unsupported memory kind (flags ${flags}: shared or 64-bit memory)`)
  const min = readUleb(r)
  const max = flags === 1 ? readUleb(r) : Infinity
  if (min > limitPages) {
    throw new InvalidExecSpecError(`the module needs at least ${min * WASM_PAGE} bytes of memory, above the limit of ${limitPages * WASM_PAGE}`)
  }
  return [0x01, ...uleb(min), ...uleb(Math.min(max, limitPages))]
}

function skipName(r: Reader): void {
  const len = readUleb(r)
  r.pos += len
}

function skipLimits(r: Reader): void {
  const flags = readUleb(r)
  readUleb(r)
  if (flags & 1) readUleb(r)
}

/** Returns a copy of `module` whose memories cannot grow beyond `memoryBytes` (rounded down to pages). */
export function capModuleMemory(module: Uint8Array, memoryBytes: number): Uint8Array {
  const limitPages = Math.floor(memoryBytes / WASM_PAGE)
  if (limitPages < 1) throw new InvalidExecSpecError('limits.memoryBytes is below one wasm page (64 KiB)')
  if (module.length < 8 || module[0] !== 0x00 || module[1] !== 0x61 || module[2] !== 0x73 || module[3] !== 0x6d) {
    throw new InvalidExecSpecError('not a WebAssembly module (bad magic)')
  }
  const out: number[] = [...module.subarray(0, 8)]
  const r: Reader = { bytes: module, pos: 8 }
  while (r.pos < module.length) {
    const secStart = r.pos
    const id = module[r.pos++]!
    const size = readUleb(r)
    const start = r.pos
    const end = start + size
    if (end > module.length) throw new InvalidExecSpecError('truncated wasm module')
    if (id === 5) {
      const count = readUleb(r)
      const body: number[] = [...uleb(count)]
      for (let i = 0; i < count; i++) body.push(...capLimits(r, limitPages))
      out.push(5, ...uleb(body.length), ...body)
    } else if (id === 2) {
      const count = readUleb(r)
      const body: number[] = [...uleb(count)]
      for (let i = 0; i < count; i++) {
        const entryStart = r.pos
        skipName(r)
        skipName(r)
        const kind = module[r.pos++]
        if (kind === 2) {
          body.push(...module.subarray(entryStart, r.pos))
          body.push(...capLimits(r, limitPages))
          continue
        }
        if (kind === 0) readUleb(r) // function: type index
        else if (kind === 1) { r.pos++; skipLimits(r) } // table: reftype, limits
        else if (kind === 3) r.pos += 2 // global: valtype, mutability
        else if (kind === 4) { r.pos++; readUleb(r) } // tag: attribute, type index
        else throw new InvalidExecSpecError(`unknown import kind ${kind}`)
        body.push(...module.subarray(entryStart, r.pos))
      }
      out.push(2, ...uleb(body.length), ...body)
    } else {
      for (const b of module.subarray(secStart, end)) out.push(b) // a loop: spreading a large section overflows the stack
    }
    r.pos = end
  }
  return Uint8Array.from(out)
}

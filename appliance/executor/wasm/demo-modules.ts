// The WebAssembly workloads of `noir demo` (when Docker is not there): a service that prints a line every
// half second until the executor asks it to stop, and a job that prints five steps and exits 0.
import { F, op, wasiProgram } from './wasi-assembler.ts'

const program = wasiProgram({ tick: 'hello from a noir wasm service\n', bye: 'stopping on request\n', step: 'job step 0 of 5\n', done: 'job done\n' })

/** A service: one line every 500 ms; exits 0 when the executor requests a stop. */
export function demoServiceModule(): Uint8Array {
  const { print, exit, sleepMs, module } = program
  return module({
    locals: 0,
    code: [
      ...op.loop,
      ...op.call(F.stop_requested),
      ...op.if, ...print('bye'), ...exit(0), ...op.end,
      ...print('tick'),
      ...sleepMs(500),
      ...op.br(0),
      ...op.end,
      ...exit(1),
    ],
  })
}

/** A finite job: `job step N of 5` five times, then `job done`, exit 0. */
export function demoJobModule(): Uint8Array {
  const { print, exit, sleepMs, module, strAt } = program
  const code: number[] = []
  for (let n = 1; n <= 5; n++) code.push(...op.i32(strAt.step.ptr + 9), ...op.i32(48 + n), ...op.store8(), ...print('step'), ...sleepMs(200))
  return module({ locals: 0, code: [...code, ...print('done'), ...exit(0)] })
}

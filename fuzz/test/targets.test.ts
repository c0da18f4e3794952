// The fuzz suite, short: a few thousand hostile inputs per target (FUZZ_RUNS to change; `npm run fuzz` for
// the long run). A failure prints its seed and the shrunk input; FUZZ_SEED replays it.
import t from 'tap'
import * as fc from 'fast-check'
import { isTypedError, targets } from '../targets.ts'

const runs = Number(process.env.FUZZ_RUNS ?? 2000)
const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : undefined

for (const target of targets) {
  t.test(`${target.name}: every hostile input is accepted or refused with a typed error`, async (t) => {
    await fc.assert(
      fc.asyncProperty(target.input, async (x) => {
        try {
          await target.run(x)
        } catch (err) {
          if (!isTypedError(err)) throw new Error(`not a typed error: ${(err as Error)?.name}: ${(err as Error)?.message}`, { cause: err })
        }
      }),
      { numRuns: runs, ...(seed !== undefined ? { seed } : {}) },
    )
    t.pass(`${runs} inputs`)
  })
}

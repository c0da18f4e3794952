// `npm run fuzz`: the long run, every target in turn (FUZZ_RUNS per target, default 1,000,000), printing
// inputs per second and the seed of any failure.
import * as fc from 'fast-check'
import { isTypedError, targets } from './targets.ts'

const runs = Number(process.env.FUZZ_RUNS ?? 1_000_000)
const only = process.argv.slice(2)
let failed = 0
for (const target of targets.filter((x) => only.length === 0 || only.some((o) => x.name.includes(o)))) {
  const t0 = performance.now()
  const r = await fc.check(
    fc.asyncProperty(target.input, async (x) => {
      try {
        await target.run(x)
      } catch (err) {
        if (!isTypedError(err)) throw err
      }
    }),
    { numRuns: runs },
  )
  const s = (performance.now() - t0) / 1000
  if (r.failed) {
    failed++
    console.log(`FAIL ${target.name}: seed ${r.seed}, counterexample ${JSON.stringify(r.counterexample)?.slice(0, 500)}: ${String(r.errorInstance)}`)
  } else console.log(`ok   ${target.name}: ${r.numRuns} inputs in ${s.toFixed(1)} s (${Math.round(r.numRuns / s)}/s)`)
}
process.exitCode = failed > 0 ? 1 : 0

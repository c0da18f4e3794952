// `npm run bench`: runs every bench/*.bench.ts in its own process (so one area's heap and sockets do not
// skew another's) and prints each area's figures beside its same-run baseline.
// `npm run bench -- identity core` runs only the named areas.
import { readdirSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const only = process.argv.slice(2)
const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.ts'))
  .filter((f) => only.length === 0 || only.includes(f.replace(/\.bench\.ts$/, '')))
  .sort()
console.log(`# NoirLedger benchmarks (${process.version}, ${new Date().toISOString()})`)
let failed = 0
for (const f of files) {
  console.log(`\n# ${f}`)
  const r = spawnSync(process.execPath, ['--expose-gc', join(here, f)], { stdio: 'inherit' })
  if (r.status !== 0) {
    failed++
    console.log(`  (${f} exited with ${r.status ?? r.signal})`)
  }
}
process.exitCode = failed > 0 ? 1 : 0

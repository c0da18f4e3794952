// `npm run chaos`: runs seeded schedules against five real daemons in network namespaces and checks the
// invariants after each (spec/chaos.md). Long mode by default (100 schedules from seed 1).
//
//   npm run chaos                              100 schedules, seeds 1..100
//   npm run chaos -- --schedules 20 --from 500 seeds 500..519
//   npm run chaos -- --seed 42                 replays seed 42 (prints its schedule first)
// Needs root (namespaces), iproute2, iptables, Docker and the local image noir/busybox. Exit 1 on a violation.
import { parseArgs } from 'node:util'
import { docker, dockerImage, netns } from '../scripts/testing/requirements.ts'
import { describe, generateSchedule } from './schedule.ts'
import { runSchedule, type ScheduleResult } from './runner.ts'
import { replayCommand, scheduleLine, summary } from './report.ts'

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    schedules: { type: 'string', default: '100' },
    from: { type: 'string', default: '1' },
    verbose: { type: 'boolean', default: false },
  },
})
// Contract leases have landed: what they end is counted like any other violation (spec/chaos.md).
const allow = false
const missing = [netns, docker, dockerImage('noir/busybox:latest')].map((r) => r.missing()).filter((m) => m !== undefined)
if (missing.length > 0) {
  console.error(`chaos: cannot run here: ${missing.join('; ')}`)
  process.exit(2)
}
const seeds = values.seed !== undefined
  ? [Number(values.seed)]
  : Array.from({ length: Number(values.schedules) }, (_, i) => Number(values.from) + i)
if (seeds.some((s) => !Number.isInteger(s) || s < 0)) {
  console.error('chaos: seeds are whole numbers >= 0')
  process.exit(2)
}

let stopping = false
process.on('SIGINT', () => {
  if (stopping) process.exit(130)
  stopping = true
  console.error('chaos: finishing the current schedule (Ctrl-C again to abort at once)')
})

const results: ScheduleResult[] = []
const harnessErrors: number[] = []
for (const [i, seed] of seeds.entries()) {
  if (stopping) break
  const schedule = generateSchedule(seed)
  if (seeds.length === 1 || values.verbose) for (const l of describe(schedule)) console.log(`  ${l}`)
  let r: ScheduleResult
  try {
    r = await runSchedule(schedule, { allowKnownUntilLeases: allow, ...(values.verbose ? { log: (l: string) => console.log(`  ${l}`) } : {}) })
  } catch (err) {
    // the harness failed (no cluster came up): not a violation, not a schedule run; reported and counted
    harnessErrors.push(seed)
    console.log(`[${i + 1}/${seeds.length}] seed ${seed}: HARNESS ERROR (schedule not run): ${(err as Error).message.split('\n')[0]}`)
    continue
  }
  results.push(r)
  console.log(scheduleLine(r, i, seeds.length))
  if (r.violations.length > 0) {
    for (const v of r.violations) console.log(`    ${v.invariant}${v.awaitsLeases ? ' [known until leases]' : ''}: ${v.detail}`)
    console.log(`    replay: ${replayCommand(seed, allow)}`)
  }
  if (values.verbose) for (const n of r.notes) console.log(`    note: ${n}`)
}
console.log('')
for (const l of summary(results, allow)) console.log(l)
if (harnessErrors.length > 0) console.log(`harness errors (schedules not run): ${harnessErrors.length} (seeds ${harnessErrors.join(', ')})`)
process.exit(results.some((r) => r.violations.length > 0) || harnessErrors.length > 0 ? 1 : 0)

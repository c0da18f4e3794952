// Shared by the crash-*.test.ts files: walks the crash cases of one part of CRASH_CASES on four real daemons
// (chaos/crash-steps.ts), one test per boundary. Split over files so that each stays well inside tap's
// per-file time-out and two run side by side.
import type { Test } from 'tap'
import { docker, dockerImage, requireOrSkip } from '../../scripts/testing/requirements.ts'
import { CrashRig, CRASH_CASES, type CrashCase } from '../crash-steps.ts'

export async function walk(t: Test, pick: (c: CrashCase) => boolean): Promise<void> {
  if (!requireOrSkip(t, docker, dockerImage('noir/busybox:latest'))) return
  t.setTimeout(900_000)
  const rig = new CrashRig()
  t.teardown(() => rig.stop())
  await rig.start()
  // CRASH_ONLY=<point> runs one boundary (to reproduce a failure)
  const only = process.env.CRASH_ONLY
  for (const c of CRASH_CASES.filter(pick).filter((x) => only === undefined || x.point === only)) {
    await t.test(`kill -9 at ${c.point} (${c.phase}, on the ${c.role})`, async (t) => {
      const r = await rig.run(c)
      t.ok(r.died, `the ${c.role} died at ${c.point} (the scenario reached the boundary)`)
      t.same(r.violations.map((v) => `${v.invariant}: ${v.detail}`), [], 'no invariant violated, after it settled and after its stop')
      if (c.phase !== 'stop') t.equal(r.running, 2, 'two replicas run once it settled, none doubled')
      t.equal(r.leftContainers, 0, 'after the stop no container of it runs anywhere')
      t.equal(r.leftContracts, 0, 'after the stop no provider holds a live contract of it')
      t.comment(`${c.point}: create acknowledged before the crash: ${r.ackedBeforeCrash}; settled ${r.settledMs} ms after the restart; ms spent: ${r.laps}`)
    })
  }
}

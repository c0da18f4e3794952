// A node that cheats, for tests only (trust/faults.ts; spec/trust.md "Fault injection"): it wraps the real
// runner and capacity so that real daemons lie the way the trust layer must catch: stdout served altered
// (a wrong result), runs accepted and never run (dropped work), free capacity claimed several times over.
// Built only when config `trust.testFaults` is set and NOIR_TEST_FAULTS=1.
import type { CapacityPort, InstanceStatus, LogEntry, WorkloadRunner } from '../../actors/provider/ports.ts'
import type { Capacity } from '../../actors/placement/offer.ts'
import { faultDraw, type TestFaults } from '../../trust/faults.ts'

const DROPPED = 'dropped-'

/** Reverses each stdout line: output that looks like a result and is not the one the work gives. */
const alter = (l: LogEntry): LogEntry => (l.stream === 'stdout' ? { ...l, line: [...l.line].reverse().join('') || 'x' } : l)

export function cheatingRunner(real: WorkloadRunner, f: TestFaults): WorkloadRunner {
  const runner: WorkloadRunner = {
    runtimes: () => real.runtimes(),
    start: async (o) => {
      // a job run dropped: accepted and answered as started, never run, never reported
      if (o.workload.kind === 'job' && faultDraw(`drop:${o.contractId}`) < f.dropWork) return { instanceId: `${DROPPED}${o.contractId}` }
      return real.start(o)
    },
    stop: (id) => (id.startsWith(DROPPED) ? Promise.resolve() : real.stop(id)),
    onStatus: (listener: (s: InstanceStatus) => void) => real.onStatus(listener),
    logs: async (id, o) => {
      if (id.startsWith(DROPPED)) return { lines: [], ended: false }
      const r = await real.logs(id, o)
      return faultDraw(`wrong:${id}`) < f.wrongResults ? { ...r, lines: r.lines.map(alter) } : r
    },
  }
  if (real.missing) runner.missing = (w) => real.missing!(w)
  if (real.resume) runner.resume = (id) => real.resume!(id)
  if (real.liveInstances) runner.liveInstances = () => real.liveInstances!()
  return runner
}

export function inflatedCapacity(real: CapacityPort, f: TestFaults): CapacityPort {
  if (f.inflateCapacity === 1) return real
  const k = f.inflateCapacity
  return {
    free: async (): Promise<Capacity> => {
      const c = await real.free()
      return { ...c, cpu: c.cpu * k, memoryBytes: Math.floor(c.memoryBytes * k), diskBytes: Math.floor(c.diskBytes * k) }
    },
    reserve: (o) => real.reserve(o),
    commit: (id) => real.commit(id),
    release: (id) => real.release(id),
  }
}

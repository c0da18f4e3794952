// A node that cheats, for tests only (trust/faults.ts; spec/trust.md "Fault injection"): it wraps the real
// runner and capacity so that real daemons lie the way the trust layer must catch: stdout served altered
// (a wrong result), runs accepted and never run (dropped work), free capacity claimed several times over,
// memory claimed and reserved that its containers do not get.
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
      // memory it does not have: the container gets the reserved memory divided by the factor
      if (f.shortMemory !== 1) return real.start({ ...o, workload: { ...o.workload, resources: { ...o.workload.resources, memoryBytes: shortOf(o.workload.resources.memoryBytes, f) } } })
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

const shortOf = (bytes: number, f: TestFaults): number => Math.max(16 * 1024 * 1024, Math.floor(bytes / f.shortMemory))

export function inflatedCapacity(real: CapacityPort, f: TestFaults): CapacityPort {
  if (f.inflateCapacity === 1 && f.shortMemory === 1) return real
  const k = f.inflateCapacity
  return {
    free: async (): Promise<Capacity> => {
      const c = await real.free()
      return { ...c, cpu: c.cpu * k, memoryBytes: Math.floor(c.memoryBytes * k * f.shortMemory), diskBytes: Math.floor(c.diskBytes * k) }
    },
    // short of memory, its allocator believes its claim: the reservation of k times what it has succeeds
    reserve: (o) => real.reserve(f.shortMemory === 1 ? o : { ...o, resources: { ...o.resources, memoryBytes: shortOf(o.resources.memoryBytes, f) } }),
    commit: (id) => real.commit(id),
    release: (id) => real.release(id),
  }
}

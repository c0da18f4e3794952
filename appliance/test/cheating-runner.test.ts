// The test-only cheating runner (spec/trust.md "Fault injection") around a runner in memory: what it alters.
import t from 'tap'
import { cheatingRunner, inflatedCapacity } from '../node-services/cheating-runner.ts'
import type { CapacityPort, WorkloadRunner } from '../../actors/provider/ports.ts'
import type { Workload } from '../../actors/workload/workload.ts'

const lines = [{ ts: 1, stream: 'stdout', line: 'abc123' }, { ts: 2, stream: 'stderr', line: 'warn' }]
function fake(): WorkloadRunner & { started: string[] } {
  const started: string[] = []
  return {
    started,
    runtimes: () => ['wasm'],
    start: async (o) => {
      started.push(o.contractId)
      return { instanceId: `i-${o.contractId}` }
    },
    stop: async () => {},
    onStatus: () => () => {},
    logs: async () => ({ lines, ended: true }),
  }
}
const job = { kind: 'job' } as Workload

t.test('wrongResults 1: every stdout line is served altered, stderr untouched', async (t) => {
  const r = cheatingRunner(fake(), { wrongResults: 1, dropWork: 0, inflateCapacity: 1, shortMemory: 1 })
  const got = await r.logs('i-1', { since: 0, limit: 10 })
  t.same(got.lines.map((l) => l.line), ['321cba', 'warn'])
  const honest = cheatingRunner(fake(), { wrongResults: 0, dropWork: 0, inflateCapacity: 1, shortMemory: 1 })
  t.same((await honest.logs('i-1', { since: 0, limit: 10 })).lines, lines)
})

t.test('dropWork 1: a job run is answered as started and never run', async (t) => {
  const inner = fake()
  const r = cheatingRunner(inner, { wrongResults: 0, dropWork: 1, inflateCapacity: 1, shortMemory: 1 })
  const { instanceId } = await r.start({ contractId: 'c1', slot: 's', workload: job, reservationId: 'r' })
  t.same(inner.started, [], 'nothing started')
  t.same(await r.logs(instanceId, { since: 0, limit: 10 }), { lines: [], ended: false })
  await r.stop(instanceId)
})

t.test('inflateCapacity: free capacity claimed that many times over; reservations still the real ones', async (t) => {
  const calls: string[] = []
  const real: CapacityPort = {
    free: () => ({ cpu: 1, memoryBytes: 1000, gpu: 0, vramBytes: 0, diskBytes: 10 }),
    reserve: async () => {
      calls.push('reserve')
      throw new Error('does not fit')
    },
    commit: async () => {},
    release: async () => {},
  }
  const c = inflatedCapacity(real, { wrongResults: 0, dropWork: 0, inflateCapacity: 4, shortMemory: 1 })
  t.same(await c.free(), { cpu: 4, memoryBytes: 4000, gpu: 0, vramBytes: 0, diskBytes: 40 })
  await t.rejects(c.reserve({ id: 'x', resources: {} as never, ttlMs: 1 }), /does not fit/)
  t.same(calls, ['reserve'])
})

t.test('shortMemory: memory claimed and reserved that many times over; its containers get only their share', async (t) => {
  const reserved: number[] = []
  const real: CapacityPort = {
    free: () => ({ cpu: 1, memoryBytes: 512 * 2 ** 20, gpu: 0, vramBytes: 0, diskBytes: 10 }),
    reserve: async (o) => {
      reserved.push(o.resources.memoryBytes)
      return { reservationId: 'r1' }
    },
    commit: async () => {},
    release: async () => {},
  }
  const f = { wrongResults: 0, dropWork: 0, inflateCapacity: 1, shortMemory: 4 }
  const c = inflatedCapacity(real, f)
  t.same(await c.free(), { cpu: 1, memoryBytes: 2048 * 2 ** 20, gpu: 0, vramBytes: 0, diskBytes: 10 }, 'claims 4 times its memory, nothing else')
  t.same(await c.reserve({ id: 'x', resources: { memoryBytes: 2048 * 2 ** 20 } as never, ttlMs: 1 }), { reservationId: 'r1' }, 'its reservation of the claim succeeds')
  t.same(reserved, [512 * 2 ** 20], 'against what it has')
  const inner = fake()
  const seen: number[] = []
  const start = inner.start
  inner.start = async (o) => {
    seen.push(o.workload.resources.memoryBytes)
    return start(o)
  }
  await cheatingRunner(inner, f).start({ contractId: 'c1', slot: 's', workload: { kind: 'job', resources: { memoryBytes: 2048 * 2 ** 20 } } as Workload, reservationId: 'r1' })
  t.same(seen, [512 * 2 ** 20], 'the container is limited to a quarter of what was reserved')
})

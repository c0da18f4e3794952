// Provider-run health checks against real servers on loopback (the allocations around them given directly):
// readiness follows the check, failures in a row take an instance out and restart it by its policy, a new
// instance must pass again, and each probe kind says why it failed.
import t from 'tap'
import { createServer, type Server } from 'node:http'
import { createServer as createTcpServer } from 'node:net'
import { HealthMonitor, type HealthEvent } from '../health/health-monitor.ts'
import { probe } from '../health/probe.ts'
import type { AllocationRecord } from '../allocation/allocation-manager.ts'
import type { Workload } from '../../actors/workload/workload.ts'
import { silentLog } from '../../p2p/log.ts'
import { eventually } from '../../scripts/testing/daemons.ts'

function listen(srv: Server | ReturnType<typeof createTcpServer>): Promise<number> {
  return new Promise((r) => srv.listen(0, '127.0.0.1', () => r((srv.address() as { port: number }).port)))
}

function fakeAllocations(rec: AllocationRecord) {
  const listeners = new Set<(r: AllocationRecord) => void>()
  return {
    rec,
    list: () => [{ ...rec, usage: null }],
    onStatus: (l: (r: AllocationRecord) => void) => (listeners.add(l), () => listeners.delete(l)),
    set(patch: Partial<AllocationRecord>) {
      Object.assign(rec, patch)
      for (const l of listeners) l({ ...rec })
    },
  }
}

const record = (hostPort: number): AllocationRecord => ({
  id: 'c-k1', kind: 'wasm', state: 'running', reservationId: 'r', restart: {}, graceMs: 0, handle: { allocationId: 'c-k1', kind: 'wasm', ref: 'i1' },
  restarts: 0, lastExit: null, reason: null, createdAt: 0, updatedAt: 0, startedAt: 0,
  spec: { allocationId: 'c-k1', runtime: { kind: 'wasm', module: 'm' }, env: {}, limits: { cpu: 1, memoryBytes: 1 }, network: { ports: [{ containerPort: 8080, hostPort, protocol: 'tcp' }] }, stateDir: '/x' },
})

const workload = (restart: 'always' | 'never', check = true): Workload => ({
  service: { replicas: 1, restart, ...(check ? { healthCheck: { type: 'http', port: 8080, path: '/health', intervalSeconds: 0.05, timeoutSeconds: 0.5, failureThreshold: 3 } } : {}) },
} as unknown as Workload)

t.test('ready once the check passes; three failures in a row take it out and restart it; the new instance must pass again', async (t) => {
  let healthy = true
  const srv = createServer((req, res) => {
    res.statusCode = req.url === '/health' && healthy ? 200 : 503
    res.end()
  })
  const port = await listen(srv)
  t.teardown(() => srv.close())
  const allocs = fakeAllocations(record(port))
  const stops: string[] = []
  const events: HealthEvent[] = []
  const m = new HealthMonitor({
    allocations: allocs,
    executors: { wasm: { stop: async (h: { ref: string }) => void stops.push(h.ref) } as never },
    workloadOf: async (id) => (id === 'k1' ? workload('always') : undefined),
    onEvent: (e) => events.push(e),
    log: silentLog,
  })
  m.start()
  t.teardown(() => m.stop())
  t.same(m.readiness('k1').ready, false, 'not ready before its first check')
  await eventually(() => m.readiness('k1').ready, 5000, 10)
  healthy = false
  await eventually(() => stops.length === 1, 5000, 10)
  t.equal(m.readiness('k1').ready, false)
  t.match(m.readiness('k1').why, /3 checks failed in a row: HTTP 503/)
  t.same(stops, ['i1'], 'the failing instance was stopped for its policy to start it again')
  // the allocation's policy starts a new instance
  allocs.set({ state: 'backoff' })
  allocs.set({ state: 'starting', handle: { allocationId: 'c-k1', kind: 'wasm', ref: 'i2' } })
  allocs.set({ state: 'running' })
  await new Promise((r) => setTimeout(r, 200))
  t.equal(m.readiness('k1').ready, false, 'the new instance is not ready while its check fails')
  healthy = true
  await eventually(() => m.readiness('k1').ready, 5000, 10)
  t.same(events.map((e) => e.kind), ['ready', 'not-ready', 'restart', 'ready'])
  t.equal(m.list()[0]!.restarts, 1)
  allocs.set({ state: 'stopped' })
  t.same(m.list(), [], 'an ended instance is no longer followed')
})

t.test('restart policy never: out of rotation, not restarted; a workload without a check is ready while it runs', async (t) => {
  const srv = createServer((_req, res) => {
    res.statusCode = 500
    res.end()
  })
  const port = await listen(srv)
  t.teardown(() => srv.close())
  const stops: string[] = []
  const allocs = fakeAllocations(record(port))
  const m = new HealthMonitor({ allocations: allocs, executors: { wasm: { stop: async (h: { ref: string }) => void stops.push(h.ref) } as never }, workloadOf: async () => workload('never'), log: silentLog })
  m.start()
  t.teardown(() => m.stop())
  await eventually(() => (m.list()[0]?.consecutiveFailures ?? 0) >= 10, 5000, 10)
  t.equal(m.readiness('k1').ready, false)
  t.same(stops, [], 'never restarted')

  const plain = fakeAllocations(record(port))
  const m2 = new HealthMonitor({ allocations: plain, executors: {}, workloadOf: async () => workload('always', false), log: silentLog })
  m2.start()
  t.teardown(() => m2.stop())
  await eventually(() => m2.readiness('k1').ready, 5000, 10)
  plain.set({ state: 'backoff' })
  t.equal(m2.readiness('k1').ready, false, 'not ready while it does not run')
  t.equal(m2.readiness('unknown').ready, false, 'an unknown contract is never ready')
})

t.test('each probe kind passes or says why it failed', async (t) => {
  const tcp = createTcpServer((s) => s.end())
  const port = await listen(tcp)
  t.teardown(() => tcp.close())
  const base = { intervalSeconds: 1, timeoutSeconds: 0.5, failureThreshold: 1 }
  t.same((await probe({ ...base, type: 'tcp', port: 1 }, { hostPort: port })).ok, true)
  tcp.close()
  const closed = await probe({ ...base, type: 'tcp', port: 1 }, { hostPort: port })
  t.equal(closed.ok, false)
  t.match(closed.detail, /refused/)
  t.match((await probe({ ...base, type: 'http', port: 8080, path: '/' }, {})).detail, /not among the workload's published ports/)
  t.match((await probe({ ...base, type: 'exec', command: ['true'] }, {})).detail, /need a container/)
  t.same((await probe({ ...base, type: 'exec', command: ['x'] }, { exec: async () => ({ code: 0, output: '' }) })).ok, true)
  t.match((await probe({ ...base, type: 'exec', command: ['x'] }, { exec: async () => ({ code: 2, output: 'bad' }) })).detail, /exit 2: bad/)
  // an HTTP server that never answers: the time-out ends the check
  const silent = createServer(() => undefined)
  const sp = await listen(silent)
  t.teardown(() => {
    silent.closeAllConnections()
    silent.close()
  })
  const slow = await probe({ ...base, type: 'http', port: 8080, path: '/' }, { hostPort: sp })
  t.equal(slow.ok, false)
  t.match(slow.detail, /no answer within 500 ms/)
})

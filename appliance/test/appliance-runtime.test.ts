// The appliance behind the orchestration's provider ports (ApplianceRuntime): the allocator as CapacityPort,
// the allocation manager as WorkloadRunner, with a real wasm workload on a real ActorSystem; and a stop that
// fails is reported, never swallowed.
import t, { type Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { ActorSystem, LevelKvStore } from '../../core/index.ts'
import { NodeKey } from '../../identity/keys.ts'
import { validateWorkload } from '../../actors/workload/workload.ts'
import type { InstanceStatus } from '../../actors/provider/ports.ts'
import { Allocator } from '../allocator/allocator.ts'
import { AllocationManager } from '../allocation/allocation-manager.ts'
import { WasmExecutor } from '../executor/wasm/wasm-executor.ts'
import { parseShare } from '../share/share.ts'
import { ApplianceRuntime } from '../node-services/appliance-runtime.ts'
import { Catalog } from '../catalog/catalog.ts'
import type { ApplianceParts } from '../node-services/appliance-parts.ts'
import { ApplianceService } from '../node-services/appliance-service.ts'
import { nodeServices } from '../daemon/services.ts'
import { ServiceNotStartedError } from '../daemon/errors.ts'
import { wasmFixture } from './wasm-fixtures.ts'
import { DockerExecutor } from '../executor/docker/docker-executor.ts'
import { AllocationNotFoundError, InsufficientCapacityError } from '../errors.ts'

const MiB = 1024 * 1024

async function appliance(t: Test) {
  const home = mkdtempSync(join(tmpdir(), 'noir-runtime-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const db = new Level<string, unknown>(join(home, 'data'), { valueEncoding: 'json' })
  await db.open()
  const system = new ActorSystem({ key: NodeKey.generate() })
  await system.start()
  const store = new LevelKvStore(db.sublevel<string, unknown>('svc:appliance', { valueEncoding: 'json' }))
  const allocator = new Allocator({ store, share: parseShare('cpu=1,memory=256MiB,disk=1GiB') })
  await allocator.open()
  const wasm = new WasmExecutor()
  const allocations = new AllocationManager({ system, executors: { wasm }, allocator, store, stateRoot: join(home, 'allocations') })
  await allocations.start()
  const runtime = new ApplianceRuntime({ parts: { allocator, allocations, executors: { wasm } }, catalog: new Catalog(home) })
  await runtime.refreshRuntimes()
  t.teardown(async () => {
    runtime.close()
    await allocations.stop()
    await system.stop()
    await db.close()
    await wasm.close()
  })
  return { home, allocator, allocations, runtime }
}

t.test('a workload replica runs as an allocation against a committed reservation, reporting status and logs', async (t) => {
  const { home, allocations, runtime } = await appliance(t)
  t.same(runtime.runtimes(), ['wasm'])
  t.same(await runtime.free(), { cpu: 1, memoryBytes: 256 * MiB, gpu: 0, vramBytes: 0, diskBytes: 1024 ** 3 })

  writeFileSync(join(home, 'ticks.wasm'), wasmFixture('log-stream'))
  new Catalog(home).add('wasm', 'ticks.wasm', join(home, 'ticks.wasm'))
  const workload = validateWorkload({
    apiVersion: 'noir/v1', kind: 'job', name: 'ticks', runtime: { type: 'wasm', module: 'ticks.wasm' }, resources: { cpu: 0.5, memory: '32MiB' },
  })
  const { reservationId } = await runtime.reserve({ id: 'res-1', resources: workload.resources, ttlMs: 10_000 })
  await t.rejects(runtime.reserve({ id: 'res-2', resources: { ...workload.resources, cpu: 0.6 }, ttlMs: 10_000 }), InsufficientCapacityError)
  await runtime.commit(reservationId)

  const seen: InstanceStatus[] = []
  const off = runtime.onStatus((s) => seen.push(s))
  t.teardown(off)
  const { instanceId } = await runtime.start({ contractId: 'c1', slot: 's0', workload, reservationId })
  const end = await allocations.waitFor(instanceId, (s) => s === 'exited' || s === 'failed')
  t.equal(end.state, 'exited', end.reason ?? '')
  await new Promise((r) => setTimeout(r, 50))
  t.same(seen.filter((s) => s.instanceId === instanceId).map((s) => s.state), ['running', 'exited'], 'running once, then the final state (a job runs once: retries are placed elsewhere)')
  t.equal(seen.at(-1)?.code, 0)
  const { lines, ended } = await runtime.logs(instanceId, { since: 0, limit: 3 })
  t.same(lines.map((l) => l.line), ['tick 1', 'tick 2', 'tick 3'], 'at most `limit` lines')
  t.equal(ended, true)
  const later = await runtime.logs(instanceId, { since: lines[2]!.ts, limit: 10 })
  t.same(later.lines.map((l) => l.line), ['tick 4', 'tick 5'], 'lines after `since` only')
  t.equal((await runtime.free()).cpu, 1, 'the reservation is released when the replica ends')
})

t.test('a node that does not run runsc directly declines a container with checkpoint: process', async (t) => {
  const { allocator, allocations, runtime, home } = await appliance(t)
  const w = validateWorkload({ apiVersion: 'noir/v1', kind: 'service', name: 'c', runtime: { type: 'container', image: 'noir/busybox:latest', checkpoint: 'process' }, resources: { cpu: 0.1, memory: '64MiB' } })
  t.match(runtime.missing(w), /no process checkpoints of containers here: no docker executor/, 'without Docker')
  const off = new ApplianceRuntime({ parts: { allocator, allocations, executors: { docker: new DockerExecutor({ nodeId: 'n' }) } }, catalog: new Catalog(home) })
  t.match(off.missing(w), /no process checkpoints of containers here: .*executors\.container\.runsc/, 'with Docker but runsc turned off')
  t.equal(off.missing({ ...w, runtime: { type: 'container', image: 'noir/busybox:latest' } }), undefined, 'a plain container is not declined for it')
})

t.test('stop resolves once the instance is stopped and removed, and again for one already gone', async (t) => {
  const { home, allocations, runtime } = await appliance(t)
  writeFileSync(join(home, 'svc.wasm'), wasmFixture('graceful'))
  new Catalog(home).add('wasm', 'svc.wasm', join(home, 'svc.wasm'))
  const workload = validateWorkload({
    apiVersion: 'noir/v1', kind: 'service', name: 'svc', runtime: { type: 'wasm', module: 'svc.wasm' }, resources: { cpu: 0.5, memory: '32MiB' },
  })
  const { reservationId } = await runtime.reserve({ id: 'r', resources: workload.resources, ttlMs: 10_000 })
  await runtime.commit(reservationId)
  const { instanceId } = await runtime.start({ contractId: 'c2', slot: 's0', workload, reservationId })
  t.equal(allocations.get(instanceId).state, 'running')
  await runtime.stop(instanceId)
  t.throws(() => allocations.get(instanceId), AllocationNotFoundError, 'removed before stop resolved')
  t.equal((await runtime.free()).cpu, 1, 'its capacity is free')
  await runtime.stop(instanceId)
})

t.test('a stop the appliance could not carry out rejects with its reason instead of passing for done', async (t) => {
  class StuckError extends Error {
    override name = 'StuckError'
  }
  const parts = {
    allocator: {},
    allocations: { remove: async () => { throw new StuckError('container did not stop') } },
    executors: {},
  } as unknown as ApplianceParts
  const runtime = new ApplianceRuntime({ parts, catalog: new Catalog(join(tmpdir(), 'noir-no-catalog')) })
  await t.rejects(runtime.stop('c-x'), StuckError)
})

t.test("the daemon's composition hands the appliance's own parts to orchestration, and none before the appliance started", async (t) => {
  const services = nodeServices()
  const names = services.map((s) => s.name)
  t.same(names, ['node-actor', 'ledger', 'appliance', 'trust', 'cert-revocations', 'artifacts', 'orchestration', 'secrets', 'settlement', 'ingress', 'metrics'], 'the appliance starts before the orchestration that reads its parts')
  t.ok(names.indexOf('appliance') < names.indexOf('orchestration'))
  const appliance = services[names.indexOf('appliance')]
  if (!(appliance instanceof ApplianceService)) return t.fail('the service named appliance is the ApplianceService')
  t.throws(() => appliance.parts, ServiceNotStartedError)
})

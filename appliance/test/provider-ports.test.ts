// The appliance behind the orchestration's provider ports: the allocator as CapacityPort, the allocation
// manager as WorkloadRunner (a real wasm workload on a real ActorSystem).
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { ActorSystem } from '../../core/index.ts'
import { NodeKey } from '../../identity/keys.ts'
import { validateWorkload } from '../../actors/workload/workload.ts'
import type { InstanceStatus } from '../../actors/provider/ports.ts'
import { Allocator, type JsonStore } from '../allocator/allocator.ts'
import { AllocationManager } from '../allocation/allocation-manager.ts'
import { WasmExecutor } from '../executor/wasm/wasm-executor.ts'
import { parseShare } from '../share/share.ts'
import { allocationRunner, allocatorCapacityPort } from '../provider-ports.ts'
import { wasmFixture } from './wasm-fixtures.ts'
import { InsufficientCapacityError } from '../errors.ts'

const MiB = 1024 * 1024

t.test('a workload replica runs as an allocation against a committed reservation, reporting status and logs', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'noir-ports-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const db = new Level<string, unknown>(join(home, 'data'), { valueEncoding: 'json' })
  await db.open()
  const system = new ActorSystem({ key: NodeKey.generate() })
  await system.start()
  const store = db.sublevel<string, unknown>('svc:appliance', { valueEncoding: 'json' }) as unknown as JsonStore
  const allocator = new Allocator({ store, share: parseShare('cpu=1,memory=256MiB,disk=1GiB') })
  await allocator.open()
  const wasm = new WasmExecutor()
  const manager = new AllocationManager({ system, executors: { wasm }, allocator, store, stateRoot: join(home, 'allocations') })
  await manager.start()
  t.teardown(async () => {
    await manager.stop()
    await system.stop()
    await db.close()
    await wasm.close()
  })
  const capacity = allocatorCapacityPort(allocator)
  const runner = allocationRunner(manager)
  t.same(await runner.runtimes(), ['wasm'])
  t.same(await capacity.free(), { cpu: 1, memoryBytes: 256 * MiB, gpu: 0, vramBytes: 0, diskBytes: 1024 ** 3 })

  const mod = join(home, 'ticks.wasm')
  writeFileSync(mod, wasmFixture('log-stream'))
  const workload = validateWorkload({
    apiVersion: 'noir/v1',
    kind: 'job',
    name: 'ticks',
    runtime: { type: 'wasm', module: mod },
    resources: { cpu: 0.5, memory: '32MiB' },
  })
  const { reservationId } = await capacity.reserve({ id: 'res-1', resources: workload.resources, ttlMs: 10_000 })
  await t.rejects(capacity.reserve({ id: 'res-2', resources: { ...workload.resources, cpu: 0.6 }, ttlMs: 10_000 }), InsufficientCapacityError)
  await capacity.commit(reservationId)

  const seen: InstanceStatus[] = []
  const off = runner.onStatus((s) => seen.push(s))
  t.teardown(off)
  const { instanceId } = await runner.start({ contractId: 'c1', slot: 's0', workload, reservationId })
  const end = await manager.waitFor(instanceId, (s) => s === 'exited' || s === 'failed')
  t.equal(end.state, 'exited', end.reason ?? '')
  t.same([...new Set(seen.filter((s) => s.instanceId === instanceId).map((s) => s.state))], ['starting', 'running', 'exited'])
  t.equal(seen.at(-1)?.code, 0)
  const { lines, ended } = await runner.logs(instanceId, { since: 0, limit: 3 })
  t.same(lines.map((l) => l.line), ['tick 1', 'tick 2', 'tick 3'], 'at most `limit` lines')
  t.equal(ended, true)
  const later = await runner.logs(instanceId, { since: lines[2]!.ts, limit: 10 })
  t.same(later.lines.map((l) => l.line), ['tick 4', 'tick 5'], 'lines after `since` only')
  t.equal((await capacity.free()).cpu, 1, 'the reservation is released when the replica ends')
})

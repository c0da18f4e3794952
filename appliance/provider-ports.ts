// The appliance behind the orchestration's provider ports (actors/provider/ports.ts): the allocator as the
// CapacityPort (two-phase reservations) and the allocation manager as the WorkloadRunner (a workload replica
// becomes one allocation). actors/ never imports appliance/; whoever builds the Provider passes these.
import type { CapacityPort, InstanceState, InstanceStatus, LogEntry, WorkloadRunner } from '../actors/provider/ports.ts'
import type { Capacity } from '../actors/placement/offer.ts'
import type { RuntimeType, Workload } from '../actors/workload/workload.ts'
import type { Allocator } from './allocator/allocator.ts'
import type { AllocationManager, AllocationRecord } from './allocation/allocation-manager.ts'
import type { AllocationState } from './allocation/allocation-machine.ts'
import type { ExecutorKind, RuntimeSpec } from './executor/executor.ts'
import { InvalidAllocationError } from './errors.ts'

export function allocatorCapacityPort(allocator: Allocator): CapacityPort {
  return {
    async free(): Promise<Capacity> {
      const f = (await allocator.capacity()).free
      return { cpu: f.cpu, memoryBytes: f.memoryBytes, gpu: f.gpu, vramBytes: 0, diskBytes: f.diskBytes }
    },
    async reserve(o) {
      const r = await allocator.reserve(
        { cpu: o.resources.cpu, memoryBytes: o.resources.memoryBytes, diskBytes: o.resources.diskBytes, gpu: o.resources.gpu },
        { id: o.id, ttlMs: o.ttlMs },
      )
      return { reservationId: r.id }
    },
    async commit(reservationId) {
      await allocator.commit(reservationId)
    },
    release: (reservationId) => allocator.release(reservationId),
  }
}

const kindToRuntime: Record<ExecutorKind, RuntimeType> = { docker: 'container', wasm: 'wasm', microvm: 'microvm', actor: 'actor' }

/** The executor runtime of a workload (`container` runs on docker). */
export function runtimeOf(w: Workload): RuntimeSpec {
  const r = w.runtime
  switch (r.type) {
    case 'container':
      if (!r.image) throw new InvalidAllocationError('a container workload needs runtime.image')
      return { kind: 'docker', image: r.image, ...(r.command ? { command: r.command } : {}) }
    case 'wasm':
      if (!r.module) throw new InvalidAllocationError('a wasm workload needs runtime.module')
      return { kind: 'wasm', module: r.module, ...(r.args ? { args: r.args } : {}) }
    case 'microvm':
      if (!r.kernel) throw new InvalidAllocationError('a microvm workload needs runtime.kernel')
      return { kind: 'microvm', kernel: r.kernel, ...(r.rootfs ? { rootfs: r.rootfs } : {}), ...(r.command ? { command: r.command } : {}) }
    case 'actor':
      if (!r.bundle) throw new InvalidAllocationError('an actor workload needs runtime.bundle')
      return { kind: 'actor', bundle: r.bundle, ...(r.args ? { args: r.args } : {}) }
  }
}

const instanceState = (s: AllocationState): InstanceState =>
  s === 'pending' || s === 'starting' || s === 'backoff' ? 'starting' : s === 'stopping' ? 'running' : s

const statusOf = (r: AllocationRecord): InstanceStatus => ({
  instanceId: r.id,
  state: instanceState(r.state),
  ...(r.lastExit ? { code: r.lastExit.code } : {}),
  ...(r.reason ? { reason: r.reason } : r.lastExit && r.state !== 'exited' ? { reason: r.lastExit.reason } : {}),
  at: r.updatedAt,
})

export function allocationRunner(manager: AllocationManager): WorkloadRunner {
  return {
    runtimes: () => manager.kinds().map((k) => kindToRuntime[k]),
    async start(o) {
      const w = o.workload
      const id = `${o.contractId}-${o.slot}`.replace(/[^A-Za-z0-9._~:@+-]/g, '_').slice(0, 128)
      const restart = w.service ? { policy: w.service.restart } : w.job ? { policy: 'on-failure' as const, maxRestarts: w.job.retries } : {}
      await manager.create({
        id,
        runtime: runtimeOf(w),
        env: w.env,
        resources: { cpu: w.resources.cpu, memoryBytes: w.resources.memoryBytes, diskBytes: w.resources.diskBytes, gpu: w.resources.gpu },
        ports: w.ports.map((p) => ({ containerPort: p.port, protocol: p.protocol })),
        restart,
        reservationId: o.reservationId,
        labels: { 'noir.contract': o.contractId, 'noir.slot': o.slot },
      })
      await manager.waitFor(id, (s) => s !== 'pending' && s !== 'starting')
      return { instanceId: id }
    },
    async stop(instanceId) {
      await manager.stopAllocation(instanceId)
    },
    onStatus: (listener) => manager.onStatus((r) => listener(statusOf(r))),
    async logs(instanceId, o) {
      const lines: LogEntry[] = []
      for await (const l of manager.logs(instanceId, { follow: false, since: o.since + 1 })) {
        if (l.ts <= o.since) continue
        lines.push({ ts: l.ts, stream: l.stream, line: l.line })
        if (lines.length >= o.limit) break
      }
      const s = manager.get(instanceId).state
      return { lines, ended: s === 'stopped' || s === 'exited' || s === 'failed' }
    },
  }
}

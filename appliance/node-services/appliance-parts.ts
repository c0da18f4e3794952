// How the appliance's node service hands its allocator and allocation manager to other node services of the
// same daemon (orchestration), keyed by the daemon's ActorSystem: one allocator and one allocation manager
// per node, never two.
import type { ActorSystem } from '../../core/index.ts'
import type { Allocator } from '../allocator/allocator.ts'
import type { AllocationManager } from '../allocation/allocation-manager.ts'
import type { Executor, ExecutorKind } from '../executor/executor.ts'

export interface ApplianceParts {
  allocator: Allocator
  allocations: AllocationManager
  executors: Partial<Record<ExecutorKind, Executor>>
}

const shared = new WeakMap<ActorSystem, ApplianceParts>()

/** Called by the appliance service once its allocator and allocations are started. */
export function shareApplianceParts(system: ActorSystem, parts: ApplianceParts): void {
  shared.set(system, parts)
}

export function applianceParts(system: ActorSystem): ApplianceParts | undefined {
  return shared.get(system)
}

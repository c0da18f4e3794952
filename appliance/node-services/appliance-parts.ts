// What the appliance's node service hands to the node services composed after it (orchestration): its
// allocator, allocation manager and executors. One of each per node, never two: the composition in
// appliance/daemon/services.ts passes them on explicitly.
import type { Allocator } from '../allocator/allocator.ts'
import type { AllocationManager } from '../allocation/allocation-manager.ts'
import type { Executor, ExecutorKind } from '../executor/executor.ts'

export interface ApplianceParts {
  allocator: Allocator
  allocations: AllocationManager
  executors: Partial<Record<ExecutorKind, Executor>>
}

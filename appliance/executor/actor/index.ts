// The actor executor: SDK actors in a Node child process under the permission model (spec/actor-executor.md).
export { ActorExecutor, defaultPlacement, seedSnapshot, type ActorExecutorInit, type ActorPlacement } from './actor-executor.ts'
export { ActorBundleError, ActorWorkloadEndedError, SandboxAccessDeniedError } from './errors.ts'
export { STOPPING_BEHAVIOR, SNAPSHOT_FILE } from './protocol.ts'

// core/: the actor kernel. Other layers import from here only.
export { ActorSystem, type ActorSystemInit, type SpawnOptions, type RestoreOptions, type LocalPolicy } from './actor-system.ts'
export type { Replier } from './repliers.ts'
export type { ActorTreeNode, HostedActorNode, XStateChildNode, ActorStatus } from './actor-tree.ts'
export { signedRemote, REPLY_BEHAVIOR, ERROR_BEHAVIOR, type ReplyBody, type RemoteEndpointOptions } from './remote.ts'
export type { RemoteEndpoint, RemoteEndpointDeps, RemoteEndpointFactory } from './remote-contract.ts'
export { DEFAULT_SEAL_WINDOW_MS } from './remote-contract.ts'
export { capabilityChecker, VerifierCapabilityChecker, type CapabilityCheckerInit } from './capabilities.ts'
export {
  defineActor,
  isBehaviorPath,
  defaultSupervision,
  type ActorDefinition,
  type BehaviorSpec,
  type ChildSpec,
  type DefineActorInit,
  type ActorBuilder,
  type MessageContext,
  type RestartPolicy,
  type SupervisionSpec,
  type SupervisionStrategy,
} from './sdk.ts'
export type { ActorContext, SpawnChildOptions } from './actor-context.ts'
export type { ActorRef, AskOptions, TellOptions, SystemEvent, SystemEventListener, TerminationReason, SystemObserver, MessageTracer } from './types.ts'
export * from './errors.ts'
export { toWireError, fromWireError, isWireError, registerErrorClass, type WireError } from './wire-error.ts'
export { realClock, SimulatedClock, type Clock, type TimerHandle } from './clock.ts'
export { checkName, actorAddress } from './address.ts'
export { MemoryKvStore, ScopedKvStore, decodedTwice, type KvStore } from './kv-store.ts'
export { LevelKvStore, type LevelKvStoreOptions } from './level-kv-store.ts'
export { KvSnapshotStore, MemorySnapshotStore, type SnapshotStore, type StoredSnapshot } from './snapshot-store.ts'
export { LevelSnapshotStore } from './level-snapshot-store.ts'
export { KvRevocationStore } from './revocation-store.ts'
export type { CapabilityChecker, CapabilityRequest } from './capability-check.ts'
export type { Transport, InboundEnvelope, InboundHandler, SendSink } from './transport.ts'
export { MemoryNetwork, MemoryTransport, type MemoryTransportOptions } from './memory-transport.ts'
export { startAll, stopAll, type Startable } from './startable.ts'

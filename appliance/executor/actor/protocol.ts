// Messages on the IPC channel between the actor executor (parent, the node) and the sandbox host (child).
// spec/actor-executor.md describes the exchange; values cross with Node's `advanced` serialization.
import type { WireError } from '../../../core/wire-error.ts'
import type { StoredSnapshot } from '../../../core/snapshot-store.ts'

/** One behavior of the hosted actor, as the node's proxy must declare it (capabilities are checked there). */
export interface BehaviorInfo {
  path: string
  ability: string
  public: boolean
}

/** Parent -> child. */
export type ToSandbox =
  /**
   * Answer to `hello`: the child is in its cgroup; load the bundle now. `hold` (a migration's warm start,
   * spec/migration.md "Handover"): load the bundle, say `loaded`, and start the actor only on `begin`.
   */
  | { t: 'go'; snapshot?: StoredSnapshot; hold?: boolean }
  /**
   * After `loaded`: start the actor now, from this snapshot, or else the state directory's. `address`: the
   * actor's address on the node (NOIR_ACTOR_ADDRESS, unknown when the warm sandbox was spawned).
   */
  | { t: 'begin'; snapshot?: StoredSnapshot; address?: string }
  /** A message for the actor (already authorized by the node). `ask`: an answer is expected. */
  | { t: 'deliver'; id: number; behavior: string; body: unknown; from: string; ask: boolean }
  /** The outcome of a message the actor sent out. */
  | { t: 'reply'; id: string; ok: true; value: unknown }
  | { t: 'reply'; id: string; ok: false; error: WireError }
  /** Save the snapshot now (without stopping). */
  | { t: 'checkpoint'; id: number }
  /** Stop gracefully: tell the actor (`/noir/actor/stopping`), save its snapshot, exit 0. */
  | { t: 'stop' }

/** Child -> parent. */
export type FromSandbox =
  | { t: 'hello'; pid: number }
  /** The bundle is loaded (after a `go` with `hold`); the actor is not started: it waits for `begin`. */
  | { t: 'loaded' }
  | { t: 'ready'; behaviors: BehaviorInfo[]; restored: boolean }
  | { t: 'answer'; id: number; ok: true; value: unknown }
  | { t: 'answer'; id: number; ok: false; error: WireError }
  /** The actor sends a message to any address; `ask`: it waits for the `reply`. */
  | { t: 'send'; id: string; to: string; behavior: string; body: unknown; ask: boolean; proofs?: string[]; timeoutMs?: number }
  | { t: 'checkpointed'; id: number; ok: true; record: StoredSnapshot }
  | { t: 'checkpointed'; id: number; ok: false; error: WireError }
  /** The snapshot saved on a graceful stop (the parent may mirror it into a SnapshotStore). */
  | { t: 'snapshot'; record: StoredSnapshot }
  /** The actor's machine reached a final state, or crashed beyond its restarts; the child exits next. */
  | { t: 'ended'; kind: 'done' | 'crashed'; exitCode: number; error?: WireError }

/** The behavior a hosted actor may declare to learn that it is being stopped (it is never exposed on the node). */
export const STOPPING_BEHAVIOR = '/noir/actor/stopping'
/** Behavior paths under this prefix are the executor's own and never routed from the node. */
export const LIFECYCLE_PREFIX = '/noir/actor/'
/** The snapshot file in the state directory. */
export const SNAPSHOT_FILE = '.noir-actor-snapshot.json'

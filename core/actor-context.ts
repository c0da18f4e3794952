// What an actor's machine factory receives: its own address and a way to reach the rest of the system
// as itself (messages it sends carry its address as `from`), and to spawn and stop its children.
import type { ActorRef, AskOptions, TellOptions } from './types.ts'
import type { ActorDefinition } from './sdk.ts'

export interface SpawnChildOptions {
  name: string
  input?: unknown
}

export interface ActorContext {
  /** This actor's address. */
  readonly self: string
  /** The node DID this actor runs on. */
  readonly nodeDid: string
  tell(to: string | ActorRef, behavior: string, body?: unknown, options?: TellOptions): void
  ask<TReply = unknown>(to: string | ActorRef, behavior: string, body?: unknown, options?: AskOptions): Promise<TReply>
  /** Spawns a child under this actor (address `<self>/<name>`); it is supervised by this actor. */
  spawnChild(definition: ActorDefinition, options: SpawnChildOptions): ActorRef
  /** Stops a child of this actor. */
  stopChild(name: string): Promise<void>
  /** Looks up an actor on this node by path. */
  lookup(path: string): ActorRef | undefined
}

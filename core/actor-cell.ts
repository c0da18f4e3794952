// An actor cell: everything the ActorSystem keeps of one hosted actor across restarts: its address and place
// in the supervision tree, its mailbox, the running XState instance and the XState children it runs
// (core/actor-tree.ts), its restart count, its watchers and the answers it still owes. And the ActorContext
// its logic factory gets (messages sent as the actor, its children).
import type { AnyActorLogic, Actor } from 'xstate'
import { actorAddress } from './address.ts'
import type { ActorContext, SpawnChildOptions } from './actor-context.ts'
import type { ActorSystem } from './actor-system.ts'
import { LocalActorRef } from './actor-refs.ts'
import type { XStateChildren } from './actor-tree.ts'
import { Mailbox } from './mailbox.ts'
import type { DeferredReply, Replier } from './repliers.ts'
import type { ActorDefinition, NormalizedBehavior, SupervisionSpec } from './sdk.ts'
import type { SupervisorNode } from './supervision.ts'
import type { ActorRef, AskOptions, TellOptions, TerminationReason } from './types.ts'

export type HostedActor = Actor<AnyActorLogic>

/** One queued message (or kernel work that must keep its place in the mailbox). */
export interface Message {
  readonly spec: NormalizedBehavior
  readonly body: unknown
  readonly from: string
  readonly reply: Replier | undefined
  /** Kernel work that must happen in mailbox order (a snapshot after the messages queued before it). */
  readonly control: ((cell: ActorCell) => void) | undefined
  /** The trace context the message was sent in (core/types.ts MessageTracer); undefined when untraced. */
  readonly trace: unknown
}

export class ActorCell implements SupervisorNode {
  readonly path: string
  readonly address: string
  readonly name: string
  readonly definition: ActorDefinition
  readonly parent: SupervisorNode
  readonly children: ActorCell[] = []
  readonly mailbox: Mailbox<Message>
  readonly input: unknown
  readonly isRoot = false
  restartTimes: number[] = []
  actor: HostedActor | undefined
  state: 'running' | 'stopped' = 'running'
  queued = false
  processing = false
  restarts = 0
  /** Messages its logic was given (behaviors handled), since it was spawned: what the actor tree shows. */
  handled = 0
  watchers: Set<(reason: TerminationReason) => void> | undefined
  deferred: Set<DeferredReply> | undefined
  /** The XState children of the running instance, from its inspection events (logic that can have any). */
  xstate: XStateChildren | undefined
  #ref: LocalActorRef | undefined
  #context: CellContext | undefined
  readonly system: ActorSystem

  constructor(system: ActorSystem, path: string, name: string, definition: ActorDefinition, parent: SupervisorNode, input: unknown) {
    this.system = system
    this.path = path
    this.address = actorAddress(system.did, path)
    this.name = name
    this.definition = definition
    this.parent = parent
    this.input = input
    this.mailbox = new Mailbox(definition.mailboxCapacity)
  }

  get supervision(): SupervisionSpec {
    return this.definition.supervision
  }

  get ref(): LocalActorRef {
    return (this.#ref ??= new LocalActorRef(this.system, this))
  }

  get context(): CellContext {
    return (this.#context ??= new CellContext(this.system, this))
  }
}

/** The ActorContext of one actor: it messages the rest of the system as itself, and manages its children. */
class CellContext implements ActorContext {
  readonly #system: ActorSystem
  readonly #cell: ActorCell

  constructor(system: ActorSystem, cell: ActorCell) {
    this.#system = system
    this.#cell = cell
  }

  get self(): string {
    return this.#cell.address
  }

  get nodeDid(): string {
    return this.#system.did
  }

  tell(to: string | ActorRef, behavior: string, body?: unknown, options?: TellOptions): void {
    this.#system.tell(to, behavior, body, { ...options, from: this.#cell.address })
  }

  ask<TReply = unknown>(to: string | ActorRef, behavior: string, body?: unknown, options?: AskOptions): Promise<TReply> {
    return this.#system.ask<TReply>(to, behavior, body, { ...options, from: this.#cell.address })
  }

  spawnChild(definition: ActorDefinition, options: SpawnChildOptions): ActorRef {
    return this.#system.spawn(definition, { ...options, parent: this.#cell.ref })
  }

  stopChild(name: string): Promise<void> {
    return this.#system.stopActor(`${this.#cell.address}/${name}`)
  }

  lookup(path: string): ActorRef | undefined {
    return this.#system.lookup(path)
  }
}

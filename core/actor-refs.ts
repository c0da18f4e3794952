// Handles on actors (ActorRef): a local one points at its cell, so messages to it skip the address lookup; a
// remote one is only an address, checked when used. Both message through their ActorSystem's one routing path.
import type { ActorCell } from './actor-cell.ts'
import type { ActorSystem } from './actor-system.ts'
import type { ActorRef, AskOptions, TellOptions } from './types.ts'

export class LocalActorRef implements ActorRef {
  readonly system: ActorSystem
  readonly cell: ActorCell

  constructor(system: ActorSystem, cell: ActorCell) {
    this.system = system
    this.cell = cell
  }

  get address(): string {
    return this.cell.address
  }

  get path(): string {
    return this.cell.path
  }

  get mailboxDepth(): number {
    return this.cell.state === 'running' ? this.cell.mailbox.depth : 0
  }

  tell(behavior: string, body?: unknown, options?: TellOptions): void {
    this.system.tell(this, behavior, body, options)
  }

  ask<TReply = unknown>(behavior: string, body?: unknown, options?: AskOptions): Promise<TReply> {
    return this.system.ask<TReply>(this, behavior, body, options)
  }
}

export class RemoteActorRef implements ActorRef {
  readonly system: ActorSystem
  readonly address: string
  readonly path: string
  readonly mailboxDepth = 0

  constructor(system: ActorSystem, address: string, path: string) {
    this.system = system
    this.address = address
    this.path = path
  }

  tell(behavior: string, body?: unknown, options?: TellOptions): void {
    this.system.tell(this.address, behavior, body, options)
  }

  ask<TReply = unknown>(behavior: string, body?: unknown, options?: AskOptions): Promise<TReply> {
    return this.system.ask<TReply>(this.address, behavior, body, options)
  }
}

// Repliers: who hears the outcome of a message. The kernel hands every message a Replier (or none, for a
// plain tell): an ask's caller waiting with its time-out (PendingAsk), a `send` waiting for its hand-off
// (HandOff), or a remote sender to answer over the wire (core/remote/endpoint.ts). A behavior that answers
// later gets a DeferredReply, its `msg.respond` / `msg.fail`.
import type { ActorCell, Message } from './actor-cell.ts'
import type { Clock, TimerHandle } from './clock.ts'
import { AskTimeoutError } from './errors.ts'
import type { MessageContext } from './sdk.ts'

/** Who gets the outcome of a message: an ask's caller, or a remote sender to tell about a failure. */
export interface Replier {
  /** True for an ask (answer with a value); false for a tell (only failures are reported). */
  readonly expectsReply: boolean
  ok(value: unknown): void
  fail(error: Error): void
  /** Called once the message left the sender's hands: queued in a local mailbox, or handed to the transport. */
  handedOff?(): void
}

/** The replier of `ask`: settles its promise with the answer, the refusal, or AskTimeoutError. */
export class PendingAsk implements Replier {
  readonly expectsReply = true
  readonly #resolve: (value: unknown) => void
  readonly #reject: (error: Error) => void
  readonly #clock: Clock
  #timer: TimerHandle | undefined
  #onExpiry: (() => void) | undefined
  #done = false

  constructor(resolve: (value: unknown) => void, reject: (error: Error) => void, clock: Clock) {
    this.#resolve = resolve
    this.#reject = reject
    this.#clock = clock
  }

  /** Fails the ask with AskTimeoutError after `timeoutMs` unless it was settled by then. */
  expireAfter(address: string, behavior: string, timeoutMs: number): void {
    if (this.#done) return
    this.#timer = this.#clock.setTimeout(() => {
      this.#onExpiry?.()
      this.fail(new AskTimeoutError(address, behavior, timeoutMs))
    }, timeoutMs)
  }

  /** Runs `forget` when the ask expires, before it fails (a remote ask is forgotten at the endpoint). */
  forgetOnExpiry(forget: () => void): void {
    this.#onExpiry = forget
  }

  ok(value: unknown): void {
    if (this.#done) return
    this.#done = true
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#resolve(value)
  }

  fail(error: Error): void {
    if (this.#done) return
    this.#done = true
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer)
    this.#reject(error)
  }
}

/**
 * The replier of `send`: settles its promise on hand-off (resolve) or on a refusal known before it (reject).
 * A refusal that comes later (a crash while handling, a remote error answer) is a `rejected` event, as for a tell.
 */
export class HandOff implements Replier {
  readonly expectsReply = false
  readonly #resolve: () => void
  readonly #reject: (error: Error) => void
  readonly #late: (error: Error) => void
  #settled = false

  constructor(resolve: () => void, reject: (error: Error) => void, late: (error: Error) => void) {
    this.#resolve = resolve
    this.#reject = reject
    this.#late = late
  }

  ok(): void {}

  handedOff(): void {
    if (this.#settled) return
    this.#settled = true
    this.#resolve()
  }

  fail(error: Error): void {
    if (this.#settled) return this.#late(error)
    this.#settled = true
    this.#reject(error)
  }
}

/** The answer handle given to a behavior's event: `respond`/`fail` reach the asker once. */
export class DeferredReply implements MessageContext {
  readonly from: string
  readonly self: string
  readonly behavior: string
  readonly expectsReply: boolean
  readonly #cell: ActorCell
  readonly #reply: Replier | undefined
  answered = false

  constructor(cell: ActorCell, msg: Message) {
    this.#cell = cell
    this.#reply = msg.reply
    this.from = msg.from
    this.self = cell.address
    this.behavior = msg.spec.path
    this.expectsReply = msg.reply?.expectsReply === true
  }

  respond(value: unknown): void {
    if (this.answered) return
    this.answered = true
    this.#cell.deferred?.delete(this)
    this.#reply?.ok(value)
  }

  fail(error: Error): void {
    if (this.answered) return
    this.answered = true
    this.#cell.deferred?.delete(this)
    this.#reply?.fail(error)
  }
}

/** A behavior's event function that did not ask for a context gets this harmless stand-in. */
export const NO_CONTEXT: MessageContext = Object.freeze({
  from: '',
  self: '',
  behavior: '',
  expectsReply: false,
  respond: () => {},
  fail: () => {},
})

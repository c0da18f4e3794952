// The actor SDK: how a workload author (and the network's own actors) describe an actor: XState v5 actor
// logic (a state machine, or lighter logic such as `fromTransition`), the behaviors it accepts (message
// paths mapped to events and replies), the ability each behavior requires, its supervision of children and
// its mailbox. spec/actors.md explains the model.
import type { AnyActorLogic, EventFromLogic, InputFrom, SnapshotFrom } from 'xstate'
import { checkName } from './address.ts'
import { InvalidDefinitionError } from './errors.ts'
import type { ActorContext } from './actor-context.ts'

/** What a behavior handler learns about the message it handles. */
export interface MessageContext<TReply = unknown> {
  /** The sender's address (DID + path; the bare node DID for messages sent by the node itself). */
  readonly from: string
  /** The receiving actor's address. */
  readonly self: string
  readonly behavior: string
  /** True when the sender waits for an answer (an `ask`). */
  readonly expectsReply: boolean
  /**
   * Answers the ask. For `deferred` behaviors the machine calls this later from an action (put it in the
   * event); only the first answer counts. A tell ignores it.
   */
  respond(value: TReply): void
  /** Answers the ask with a typed error; the caller receives an error of the same class (`name`). */
  fail(error: Error): void
}

/**
 * One behavior an actor accepts, named by a path such as `/counter/increment`.
 *
 * Deny by default: unless `public: true`, a sender needs a capability covering `ability` (which defaults to
 * the behavior path itself). Methods (not arrow properties) keep the body and reply types assignable.
 */
export interface BehaviorSpec<TLogic extends AnyActorLogic = AnyActorLogic, TBody = unknown, TReply = unknown> {
  /** The ability a capability must cover. Defaults to the behavior's own path. */
  ability?: string
  /** Accept the message from anyone, with no capability. Must be explicit. */
  public?: boolean
  /** Validates and converts the raw body; throw to refuse (the sender gets InvalidMessageError, or the NoirError thrown). */
  parse?(body: unknown): TBody
  /** Maps the message to the logic's event. Omit for a read-only behavior answered from the snapshot. */
  event?(body: TBody, msg: MessageContext<TReply>): EventFromLogic<TLogic>
  /**
   * Computes the answer to an ask from the snapshot after the event was handled. Throw a NoirError to
   * answer with that typed error. Without `reply` (and not deferred) an ask is answered with `undefined`
   * once the event was handled.
   */
  reply?(snapshot: SnapshotFrom<TLogic>, body: TBody): TReply
  /** The machine answers later through `msg.respond` / `msg.fail` carried in its event. */
  deferred?: boolean
}

export type SupervisionStrategy = 'one-for-one' | 'all-for-one' | 'rest-for-one'

/** How a parent treats its children's crashes (Erlang/OTP supervisor semantics). */
export interface SupervisionSpec {
  strategy: SupervisionStrategy
  /** At most this many restarts ... */
  maxRestarts: number
  /** ... within this window; one more and the parent gives up and escalates to its own parent. */
  withinMs: number
}

export const defaultSupervision: SupervisionSpec = { strategy: 'one-for-one', maxRestarts: 3, withinMs: 5000 }

/** `permanent`: always restarted after a crash; `temporary`: never restarted (a crash just ends it). */
export type RestartPolicy = 'permanent' | 'temporary'

/** A child the actor starts with (and restarts with) in start order, as an OTP supervisor's child specs. */
export interface ChildSpec {
  name: string
  actor: ActorDefinition
  input?: unknown
}

/** Everything about an actor besides its logic (the argument of `defineActor(logic).with(...)`). */
export interface DefineActorInit<TLogic extends AnyActorLogic> {
  /** The definition's name (its type), recorded in snapshots so a snapshot is restored into the same kind. */
  name?: string
  /** Behavior path -> spec. Paths start with `/`. */
  // Bodies and replies differ per behavior; BehaviorSpec's members are methods, so an entry whose handlers
  // take a narrower body (e.g. `event(body: { by: number })`) still fits.
  behaviors: Record<string, BehaviorSpec<TLogic, unknown, unknown>>
  /** The logic's input from the spawn's input (default: the spawn's input unchanged). */
  input?(spawnInput: unknown, ctx: ActorContext): InputFrom<TLogic>
  /** How this actor supervises its children. */
  supervision?: Partial<SupervisionSpec>
  /** Children started with the actor, in order. */
  children?: readonly ChildSpec[]
  /** Mailbox capacity; a message beyond it is refused with MailboxFullError. Default 1000. */
  mailboxCapacity?: number
  restart?: RestartPolicy
  /** Save the snapshot to the system's SnapshotStore when the actor stops. */
  persist?: boolean
}

/** A behavior after defineActor checked it; what the kernel uses on the hot path. */
export interface NormalizedBehavior {
  readonly path: string
  readonly ability: string
  readonly public: boolean
  readonly parse: ((body: unknown) => unknown) | undefined
  readonly event: ((body: unknown, msg: MessageContext) => unknown) | undefined
  /** The event function declares the message-context parameter (so the kernel builds one). */
  readonly wantsContext: boolean
  readonly reply: ((snapshot: unknown, body: unknown) => unknown) | undefined
  readonly deferred: boolean
}

/** A checked, immutable actor definition. Spawn it with `ActorSystem.spawn`. */
export interface ActorDefinition<TLogic extends AnyActorLogic = AnyActorLogic> {
  readonly kind: 'noir.actor'
  readonly name: string
  /** The XState actor logic (a machine, `fromTransition` logic, ...) or a factory given the actor's context. */
  readonly logic: TLogic | ((ctx: ActorContext) => TLogic)
  readonly behaviors: ReadonlyMap<string, NormalizedBehavior>
  readonly input: ((spawnInput: unknown, ctx: ActorContext) => unknown) | undefined
  readonly supervision: SupervisionSpec
  readonly children: readonly ChildSpec[]
  readonly mailboxCapacity: number
  readonly restart: RestartPolicy
  readonly persist: boolean
}

const BEHAVIOR_PATH = /^(\/[A-Za-z0-9._~-]+)+$/

/** Checks a behavior path such as `/noir/alloc/status`. */
export function isBehaviorPath(path: string): boolean {
  return typeof path === 'string' && path.length <= 256 && BEHAVIOR_PATH.test(path)
}

/** The second step of `defineActor`: the logic's type is fixed, so behaviors are checked against its events. */
export interface ActorBuilder<TLogic extends AnyActorLogic> {
  with(init: DefineActorInit<TLogic>): ActorDefinition<TLogic>
}

/**
 * Describes an actor for the ActorSystem in two steps, `defineActor(logic).with({ behaviors, ... })`:
 * taking the logic first lets TypeScript check each behavior's event against the logic's own event
 * union (with the logic and behaviors in one object, event literals widen to `string`).
 * `logic` is XState v5 actor logic or a factory given the actor's context: usually a state machine
 * (`setup(...).createMachine(...)`); for an actor on a hot path whose state is one value, `fromTransition`
 * logic handles an event for a small fraction of a machine's cost (spec/actors.md, "Actor logic").
 * `with` throws InvalidDefinitionError on a malformed definition.
 */
export function defineActor<TLogic extends AnyActorLogic>(logic: TLogic | ((ctx: ActorContext) => TLogic)): ActorBuilder<TLogic> {
  return { with: (init) => buildDefinition(logic, init) }
}

/** True for XState actor logic (it has `transition` and `getInitialSnapshot`). */
export function isActorLogic(value: unknown): value is AnyActorLogic {
  const v = value as { transition?: unknown; getInitialSnapshot?: unknown } | null
  return typeof v === 'object' && v !== null && typeof v.transition === 'function' && typeof v.getInitialSnapshot === 'function'
}

function buildDefinition<TLogic extends AnyActorLogic>(logic: TLogic | ((ctx: ActorContext) => TLogic), init: DefineActorInit<TLogic>): ActorDefinition<TLogic> {
  if (typeof logic !== 'function' && !isActorLogic(logic)) {
    throw new InvalidDefinitionError('defineActor needs XState actor logic (a machine, fromTransition logic, ...) or a function returning it')
  }
  const id = typeof logic === 'function' ? undefined : (logic as { id?: unknown }).id
  const name = init.name ?? (typeof id === 'string' && id !== '' ? id : 'actor')
  const behaviors = new Map<string, NormalizedBehavior>()
  for (const [path, raw] of Object.entries(init.behaviors)) {
    const spec = raw as BehaviorSpec<TLogic, unknown, unknown>
    if (!isBehaviorPath(path)) throw new InvalidDefinitionError(`${name}: behavior ${JSON.stringify(path)} is not a path like /area/action`)
    if (spec.ability !== undefined && !isBehaviorPath(spec.ability)) throw new InvalidDefinitionError(`${name}: ability of ${path} is not a path`)
    if (spec.public !== undefined && typeof spec.public !== 'boolean') throw new InvalidDefinitionError(`${name}: public of ${path} must be a boolean`)
    if (!spec.event && !spec.reply) throw new InvalidDefinitionError(`${name}: behavior ${path} needs an event, a reply, or both`)
    if (spec.deferred && !spec.event) throw new InvalidDefinitionError(`${name}: deferred behavior ${path} needs an event to carry msg.respond`)
    const event = spec.event?.bind(spec) as NormalizedBehavior['event']
    behaviors.set(path, {
      path,
      ability: spec.ability ?? path,
      public: spec.public === true,
      parse: spec.parse?.bind(spec),
      event,
      wantsContext: (spec.event?.length ?? 0) >= 2 || spec.deferred === true,
      reply: spec.reply?.bind(spec) as NormalizedBehavior['reply'],
      deferred: spec.deferred === true,
    })
  }
  const supervision: SupervisionSpec = { ...defaultSupervision, ...init.supervision }
  if (!['one-for-one', 'all-for-one', 'rest-for-one'].includes(supervision.strategy)) throw new InvalidDefinitionError(`${name}: unknown strategy ${supervision.strategy}`)
  if (!(supervision.maxRestarts >= 0) || !(supervision.withinMs > 0)) throw new InvalidDefinitionError(`${name}: maxRestarts must be >= 0 and withinMs > 0`)
  const mailboxCapacity = init.mailboxCapacity ?? 1000
  if (!Number.isInteger(mailboxCapacity) || mailboxCapacity < 1) throw new InvalidDefinitionError(`${name}: mailboxCapacity must be a positive integer`)
  const children = init.children ?? []
  const seen = new Set<string>()
  for (const c of children) {
    checkName(c.name)
    if (seen.has(c.name)) throw new InvalidDefinitionError(`${name}: two children named ${c.name}`)
    seen.add(c.name)
  }
  return Object.freeze({
    kind: 'noir.actor' as const,
    name,
    logic,
    behaviors,
    input: init.input as ActorDefinition['input'],
    supervision,
    children,
    mailboxCapacity,
    restart: init.restart ?? 'permanent',
    persist: init.persist === true,
  })
}

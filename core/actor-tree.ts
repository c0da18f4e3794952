// The live actor tree of a node (`ActorSystem.actorTree()`; `noir node actors`, GET /v1/node/actors): every
// actor the system hosts, nested under its supervisor, with the XState children it invoked or spawned nested
// under it. XState's inspection API keeps the children current: the `inspect` callback of a hosted machine
// records each child as it is created (`@xstate.actor`) and its latest snapshot (`@xstate.snapshot`), and
// forgets it when it ends. A hosted actor's own state is its latest snapshot (`getSnapshot()`), read when the
// tree is asked for.
//
// Cost: once an actor's XState system has an inspection callback, XState copies each of its inspection events
// for it (several per message), whatever the callback does: measured against the same actor without one, a
// machine with an invoked child handled about 15% fewer tells per second, the kernel bench's counter machine
// about 8% and fromTransition logic about 20%. So the callback is attached only to logic that can have
// children: a machine that invokes in some state or was given actors in `setup({ actors })`. Other logic
// (fromTransition, a machine with neither) costs nothing more per message.
import { StateMachine, isMachineSnapshot, type AnyActorLogic, type AnyActorRef, type AnyStateNode, type InspectionEvent, type Snapshot } from 'xstate'
import type { JsonValue } from '../identity/index.ts'

export type ActorStatus = 'active' | 'done' | 'error' | 'stopped'

/** An actor the ActorSystem hosts (it has an address and a mailbox). */
export interface HostedActorNode {
  kind: 'actor'
  /** `<node did>/<path>`. */
  address: string
  /** Its definition's name (`defineActor(...).with({ name })`, by default the machine's id). */
  logic: string
  /** A machine's state value (`"idle"`, `{ "running": "busy" }`); for other logic, its status. */
  state: JsonValue
  status: ActorStatus
  /** Messages queued and not yet handled. */
  mailbox: number
  /** Times its supervisor restarted it. */
  restarts: number
  /** Messages it handled since it was spawned (a message injected from pubsub shows up here). */
  handled: number
  /** The actors it supervises, then the XState children its logic runs. */
  children: ActorTreeNode[]
}

/** An actor an XState machine invoked or spawned (no address: only its parent reaches it). */
export interface XStateChildNode {
  kind: 'xstate'
  /** Its XState id (the invoke's or spawn's id). */
  id: string
  /** A machine's id, else the name it was given in `setup({ actors })`, else `(inline)`. */
  logic: string
  state: JsonValue
  status: ActorStatus
  children: XStateChildNode[]
}

export type ActorTreeNode = HostedActorNode | XStateChildNode

/** What the tree reads of a hosted actor (the ActorSystem's actor cell). */
export interface HostedActorView {
  readonly address: string
  readonly definition: { readonly name: string }
  readonly actor: AnyActorRef | undefined
  readonly mailbox: { readonly depth: number }
  readonly restarts: number
  readonly handled: number
  readonly children: readonly HostedActorView[]
  readonly xstate: XStateChildren | undefined
}

/** The XState children of one hosted actor, kept current by its inspection events. */
export class XStateChildren {
  /** Each child actor created and not ended -> its latest snapshot (none before its first transition). */
  readonly #latest = new Map<AnyActorRef, Snapshot<unknown> | undefined>()

  /** The hosted actor's `inspect` callback: no allocation, one map write for a child's event. */
  readonly observe = (event: InspectionEvent): void => {
    const ref = event.actorRef as AnyActorRef
    // the hosted actor itself (no parent): its snapshot is read when the tree is asked for
    if (parentOf(ref) === undefined) return
    if (event.type === '@xstate.snapshot') {
      if (event.snapshot.status === 'active') this.#latest.set(ref, event.snapshot)
      else this.#latest.delete(ref)
    } else if (event.type === '@xstate.actor') this.#latest.set(ref, undefined)
  }

  /** The children of `root` (the hosted actor), nested. */
  nodes(root: AnyActorRef): XStateChildNode[] {
    const byParent = new Map<AnyActorRef, AnyActorRef[]>()
    for (const ref of this.#latest.keys()) {
      const parent = parentOf(ref)!
      const siblings = byParent.get(parent)
      if (siblings === undefined) byParent.set(parent, [ref])
      else siblings.push(ref)
    }
    const build = (parent: AnyActorRef, parentSnapshot: Snapshot<unknown>): XStateChildNode[] => {
      const out: XStateChildNode[] = []
      for (const ref of byParent.get(parent) ?? []) {
        // a child stopped before it started (its invoking state was left in the same step) never reports
        // its end: its parent no longer lists it
        if (!isMachineSnapshot(parentSnapshot) || parentSnapshot.children[ref.id] !== ref) {
          this.#latest.delete(ref)
          continue
        }
        const snapshot = this.#latest.get(ref) ?? (ref.getSnapshot() as Snapshot<unknown>)
        out.push({ kind: 'xstate', id: ref.id, logic: logicName(ref), state: stateOf(snapshot), status: snapshot.status, children: build(ref, snapshot) })
      }
      return out
    }
    return build(root, root.getSnapshot() as Snapshot<unknown>)
  }
}

/** The tree under `actors` (a supervisor's children), in start order. */
export function describeActors(actors: readonly HostedActorView[]): HostedActorNode[] {
  return actors.map((a) => {
    const snapshot = a.actor?.getSnapshot() as Snapshot<unknown> | undefined
    const xstate = a.actor !== undefined && a.xstate !== undefined ? a.xstate.nodes(a.actor) : []
    return {
      kind: 'actor',
      address: a.address,
      logic: a.definition.name,
      state: snapshot === undefined ? null : stateOf(snapshot),
      status: snapshot?.status ?? 'stopped',
      mailbox: a.mailbox.depth,
      restarts: a.restarts,
      handled: a.handled,
      children: [...describeActors(a.children), ...xstate],
    }
  })
}

/** Machines already looked at (a spawn or restart of the same logic asks again). */
const childCapable = new WeakMap<AnyActorLogic, boolean>()

/** True for logic that can invoke or spawn children: the only logic whose inspection events are worth their cost. */
export function canHaveChildren(logic: AnyActorLogic): boolean {
  if (!(logic instanceof StateMachine)) return false
  let capable = childCapable.get(logic)
  if (capable === undefined) {
    const invokes = (node: AnyStateNode): boolean => node.invoke.length > 0 || Object.values(node.states).some(invokes)
    capable = Object.keys(logic.implementations.actors).length > 0 || invokes(logic.root)
    childCapable.set(logic, capable)
  }
  return capable
}

/** The actor that invoked or spawned `ref` (XState's ActorRef names it `_parent`; inspection events do not). */
function parentOf(ref: AnyActorRef): AnyActorRef | undefined {
  return ref._parent // oxlint-disable-line no-underscore-dangle -- XState's public ActorRef type declares it so
}

function stateOf(snapshot: Snapshot<unknown>): JsonValue {
  return isMachineSnapshot(snapshot) ? (snapshot.value as JsonValue) : snapshot.status
}

function logicName(ref: AnyActorRef): string {
  const logic = (ref as { logic?: unknown }).logic
  if (logic instanceof StateMachine) return logic.id
  return typeof ref.src === 'string' ? ref.src : '(inline)'
}

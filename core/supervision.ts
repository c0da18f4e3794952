// Supervision (spec/actors.md, "Supervision"), as Erlang/OTP does it: let it crash, and let the parent decide.
// A parent (an actor, or the system's root) restarts a crashed child alone (one-for-one), with all its
// siblings (all-for-one), or with the siblings started after it (rest-for-one), at most `maxRestarts` times
// within `withinMs`. One crash more and it gives up (restart intensity exceeded) and crashes itself, so its
// own parent decides (escalation); when the root gives up, the whole tree is stopped. A `temporary` child is
// never restarted. The ActorSystem carries out what is decided here.
import type { ActorCell } from './actor-cell.ts'
import { ActorCrashedError, ActorStoppedError, RestartIntensityExceededError } from './errors.ts'
import type { SupervisionSpec, SupervisionStrategy } from './sdk.ts'
import type { SystemEvent, TerminationReason } from './types.ts'

/** The supervisor side of a node in the tree: an actor cell, or the system's root. */
export interface SupervisorNode {
  readonly address: string
  readonly children: ActorCell[]
  /** When it restarted children within its current window (its restart intensity). */
  restartTimes: number[]
  readonly supervision: SupervisionSpec
  readonly isRoot: boolean
}

/** What supervision asks of the system that hosts the tree. */
export interface SupervisedSystem {
  now(): number
  emit(event: SystemEvent): void
  /** Ends an actor for good: children first, its pending work failed with `failWith` (default ActorStoppedError). */
  terminate(cell: ActorCell, reason: TerminationReason, failWith?: Error): void
  /** Stops the actor's running instance and nothing else (a restart follows). */
  halt(cell: ActorCell): void
  /** Fails what waited on the stopped instance: its queued messages and deferred answers. */
  flush(cell: ActorCell, error: Error): void
  /** Starts a fresh instance (initial state, same input) and its static children; throws when it cannot start. */
  boot(cell: ActorCell): void
  /** `cell` crashed: reported, then supervised by its own parent. */
  crash(cell: ActorCell, error: Error): void
  /** Told when the root gives up (the tree was stopped). */
  onEscalation: ((error: Error) => void) | undefined
}

export class Supervisor {
  readonly #system: SupervisedSystem

  constructor(system: SupervisedSystem) {
    this.#system = system
  }

  /** `child` crashed (reported, its message refused): its parent restarts it (and siblings), ends it, or gives up. */
  childCrashed(child: ActorCell, error: Error, crashed: ActorCrashedError): void {
    const system = this.#system
    const sup = child.parent
    if (child.definition.restart === 'temporary') {
      system.terminate(child, { kind: 'crashed', error }, crashed)
      return
    }
    const { maxRestarts, withinMs, strategy } = sup.supervision
    const now = system.now()
    sup.restartTimes = sup.restartTimes.filter((t) => now - t < withinMs)
    if (sup.restartTimes.length >= maxRestarts) {
      const gaveUp = new RestartIntensityExceededError(sup.address, maxRestarts, withinMs, error)
      system.emit({ type: 'escalated', address: sup.address, error: gaveUp, root: sup.isRoot })
      if (sup.isRoot) {
        // The root has no one to escalate to: stop the whole tree and report.
        for (const c of [...sup.children].reverse()) system.terminate(c, c === child ? { kind: 'crashed', error } : { kind: 'stopped', by: 'supervisor' }, c === child ? crashed : undefined)
        sup.restartTimes = []
        system.onEscalation?.(gaveUp)
      } else {
        system.crash(sup as ActorCell, gaveUp)
      }
      return
    }
    sup.restartTimes.push(now)
    const group = restartGroup(strategy, sup.children, child)
    // Stop the group newest first, then start it again in its original order (OTP semantics).
    for (const c of [...group].reverse()) {
      for (const grandchild of [...c.children].reverse()) system.terminate(grandchild, { kind: 'stopped', by: 'parent' })
      system.halt(c)
      system.flush(c, c === child ? crashed : new ActorStoppedError(c.address, 'restarted by its supervisor'))
    }
    for (const c of group) {
      if (c.state !== 'running') continue
      c.restarts++
      try {
        system.boot(c)
      } catch (err) {
        const cause = err instanceof ActorCrashedError && err.cause !== undefined ? err.cause : err
        system.crash(c, cause instanceof Error ? cause : new Error(String(cause)))
        return
      }
      system.emit({ type: 'restarted', address: c.address, restarts: c.restarts })
    }
  }
}

/** The children a restart of `child` takes down and brings back up, in start order. */
export function restartGroup(strategy: SupervisionStrategy, siblings: readonly ActorCell[], child: ActorCell): ActorCell[] {
  if (strategy === 'one-for-one') return [child]
  if (strategy === 'all-for-one') return [...siblings]
  return siblings.slice(Math.max(0, siblings.indexOf(child)))
}

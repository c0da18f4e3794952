// The failure detector as an actor (`<did>/failure-detector`): verified heartbeats arrive in its mailbox
// (`/noir/failure/beat`), it judges the nodes that host this node's deployments every check interval with
// one phi-accrual detector each (a lane's threshold: protected 3, best-effort 6), forgives the silence that
// was this node's own stall (loop-stalls.ts), and tells the orchestrator `/noir/orchestrator/node-lost`
// when it convicts one. A node that beats again is no longer lost, and is judged afresh (the silence it was
// lost for would otherwise widen its window, and its next death would take seconds to see).
//
// Evidence that is not silence: the node's process is gone (its connections closed and a probe of every
// address it listens on was refused: nothing listens there any more). Such a node is convicted at once,
// whatever its lane, without waiting for phi to grow (`/noir/failure/gone`). A partition refuses nothing
// (the probe times out), so it is still judged by silence alone.
//
// The per-node detectors are the actor's own working state (sliding windows of intervals, rebuilt from
// fresh beats after a restart); what others may read is in its context: lost nodes and the stall figures.
import { assign, setup } from 'xstate'
import { defineActor, type ActorDefinition } from '../../core/index.ts'
import type { Lane } from '../workload/workload.ts'
import { LoopStalls } from './loop-stalls.ts'
import { PhiAccrualDetector } from './phi-accrual.ts'

export const FailureBehavior = {
  beat: '/noir/failure/beat',
  gone: '/noir/failure/gone',
} as const

/** What the mesh saw of a node that is gone: connections closed, every listen address refused a probe. */
export interface NodeGone {
  node: string
  /** What was seen, for the log and the deployment's history. */
  evidence: string
}

export interface NodeLost {
  node: string
  phi: number
  lastHeartbeatAt: number | null
  at: number
  /** Set when the conviction came from evidence, not silence (phi is then whatever the silence gave so far). */
  evidence?: string
}

export interface FailureDetectorDeps {
  now(): number
  /** The nodes that host a live replica of this node's deployments, with the strictest lane among them. */
  hosting(): ReadonlyMap<string, Lane>
  /** Called once per conviction (the orchestrator is told). */
  convicted(lost: NodeLost): void
  log(level: 'info' | 'warn', msg: string, fields?: Record<string, unknown>): void
  /** This node's own DID: never judged. */
  self: string
}

export interface FailureDetectorOptions {
  heartbeatIntervalMs: number
  checkIntervalMs: number
  phiThreshold: Record<Lane, number>
}

export interface FailureDetectorContext {
  lost: string[]
  stalls: { count: number; totalMs: number; longestMs: number; forgiven: number }
  watched: number
}

type FailureEvent = { type: 'BEAT'; node: string } | { type: 'GONE'; node: string; evidence: string } | { type: 'CHECK' }

export function failureDetectorActor(deps: FailureDetectorDeps, o: FailureDetectorOptions): ActorDefinition {
  // A factory: each start of the actor (a restart after a crash included) gets fresh detectors.
  const logic = () => {
    const detectors = new Map<string, PhiAccrualDetector>()
    const stalls = new LoopStalls({ intervalMs: o.checkIntervalMs, now: deps.now })
    let forgiven = 0
    const detectorOf = (node: string): PhiAccrualDetector => {
      let d = detectors.get(node)
      if (!d) {
        // A busy machine delays beats by a few hundred ms now and then: tolerate one beat of pause and a
        // wide spread, so the protected lane (phi 3) still declares a silent node lost within ~3.5 beats.
        const beat = o.heartbeatIntervalMs
        d = new PhiAccrualDetector({ firstIntervalMs: beat, minStdDevMs: Math.max(20, beat / 2), acceptablePauseMs: beat, windowSize: 50 })
        detectors.set(node, d)
      }
      return d
    }
    return setup({
      types: { context: {} as FailureDetectorContext, events: {} as FailureEvent },
      delays: { check: o.checkIntervalMs },
      actions: {
        beat: assign(({ context, event }) => {
          if (event.type !== 'BEAT') return {}
          if (!context.lost.includes(event.node)) {
            detectorOf(event.node).heartbeat(deps.now())
            return {}
          }
          // judged afresh: the time it was lost for is not an interval between its beats
          detectors.delete(event.node)
          detectorOf(event.node).heartbeat(deps.now())
          deps.log('info', 'node is back', { node: event.node })
          return { lost: context.lost.filter((n) => n !== event.node) }
        }),
        gone: assign(({ context, event }) => {
          if (event.type !== 'GONE' || event.node === deps.self || context.lost.includes(event.node)) return {}
          if (!deps.hosting().has(event.node)) return {}
          const now = deps.now()
          const det = detectors.get(event.node)
          const last = det?.lastHeartbeat ?? null
          const phi = det?.phi(now) ?? 0
          deps.log('warn', 'node lost', { node: event.node, evidence: event.evidence, silentMs: last !== null ? now - last : null })
          deps.convicted({ node: event.node, phi, lastHeartbeatAt: last, at: now, evidence: event.evidence })
          return { lost: [...context.lost, event.node] }
        }),
        check: assign(({ context }) => {
          const now = deps.now()
          const stalled = stalls.sample(now)
          if (stalled > o.heartbeatIntervalMs) deps.log('info', 'own event loop stalled: peers are not judged on that time', { stalledMs: Math.round(stalled) })
          const hosting = deps.hosting()
          const lost = [...context.lost]
          for (const [node, lane] of hosting) {
            if (node === deps.self || lost.includes(node)) continue
            const det = detectors.get(node)
            if (!det) continue
            const phi = det.phi(now)
            if (phi < o.phiThreshold[lane]) continue
            // the silence less the time our own loop could not have read its beats
            const own = stalls.since(det.lastHeartbeat ?? now)
            if (own > 0 && det.phi(now - own) < o.phiThreshold[lane]) {
              forgiven++
              continue
            }
            lost.push(node)
            const last = det.lastHeartbeat ?? null
            deps.log('warn', 'node lost', { node, phi: Math.round(phi * 100) / 100, silentMs: last !== null ? now - last : null })
            deps.convicted({ node, phi, lastHeartbeatAt: last, at: now })
          }
          return { lost, stalls: { ...stalls.stats, forgiven }, watched: hosting.size }
        }),
      },
    }).createMachine({
      id: 'failure-detector',
      context: { lost: [], stalls: { count: 0, totalMs: 0, longestMs: 0, forgiven: 0 }, watched: 0 },
      initial: 'watching',
      on: { BEAT: { actions: 'beat' }, GONE: { actions: 'gone' } },
      states: {
        watching: {
          after: { check: { target: 'watching', reenter: true, actions: 'check' } },
        },
      },
      exit: () => stalls.stop(),
    })
  }
  return defineActor(logic).with({
    name: 'failure-detector',
    mailboxCapacity: 100_000,
    behaviors: {
      // Local only (not public): the node's pubsub layer tells it the beats it verified.
      [FailureBehavior.beat]: { event: (body: { node: string }): FailureEvent => ({ type: 'BEAT', node: body.node }) },
      // Local only: the node's mesh tells it a node whose process is gone (NodeGone).
      [FailureBehavior.gone]: { event: (body: NodeGone): FailureEvent => ({ type: 'GONE', node: body.node, evidence: body.evidence }) },
    },
  })
}

// Following a deployment until it reaches a phase (`noir deploy`, spec/cli.md): the status long poll of the
// daemon or the gateway (spec/orchestration.md "Local API"), asked to answer as soon as the phase is one of
// `until` or the deployment has had more events than were printed, so each event is printed as it happens
// and the wait ends as soon as the phase is reached. An older server answers every poll at once: an answer
// with nothing new is followed by a short pause, never by a busy loop; one that waits for the phase but does
// not count events (its views have no `eventsDropped`) is polled for its events as before. Ctrl-C
// (ctx.signal) aborts the request in flight.
import type { CommandContext } from './command.ts'
import type { DeploymentsTarget } from './gateway-login.ts'
import { eventCount, type DeploymentPhase, type DeploymentView } from '../actors/deployment/model.ts'

/** How long one poll may wait at the server, ms (below the common 30 s idle timeouts of proxies). */
export const FOLLOW_WAIT_MS = 25_000
/** The pause after an answer that brought nothing new (an older server that does not wait), ms. */
export const FOLLOW_IDLE_MS = 150

export interface FollowOptions {
  /** Print nothing (--json): the long poll then waits for the phase only. */
  quiet: boolean
  /** Called with each event line not printed yet (text mode). */
  print: (v: DeploymentView, seen: number) => number
  waitMs?: number
  idleMs?: number
  /** The pause (tests count them); ends early when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>
}

const pause = (ms: number, signal: AbortSignal): Promise<void> => new Promise((resolve) => {
  if (signal.aborted) return resolve()
  const done = (): void => {
    clearTimeout(timer)
    signal.removeEventListener('abort', done)
    resolve()
  }
  const timer = setTimeout(done, ms)
  signal.addEventListener('abort', done, { once: true })
})

/** Follows deployment `id` until its phase is one of `until` (or ctx.signal aborts): its last view. */
export async function followDeployment(ctx: CommandContext, target: DeploymentsTarget, id: string, until: readonly DeploymentPhase[], o: FollowOptions): Promise<DeploymentView> {
  const sleep = o.sleep ?? pause
  // a plain status first: it also tells whether the server counts events (`eventsDropped`, which came with
  // `?events=`); one that does not would answer a poll only on the phase, so its events are polled as before
  let last = await target.status(id)
  let seen = o.quiet ? 0 : o.print(last, 0)
  const counts = 'eventsDropped' in last
  const polling = !o.quiet && !counts
  for (;;) {
    if (until.includes(last.phase) || ctx.signal.aborted) return last
    const asked = seen
    if (polling) await sleep(o.idleMs ?? FOLLOW_IDLE_MS, ctx.signal)
    try {
      last = polling
        ? await target.status(id)
        : await target.watch(id, { until: [...until], ...(o.quiet ? {} : { events: asked }), waitMs: o.waitMs ?? FOLLOW_WAIT_MS }, ctx.signal)
    } catch (err) {
      // Ctrl-C while the poll waited: the deployment as last seen
      if (ctx.signal.aborted) return last
      throw err
    }
    if (!o.quiet) seen = o.print(last, seen)
    if (until.includes(last.phase)) return last
    // an answer with nothing new: the wait ran out, or the server does not wait (then it would be a busy loop)
    if (!polling && (o.quiet || eventCount(last) <= asked)) await sleep(o.idleMs ?? FOLLOW_IDLE_MS, ctx.signal)
  }
}

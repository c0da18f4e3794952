// The long poll of a deployment's status (spec/orchestration.md "Local API", spec/gateway.md): the query
// `?until=PHASE,...&events=N&waitMs=N` read the one way the node's API and the gateway both read it, and
// written back the one way a client (the CLI, the gateway asking its node) sends it.
import type { DeploymentPhase } from '../deployment/model.ts'

export const DEPLOYMENT_PHASES: readonly DeploymentPhase[] = ['preparing', 'bidding', 'committing', 'provisioning', 'running', 'degraded', 'stopping', 'completed', 'failed', 'stopped', 'handed-over', 'idle']

/** The default and the longest wait of a long poll, ms. */
export const DEFAULT_WAIT_MS = 30_000
export const MAX_WAIT_MS = 60_000

/** What a long poll waits for: one of `until` (may be empty when `events` is given), more than `events` events, or `waitMs`. */
export interface DeploymentWait {
  until: DeploymentPhase[]
  /** The events the caller has seen (the deployment's `eventsDropped + events.length` it was shown); absent: phases only. */
  events?: number
  waitMs: number
}

/** A query parameter the long poll cannot take: which one, and why (said by each API as its own 400). */
export class DeploymentWaitQueryError extends Error {
  override readonly name = 'DeploymentWaitQueryError'
  readonly field: 'until' | 'events' | 'waitMs'
  constructor(field: 'until' | 'events' | 'waitMs', message: string) {
    super(message)
    this.field = field
  }
}

const WHOLE = /^[0-9]{1,15}$/

/**
 * The long poll a query asks for, or null for a plain status (neither `until` nor `events`: `waitMs` alone
 * asks for nothing, as before `events` existed). Throws DeploymentWaitQueryError naming a bad parameter.
 */
export function deploymentWaitOf(query: { get(name: string): string | null }): DeploymentWait | null {
  const until = query.get('until')
  const events = query.get('events')
  if (until === null && events === null) return null
  const wait: DeploymentWait = { until: until === null ? [] : phasesOf(until), waitMs: waitMsOf(query.get('waitMs')) }
  if (events !== null) {
    if (!WHOLE.test(events)) throw new DeploymentWaitQueryError('events', `'events' is how many of the deployment's events the caller has seen: a whole number from 0 (not '${events.slice(0, 40)}')`)
    wait.events = Number(events)
  }
  return wait
}

/** The query string of a long poll (without the '?'). */
export function deploymentWaitQuery(w: DeploymentWait): string {
  const q = new URLSearchParams()
  if (w.until.length > 0) q.set('until', w.until.join(','))
  if (w.events !== undefined) q.set('events', String(w.events))
  q.set('waitMs', String(w.waitMs))
  return q.toString()
}

/** `until=running,failed`: at least one, each a deployment phase. */
function phasesOf(q: string): DeploymentPhase[] {
  const list = q.split(',').map((x) => x.trim()).filter((x) => x !== '')
  const bad = list.find((x) => !DEPLOYMENT_PHASES.includes(x as DeploymentPhase))
  if (list.length === 0 || bad !== undefined) throw new DeploymentWaitQueryError('until', `'until' names deployment phases (${DEPLOYMENT_PHASES.join(', ')})${bad !== undefined ? `: not '${bad.slice(0, 40)}'` : ''}`)
  return [...new Set(list)] as DeploymentPhase[]
}

/** `waitMs`: how long the long poll may wait, ms (default 30 s; more than 60 s is 60 s). */
function waitMsOf(q: string | null): number {
  if (q === null) return DEFAULT_WAIT_MS
  if (!WHOLE.test(q)) throw new DeploymentWaitQueryError('waitMs', `'waitMs' must be a whole number of ms from 0 (at most ${MAX_WAIT_MS} are waited; not '${q.slice(0, 40)}')`)
  return Math.min(Number(q), MAX_WAIT_MS)
}

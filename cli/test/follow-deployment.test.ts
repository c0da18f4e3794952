// How `noir deploy` follows a deployment (cli/follow-deployment.ts) against stand-ins of its server, counted
// rather than timed: with the long poll each event is printed once, as its answer, and the phase ends the
// follow with no pause at all; an older server that answers every poll at once gets a pause after each
// answer that brought nothing new (no busy loop); --json asks for the phase only; Ctrl-C aborts the poll in
// flight. The real daemon's side: cli/test/orchestration-cli.test.ts (its status requests counted).
import t from 'tap'
import { PassThrough } from 'node:stream'
import { followDeployment } from '../follow-deployment.ts'
import { printEvents, settledPhases } from '../commands/deploy.ts'
import type { CommandContext } from '../command.ts'
import type { DeploymentsTarget } from '../gateway-login.ts'
import type { DeploymentWait } from '../../actors/orchestrator/deployment-wait.ts'
import type { DeploymentPhase, DeploymentView } from '../../actors/deployment/model.ts'

function context(): { ctx: CommandContext; out: () => string; abort: () => void } {
  const stdout = new PassThrough()
  let text = ''
  stdout.on('data', (c: Buffer) => (text += c.toString('utf8')))
  const ac = new AbortController()
  const ctx: CommandContext = { home: '/nonexistent', json: false, env: {}, stdout, stderr: new PassThrough(), signal: ac.signal }
  return { ctx, out: () => text, abort: () => ac.abort() }
}

/** A deployment that goes through `phases`, one event each, a step at a time. */
class Timeline {
  step = 0
  readonly phases: DeploymentPhase[] = ['preparing', 'bidding', 'committing', 'provisioning', 'running']
  readonly #listeners = new Set<() => void>()
  view(): DeploymentView {
    const events = this.phases.slice(0, this.step + 1).map((p, i) => ({ at: 1_000 + i, msg: `now ${p}` }))
    return { id: 'd1', kind: 'service', phase: this.phases[this.step]!, events, eventsDropped: 0 } as unknown as DeploymentView
  }
  advance(): void {
    if (this.step < this.phases.length - 1) this.step++
    for (const l of [...this.#listeners]) l()
  }
  changed(signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const l = (): void => {
        this.#listeners.delete(l)
        resolve()
      }
      this.#listeners.add(l)
      signal.addEventListener('abort', () => {
        this.#listeners.delete(l)
        reject(Object.assign(new Error('aborted'), { name: 'AbortError' }))
      }, { once: true })
    })
  }
}

const target = (watch: DeploymentsTarget['watch'], status: () => DeploymentView): DeploymentsTarget => ({
  where: 'test', remote: false, watch, status: async () => status(),
  create: () => Promise.reject(new Error('not here')), list: () => Promise.reject(new Error('not here')), stop: () => Promise.reject(new Error('not here')),
  logs: () => { throw new Error('not here') }, usage: () => Promise.reject(new Error('not here')),
})

const printed = (text: string): string[] => text.trim().split('\n').map((l) => l.replace(/^\S+\s+/, ''))
const ALL = ['now preparing', 'now bidding', 'now committing', 'now provisioning', 'now running']

t.test('with the long poll: one answer per event, each printed once as it comes, and no pause', async (t) => {
  const { ctx, out } = context()
  const d = new Timeline()
  const asked: DeploymentWait[] = []
  const server = async (_id: string, w: DeploymentWait, signal: AbortSignal): Promise<DeploymentView> => {
    asked.push(w)
    // the server's side: answered once the phase is one asked for or there are more events than seen
    for (;;) {
      const v = d.view()
      if (w.until.includes(v.phase) || v.events.length > (w.events ?? Infinity)) return v
      await d.changed(signal)
    }
  }
  let sleeps = 0
  const following = followDeployment(ctx, target(server, () => d.view()), 'd1', settledPhases('service', true), { quiet: false, print: (v, seen) => printEvents(ctx, v, seen), sleep: async () => void sleeps++ })
  // the deployment moves on its own, a step per turn of the event loop
  const mover = setInterval(() => d.advance(), 5)
  t.teardown(() => clearInterval(mover))
  const v = await following
  t.equal(v.phase, 'running')
  t.same(printed(out()), ALL, 'every event printed once, in order')
  t.ok(asked.length <= ALL.length, `${asked.length} poll(s) for ${ALL.length} events`)
  t.equal(asked[0]!.events, 1, 'the first poll: the event of the first (plain) status printed')
  t.ok(asked.every((w, i) => i === 0 || w.events! > asked[i - 1]!.events!), 'and that count grows with each answer')
  t.same(asked[0]!.until, ['running', 'completed', 'failed', 'stopped'])
  t.equal(sleeps, 0, 'no pause: every answer brought something new')
})

t.test('an older server that answers at once: a pause after each answer with nothing new, never a busy loop', async (t) => {
  const { ctx, out } = context()
  const d = new Timeline()
  let polls = 0
  let sleeps = 0
  let lastSeenCount = -1
  let unchangedInARow = 0
  let worstRun = 0
  const old = async (): Promise<DeploymentView> => {
    polls++
    const v = d.view()
    unchangedInARow = v.events.length === lastSeenCount ? unchangedInARow + 1 : 0
    worstRun = Math.max(worstRun, unchangedInARow)
    lastSeenCount = v.events.length
    return v
  }
  // the deployment moves on by a step every third pause (the pauses are its only clock here)
  const sleep = async (): Promise<void> => {
    sleeps++
    if (sleeps % 3 === 0) d.advance()
  }
  const v = await followDeployment(ctx, target(old, () => d.view()), 'd1', settledPhases('service', true), { quiet: false, print: (x, seen) => printEvents(ctx, x, seen), sleep })
  t.equal(v.phase, 'running')
  t.same(printed(out()), ALL, 'every event printed once')
  // the first event came with the plain status before the polls
  t.equal(polls - (ALL.length - 1), sleeps, `${polls} polls, ${ALL.length - 1} with a new event: each of the other ${sleeps} was followed by a pause`)
  t.ok(worstRun <= 3, `at most 3 answers in a row with nothing new (${worstRun}): one per pause between steps`)
})

t.test('--json: the phase only (no events asked, nothing printed), a pause after an answer short of it', async (t) => {
  const { ctx, out } = context()
  const d = new Timeline()
  const asked: DeploymentWait[] = []
  let sleeps = 0
  const v = await followDeployment(ctx, target(async (_id, w) => {
    asked.push(w)
    return d.view()
  }, () => d.view()), 'd1', ['provisioning'], { quiet: true, print: () => { throw new Error('nothing printed') }, sleep: async () => { sleeps++; d.advance() } })
  t.equal(v.phase, 'provisioning')
  t.equal(out(), '')
  t.ok(asked.every((w) => !('events' in w)), 'no events in the wait')
  t.equal(sleeps, asked.length - 1, 'answers short of the phase (a wait that ran out, or an older server) are followed by a pause')
})

t.test('Ctrl-C aborts the poll in flight and ends the follow with the deployment as last seen', async (t) => {
  const { ctx, abort } = context()
  const d = new Timeline()
  const signals: AbortSignal[] = []
  const following = followDeployment(ctx, target(async (_id, _w, signal) => {
    signals.push(signal)
    await d.changed(signal) // nothing changes: only the abort ends it (else this test times out)
    return d.view()
  }, () => d.view()), 'd1', ['running'], { quiet: false, print: (v, seen) => printEvents(ctx, v, seen), sleep: async () => {} })
  while (signals.length < 1) await new Promise((r) => setImmediate(r))
  abort()
  const v = await following
  t.equal(v.phase, 'preparing', 'the view last seen')
  t.ok(signals.at(-1)!.aborted, 'the request in flight was aborted')
})

t.test('a server that waits for the phase but does not count events (no eventsDropped): its events are polled as before', async (t) => {
  const { ctx, out } = context()
  const d = new Timeline()
  let statuses = 0
  let sleeps = 0
  const v = await followDeployment(ctx, target(() => Promise.reject(new Error('a poll that would wait 25 s for the phase, printing nothing meanwhile')), () => {
    statuses++
    const { eventsDropped: _e, ...older } = d.view()
    return older as DeploymentView
  }), 'd1', settledPhases('service', true), { quiet: false, print: (x, seen) => printEvents(ctx, x, seen), sleep: async () => { sleeps++; d.advance() } })
  t.equal(v.phase, 'running')
  t.same(printed(out()), ALL, 'every event printed once, in order')
  t.same([statuses, sleeps], [ALL.length, ALL.length - 1], 'a plain status after each pause')
})

t.test('printEvents counts events from the deployment\'s first, also past the ones no longer kept', async (t) => {
  const { ctx, out } = context()
  const v = { events: [{ at: 0, msg: 'e200' }, { at: 0, msg: 'e201' }, { at: 0, msg: 'e202' }], eventsDropped: 200 } as unknown as DeploymentView
  t.equal(printEvents(ctx, v, 201), 203)
  t.same(printed(out()), ['e201', 'e202'], 'only those not printed yet')
  const older = { events: [{ at: 0, msg: 'a' }, { at: 0, msg: 'b' }] } as unknown as DeploymentView
  t.equal(printEvents(ctx, older, 1), 2, 'a server without eventsDropped: counted from events[0]')
})

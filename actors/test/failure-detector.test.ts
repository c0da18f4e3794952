// The failure detector actor on XState's SimulatedClock: a node whose process is gone (evidence from the
// mesh) is convicted at once, whatever its silence so far; evidence about a node this node does not depend on
// convicts nothing; a node that came back after being lost is judged afresh, so its next death is seen as
// soon as its first one was (the time it was lost for is not an interval between its beats).
import t from 'tap'
import { createActor, SimulatedClock, type AnyActorLogic } from 'xstate'
import { failureDetectorActor, type NodeLost } from '../failure/failure-detector.ts'
import type { Lane } from '../workload/workload.ts'

const BEAT = 100
const CHECK = 10

function harness(hosting: Map<string, Lane>) {
  const clock = new SimulatedClock()
  const lost: NodeLost[] = []
  const def = failureDetectorActor({
    now: () => clock.now(),
    self: 'did:self',
    hosting: () => hosting,
    convicted: (l) => lost.push(l),
    log: () => {},
  }, { heartbeatIntervalMs: BEAT, checkIntervalMs: CHECK, phiThreshold: { protected: 3, 'best-effort': 6 } })
  const logic = (typeof def.logic === 'function' ? (def.logic as () => AnyActorLogic)() : def.logic)
  const actor = createActor(logic, { clock } as never)
  actor.start()
  /** Advances simulated time in check-sized steps (so the detector's own loop never looks stalled). */
  const advance = (ms: number): void => {
    for (let i = 0; i < ms; i += CHECK) clock.increment(CHECK)
  }
  /** `nodes` beat every BEAT ms for `ms`. */
  const beating = (nodes: string | string[], ms: number): void => {
    for (let i = 0; i < ms; i += BEAT) {
      for (const node of [nodes].flat()) actor.send({ type: 'BEAT', node })
      advance(BEAT)
    }
  }
  /** Silence for `node` until it is convicted (or `maxMs`): the silence it took. */
  const silenceUntilLost = (node: string, maxMs: number): number | undefined => {
    const before = lost.filter((l) => l.node === node).length
    for (let ms = 0; ms <= maxMs; ms += CHECK) {
      if (lost.filter((l) => l.node === node).length > before) return ms
      clock.increment(CHECK)
    }
    return undefined
  }
  return { actor, lost, advance, beating, silenceUntilLost }
}

t.test('a node whose process is gone is convicted at once, with the evidence', async (t) => {
  const h = harness(new Map([['did:a', 'best-effort']]))
  h.beating('did:a', 2000)
  h.actor.send({ type: 'GONE', node: 'did:a', evidence: 'connections closed and 1 listen address(es) refused' })
  t.equal(h.lost.length, 1, 'convicted on the evidence, no silence needed (best-effort would wait for phi 6)')
  t.equal(h.lost[0]!.node, 'did:a')
  t.match(h.lost[0]!.evidence, /refused/)
  t.ok(h.lost[0]!.phi < 6, `its phi was still low (${h.lost[0]!.phi.toFixed(2)})`)
  h.actor.send({ type: 'GONE', node: 'did:a', evidence: 'again' })
  h.advance(5 * BEAT)
  t.equal(h.lost.filter((l) => l.node === 'did:a').length, 1, 'one conviction, not one per report')
  h.actor.stop()
})

t.test('evidence about a node hosting nothing of ours, or about ourselves, convicts nothing', async (t) => {
  const h = harness(new Map([['did:a', 'protected']]))
  h.beating(['did:a', 'did:b'], 1000)
  h.actor.send({ type: 'GONE', node: 'did:b', evidence: 'refused' })
  h.actor.send({ type: 'GONE', node: 'did:self', evidence: 'refused' })
  h.beating(['did:a', 'did:b'], 300)
  t.same(h.lost, [], 'no conviction')
  t.equal(h.actor.getSnapshot().context.lost.length, 0)
  h.actor.stop()
})

t.test('a node back after being lost is judged afresh: its second death is seen as fast as its first', async (t) => {
  const h = harness(new Map([['did:a', 'protected']]))
  h.beating('did:a', 3000)
  const first = h.silenceUntilLost('did:a', 30_000)
  t.ok(first !== undefined, `first silence convicted after ${first} ms`)
  // lost for 20 s, then back: that gap must not count as an interval between its beats
  h.advance(20_000)
  h.beating('did:a', 3000)
  t.same(h.actor.getSnapshot().context.lost, [], 'back: no longer lost')
  const second = h.silenceUntilLost('did:a', 30_000)
  t.ok(second !== undefined, `second silence convicted after ${second} ms`)
  t.equal(second, first, 'the same silence convicts it again (a window still holding the 20 s gap would take seconds)')
  h.actor.stop()
})

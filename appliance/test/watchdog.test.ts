// The watchdog's decisions on a simulated clock: nothing while the daemon renews; each contract replica
// stopped once its lane's grace has passed since the last renewal; never the owner's own containers; out
// of the way of a daemon that came back or took the home over.
import t from 'tap'
import { decide, GRACE_MS, parseLease, type Replica } from '../watchdog/lease.ts'

const P: Replica = { id: 'protected-1', graceMs: GRACE_MS.protected }
const B: Replica = { id: 'besteffort-1', graceMs: GRACE_MS['best-effort'] }

t.test('while the daemon renews, nothing is stopped', async (t) => {
  for (let now = 1000; now < 60_000; now += 250) {
    t.same(decide(now, { lease: { pid: 7, at: now - 240 }, daemonAlive: true, watchedPid: 7 }, [P, B]), { action: 'wait' })
  }
})

t.test('a daemon killed with SIGKILL: each replica stops when its grace has passed since the last renewal, then the watchdog exits', async (t) => {
  const last = 10_000
  const s = { lease: { pid: 7, at: last }, daemonAlive: false, watchedPid: 7 }
  t.same(decide(last + 999, s, [P, B]), { action: 'wait' }, 'within the protected grace')
  t.same(decide(last + 1000, s, [P, B]), { action: 'stop', replicas: ['protected-1'], silentMs: 1000 }, 'the protected replica at 1 s')
  t.same(decide(last + 2999, s, [B]), { action: 'wait' })
  t.same(decide(last + 3000, s, [B]), { action: 'stop', replicas: ['besteffort-1'], silentMs: 3000 }, 'the best-effort one at 3 s')
  t.match(decide(last + 3100, s, []), { action: 'exit' }, 'nothing left: the watchdog exits')
})

t.test('a hung daemon (alive, silent) loses its replicas the same way, and the watchdog stays for when it wakes', async (t) => {
  const s = { lease: { pid: 7, at: 0 }, daemonAlive: true, watchedPid: 7 }
  t.same(decide(500, s, [P]), { action: 'wait' })
  t.same(decide(1200, s, [P]), { action: 'stop', replicas: ['protected-1'], silentMs: 1200 })
  t.same(decide(5000, s, []), { action: 'wait' }, 'no exit while the daemon process exists')
})

t.test('a daemon restarted within the grace keeps its work; a new daemon of the same home sends the old watchdog away', async (t) => {
  t.same(decide(10_800, { lease: { pid: 7, at: 10_700 }, daemonAlive: true, watchedPid: 7 }, [P]), { action: 'wait' })
  t.match(decide(10_800, { lease: { pid: 8, at: 10_700 }, daemonAlive: false, watchedPid: 7 }, [P]), { action: 'exit', why: /daemon 8 took over/ })
})

t.test('a lease that cannot be read counts as never renewed', async (t) => {
  t.equal(parseLease('garbage'), undefined)
  t.equal(parseLease('{"pid":"7","at":1}'), undefined)
  t.same(parseLease('{"pid":7,"at":1}'), { pid: 7, at: 1 })
  t.same(decide(5000, { lease: undefined, daemonAlive: false, watchedPid: 7 }, [P]), { action: 'stop', replicas: ['protected-1'], silentMs: 5000 })
})

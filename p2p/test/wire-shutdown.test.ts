// Must show: a node that stops (SIGTERM) right after answering still gets its answer to a peer that is too
// busy to read it at once: the wire ends its streams and waits (at most 2 s) for the peer to end its side
// before the connection closes (spec/wire.md, "Hanging up"). Real daemon process, real libp2p on 127.0.0.1.
import t from 'tap'
import { spawn } from 'node:child_process'
import { signEnvelope } from '../../identity/envelope.ts'
import { DaemonCluster } from '../../scripts/testing/daemons.ts'
import { Probe } from './probe.ts'

const cluster = new DaemonCluster()
t.teardown(() => cluster.cleanup())

t.test('a node stopped right after it answered: a busy peer still reads the answer', async (t) => {
  const d = await cluster.start()
  const probe = await Probe.start({ bootstrap: d.multiaddrs })
  t.teardown(() => probe.stop())
  const ask = signEnvelope(probe.key, { from: probe.did, to: `${d.did}/node`, behavior: '/noir/node/echo', body: 'last words', replyTo: probe.did })
  await probe.mesh.transport.send(d.did, ask.bytes)
  // SIGTERM from another process 300 ms from now, while this one is busy: the node answers, then stops, and
  // everything waits unread in the probe's socket
  const killer = spawn('sh', ['-c', `sleep 0.3; kill -TERM ${d.pid}`], { stdio: 'ignore' })
  const killerDone = new Promise((resolve) => killer.once('exit', resolve))
  const until = Date.now() + 1_500
  while (Date.now() < until) {
    // busy: nothing is read
  }
  const answer = await probe.waitFor((e) => e.inReplyTo === ask.envelope.id, 10_000)
  t.same(answer.body, { ok: true, value: 'last words' }, 'the answer arrived')
  const exit = await d.exited
  t.equal(exit.code, 0, 'and the node stopped cleanly')
  await killerDone
})

// Runs alone (.taprc serial: p2p/test/alone): it measures a daemon's liveness under a flood on a 2-core machine.
// A stranger floods one daemon of a three-daemon mesh from a stock js-libp2p node (libp2p packages; the
// project's public message format to sign with): tens of thousands of bid requests each signed by a fresh
// key, as many again signed by one key, junk on the pubsub topic, and garbage streams on the actor protocol.
// The victim hosts a replica of a protected deployment orchestrated by another daemon, which meanwhile keeps
// pinging and asking it. The victim must keep serving, refuse the flood cheaply, send a bounded number of bid
// answers, keep beating (no false failover), and give its memory back; the figures are printed.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { eventually, startConnectedMesh, type DaemonHandle } from '../../../scripts/testing/daemons.ts'
import { docker, dockerImage, requireOrSkip } from '../../../scripts/testing/requirements.ts'
import type { DeploymentView } from '../../../actors/orchestrator/orchestrator.ts'
import { Probe } from '../probe.ts'

const IMAGE = 'noir/busybox:latest'
/** Bid requests per flood phase (one with a fresh key each, one with a single key). */
const N = Number(process.env.NOIR_FLOOD_N ?? 20_000)
/**
 * How long after the flood the live heap may take to come back (the issue asks for 60 s): it is measured
 * (after a full collection) every 2 s from then on, and the first measure back at the baseline ends the wait.
 */
const SETTLE_MS = Number(process.env.NOIR_FLOOD_SETTLE_MS ?? 60_000)
/** The live heap counts as back when it is within this much of its baseline. */
const HEAP_BACK_MIB = 16
const BEAT_MS = 250

const rssMiB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024

interface Memory { rss: number; heapUsed: number; external: number; arrayBuffers: number; afterGc: boolean }
interface Status {
  memory: Memory
  broadcast: { accepted: number; refused: Record<string, number>; senders: number; scores: { graylisted: number; lowest: number | null; penalised: unknown[] } }
  services: { orchestration: { bidAnswers: { sent: number; inFlight: number; dropped: Record<string, number> } } }
}

t.test('a stranger\'s flood of bid requests (fresh keys, then one key), junk and garbage streams leaves the victim serving and beating, with no false failover, bounded bid answers, and its memory back', async (t) => {
  if (!requireOrSkip(t, docker, dockerImage(IMAGE))) return
  // --expose-gc: the status then reports the live heap (after a full collection), not uncollected garbage
  const { nodes } = await startConnectedMesh(t, 3, { share: 'cpu=1,memory=1GiB,disk=2GiB,gpu=0', orchestration: { beatMs: BEAT_MS } }, { NODE_OPTIONS: '--expose-gc' })
  const orchestrator = nodes[0]!
  const d = await orchestrator.api.post<DeploymentView>('/v1/deployments', {
    workload: {
      apiVersion: 'noir/v1', kind: 'service', name: 'guarded', lane: 'protected',
      runtime: { type: 'container', image: IMAGE, command: ['sh', '-c', 'while true; do sleep 1; done'] },
      resources: { cpu: 0.1, memory: '16Mi' }, service: { replicas: 2 },
    },
  })
  const placed = await eventually(async () => {
    const x = await orchestrator.api.get<DeploymentView>(`/v1/deployments/${d.id}`)
    return x.phase === 'running' && x
  }, 60_000, 200)
  // the victim hosts a replica and is not the orchestrating node; the relay is the third daemon
  const victimDid = placed.replicas.find((r) => r.node !== orchestrator.did)!.node!
  const victim = nodes.find((n) => n.did === victimDid) as DaemonHandle
  const relay = nodes.find((n) => n !== victim && n !== orchestrator) as DaemonHandle

  // the victim's liveness beats, as a neighbour hears them
  const listener = await Probe.start({ bootstrap: victim.multiaddrs })
  t.teardown(() => listener.stop())
  const beats: number[] = []
  listener.mesh.broadcast.subscribe('noir/alive/v1', (m) => {
    if (m.from === victim.did) beats.push(Date.now())
  })
  await eventually(() => beats.length >= 4, 20_000)
  await new Promise((r) => setTimeout(r, 2_000))

  // Two attackers, one after the other, each a stock js-libp2p node with its own peer id: the first floods
  // bid requests each signed by a fresh key, the second as many signed by one key, then junk (2 s later, once
  // its neighbour budget has refilled, so it is parsed and rejected) and garbage streams.
  const lines: Record<string, unknown>[] = []
  const attack = (phases: string[]): Record<string, unknown>[] & { go?: () => void } => {
    const own: Record<string, unknown>[] & { go?: () => void } = []
    const attacker = spawn(process.execPath, [fileURLToPath(new URL('../fixtures/flood-attacker.ts', import.meta.url)), victim.multiaddrs[0]!, victim.peerId, ...phases], { stdio: ['pipe', 'pipe', 'inherit'] })
    own.go = () => attacker.stdin.end('go\n')
    t.teardown(() => attacker.kill('SIGKILL'))
    let buf = ''
    attacker.stdout.on('data', (c: Buffer) => {
      buf += c.toString('utf8')
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        const line = JSON.parse(buf.slice(0, i)) as Record<string, unknown>
        own.push(line)
        lines.push(line)
        buf = buf.slice(i + 1)
      }
    })
    return own
  }
  const first = attack([`fresh:${N}`])
  await eventually(() => first.some((l) => l.ready), 180_000)

  const logBytes = (x: DaemonHandle): number => x.logLines().reduce((n, l) => n + JSON.stringify(l).length + 1, 0)
  const memOf = async (x: DaemonHandle): Promise<Memory> => (await x.api.get<Status>('/v1/status?gc=1')).memory
  const before = { victim: rssMiB(victim.pid), relay: rssMiB(relay.pid), log: logBytes(victim), heap: await memOf(victim) }
  let peak = { victim: before.victim, relay: before.relay }
  const sampler = setInterval(() => {
    try {
      peak = { victim: Math.max(peak.victim, rssMiB(victim.pid)), relay: Math.max(peak.relay, rssMiB(relay.pid)) }
    } catch {
      // a daemon gone is caught below
    }
  }, 200)
  t.teardown(() => clearInterval(sampler))

  // The orchestrating node keeps pinging and asking the victim all along.
  const run = { on: true }
  const started = Date.now()
  const pings: number[] = []
  const failed: string[] = []
  const legit = (async () => {
    while (run.on) {
      const t0 = performance.now()
      try {
        await orchestrator.api.post('/v1/peers/ping', { target: victim.did, timeoutMs: 5000 })
        await orchestrator.api.post('/v1/actor/send', { to: `${victim.did}/node`, behavior: '/noir/node/echo', body: { n: pings.length }, ask: true, timeoutMs: 5000 })
        pings.push(performance.now() - t0)
      } catch (err) {
        failed.push(`${Date.now() - started} ms ${(err as Error).name}: ${(err as Error).message.slice(0, 120)}`)
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  })()

  const floodStart = Date.now()
  first.go!()
  // peer scoring graylists the attacker (over its budget, then for its junk): watched while it is connected
  let scored: Status['broadcast']['scores'] | undefined
  let scoredAt = 0
  let second: Record<string, unknown>[] = []
  const watcher = (async () => {
    while (!second.some((l) => l.done) && scored === undefined) {
      const x = await victim.api.get<Status>('/v1/status').then((y) => y.broadcast.scores, () => undefined)
      if (x !== undefined && x.graylisted > 0) {
        scored = x
        scoredAt = Date.now()
      }
      await new Promise((r) => setTimeout(r, 200))
    }
  })()
  await eventually(() => first.find((l) => l.done), 600_000)
  const secondAt = Date.now()
  const next = attack([`one:${N}`, 'pause:2000', `junk:${N / 10}`, 'pause:4000', 'streams:50'])
  second = next
  await eventually(() => next.some((l) => l.ready), 180_000)
  next.go!()
  await eventually(() => next.find((l) => l.done), 600_000)
  await watcher
  const floodEnd = Date.now()
  await new Promise((r) => setTimeout(r, 3000))
  run.on = false
  await legit
  const s = await victim.api.get<Status>('/v1/status')
  const after3 = await memOf(victim)
  const settleFrom = Date.now()
  let heap = after3
  while (heap.heapUsed - before.heap.heapUsed >= HEAP_BACK_MIB && Date.now() - settleFrom < SETTLE_MS) {
    await new Promise((r) => setTimeout(r, 2000))
    heap = await memOf(victim) // a full collection first (--expose-gc): then the RSS too
  }
  const settledS = ((Date.now() - settleFrom) / 1000).toFixed(0)
  const after = { victim: rssMiB(victim.pid), relay: rssMiB(relay.pid), log: logBytes(victim), heap }
  clearInterval(sampler)

  // the longest silence of the victim's beats from the flood's start to 3 s after its end
  const during = beats.filter((b) => b >= floodStart - BEAT_MS * 4 && b <= floodEnd + 3000)
  let silence = 0
  let silenceAt = 0
  for (let i = 1; i < during.length; i++) {
    if (during[i]! - during[i - 1]! > silence) {
      silence = during[i]! - during[i - 1]!
      silenceAt = during[i - 1]! - floodStart
    }
  }
  const view = await orchestrator.api.get<DeploymentView>(`/v1/deployments/${d.id}`)
  const lost = orchestrator.logLines().filter((l) => l.msg === 'node lost')
  if (lost.length > 0) {
    const own = (await orchestrator.api.get<{ services: { orchestration: { ownStalls: unknown } } }>('/v1/status')).services.orchestration.ownStalls
    t.comment(`flood from 0 to ${floodEnd - floodStart} ms, second attacker started at ${secondAt - floodStart} ms, node lost at ${Date.parse(String(lost[0]!.t)) - floodStart} ms`)
    t.comment(`the orchestrator: ${JSON.stringify(lost)}; its own stalls ${JSON.stringify(own)}; the victim's beats heard here around it: ${beats.filter((b) => Math.abs(b - Date.parse(String(lost[0]!.t))) < 3_000).map((b) => b - Date.parse(String(lost[0]!.t))).join(' ')}`)
  }

  const sorted = [...pings].sort((a, b) => a - b)
  const p50 = sorted[Math.floor(sorted.length / 2)] ?? NaN
  const p99 = sorted[Math.floor(sorted.length * 0.99)] ?? NaN
  const phases = lines.filter((l) => l.phase).map((l) => `${String(l.phase)} ${String(l.sent)}/${String(l.n)} in ${String(l.ms)} ms`).join(', ')
  t.comment(`flood: ${phases}`)
  t.comment(`victim RSS MiB: before ${before.victim.toFixed(0)}, peak ${peak.victim.toFixed(0)}, ${settledS} s after ${after.victim.toFixed(0)}; relay: ${before.relay.toFixed(0)} / ${peak.relay.toFixed(0)} / ${after.relay.toFixed(0)}`)
  t.comment(`victim heap MiB (used/external/arrayBuffers): before ${before.heap.heapUsed}/${before.heap.external}/${before.heap.arrayBuffers}, 3 s after ${after3.heapUsed}/${after3.external}/${after3.arrayBuffers}, ${settledS} s after ${after.heap.heapUsed}/${after.heap.external}/${after.heap.arrayBuffers}`)
  t.comment(`legit ping+ask during the flood: ${pings.length} ok, ${failed.length} failed, p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`)
  t.comment(`victim's beats: longest silence ${silence} ms from ${silenceAt} ms into the flood (beat every ${BEAT_MS} ms; the second attacker came at ${secondAt - floodStart} ms), ${during.length} beats heard`)
  t.comment(`bid answers sent ${s.services.orchestration.bidAnswers.sent}, dropped ${JSON.stringify(s.services.orchestration.bidAnswers.dropped)}; broadcasts accepted ${s.broadcast.accepted}, refused ${JSON.stringify(s.broadcast.refused)}; log grew ${after.log - before.log} bytes`)
  if (failed.length > 0) t.comment(`failures:\n${failed.slice(0, 5).join('\n')}${failed.length > 5 ? `\n... ${failed.length - 5} more` : ''}\n(flood from ${floodStart - started} ms to ${floodEnd - started} ms)`)

  for (const x of nodes) t.ok(x.running, `daemon ${x.pid} is alive`)
  t.same(view.failovers, [], 'no false failover: the protected replica stayed where it was')
  t.same(lost.map((l) => l.node), [], 'and the orchestrator never declared a node lost')
  // The judge of "long enough to convict" is the detector itself: it never declared the victim lost (above).
  // As heard by a neighbour in this process, whose own turns add jitter on a 2-core machine that also runs the
  // attacker at full speed, the longest silence stays under 4 beat intervals.
  t.ok(silence < BEAT_MS * 4, `the victim's beats, as a neighbour heard them, were never silent for 4 intervals (${silence} ms < ${BEAT_MS * 4} ms)`)
  t.ok(pings.length >= 10, `the legitimate pings and asks were answered during the flood (${pings.length} answered, ${failed.length} failed)`)
  t.ok(failed.length <= pings.length / 10, `at most one in ten failed (${failed.length})`)
  await bystanderServed(orchestrator, victim)
  t.pass('and are answered after the flood')
  const budgeted = (s.broadcast.refused['stranger-budget'] ?? 0) + (s.broadcast.refused['peer-budget'] ?? 0)
  t.ok(s.broadcast.accepted < N / 20, `fresh keys bought nothing: ${s.broadcast.accepted} of ${2 * N} bid requests accepted; ${budgeted} refused by a budget (the neighbour's, or the strangers' shared one) before any signature check, the rest dropped unread once the attacker was graylisted`)
  const hungUp = victim.logLines().find((l) => l.msg === 'peer disconnected: pubsub flood')
  t.ok(hungUp !== undefined && (s.broadcast.refused['flooder-hung-up'] ?? 0) >= 1, `an attacker far over its budget was quarantined and hung up on (${s.broadcast.refused['flooder-hung-up'] ?? 0} of 2; the first ${hungUp ? `at ${Date.parse(String(hungUp.t)) - floodStart} ms` : 'never'})`)
  t.comment(scored ? `peer scoring graylisted it ${scoredAt - floodStart} ms into the flood (${JSON.stringify(scored)})` : 'peer scoring did not graylist it before the hang-up')
  t.ok(s.broadcast.senders < 200, `the sender table stayed small (${s.broadcast.senders})`)
  t.ok(s.services.orchestration.bidAnswers.sent < 100, `bid answers stayed bounded (${s.services.orchestration.bidAnswers.sent} for ${2 * N} requests)`)
  t.ok((s.services.orchestration.bidAnswers.dropped['orchestrator-not-connected'] ?? 0) > 0, 'requests from orchestrators the victim has no connection to were refused before any work (spec/orchestration.md "Who is answered")')
  t.ok(after.log - before.log < 200_000, `its log grew by counts, not a line per message (${after.log - before.log} bytes)`)
  t.ok(after.heap.afterGc, 'the heap was measured after a full collection')
  t.ok(after.heap.heapUsed - before.heap.heapUsed < HEAP_BACK_MIB, `the victim's live heap came back to its baseline within ${SETTLE_MS / 1000} s (${before.heap.heapUsed} -> ${after.heap.heapUsed} MiB, ${settledS} s after the flood's end + 3 s): nothing of the flood is held`)
  t.ok(peak.victim - before.victim < 300, `its RSS stayed bounded during the flood (+${(peak.victim - before.victim).toFixed(0)} MiB at peak)`)
})

async function bystanderServed(from: DaemonHandle, to: DaemonHandle): Promise<void> {
  await eventually(async () => from.api.post('/v1/peers/ping', { target: to.did, timeoutMs: 5000 }).then(() => true, () => false), 30_000, 250)
  await from.api.post('/v1/actor/send', { to: `${to.did}/node`, behavior: '/noir/node/echo', body: { after: true }, ask: true, timeoutMs: 5000 })
}

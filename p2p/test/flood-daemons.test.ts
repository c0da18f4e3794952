// A stranger floods one daemon of a three-daemon mesh from a stock js-libp2p node (libp2p packages; the
// project's public message format to sign with): bid requests each signed by a fresh key, then by one key,
// junk on the pubsub topic (which gets it graylisted), and garbage streams on the actor protocol. Meanwhile another daemon keeps
// pinging and asking the victim. The victim must keep serving, refuse the flood cheaply, send a bounded
// number of bid answers, and keep its memory bounded; the figures are printed.
import t from 'tap'
import { readFileSync, statSync } from 'node:fs'
import { DaemonCluster, eventually, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const rssMiB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024

interface Status {
  broadcast: { accepted: number; refused: Record<string, number>; senders: number; scores: { graylisted: number; lowest: number | null } }
  services: { orchestration: { bidAnswers: { sent: number; inFlight: number; dropped: Record<string, number> } } }
}

t.test('a stranger\'s flood of bid requests, pubsub junk and garbage streams leaves the victim serving, with bounded memory and bid answers', async (t) => {
  const cluster = new DaemonCluster()
  t.teardown(() => cluster.cleanup())
  const victim = await cluster.start({ config: { orchestration: { beatMs: 250 } } as never })
  const [relay, bystander] = await Promise.all([
    cluster.start({ bootstrap: victim.multiaddrs }),
    cluster.start({ bootstrap: victim.multiaddrs }),
  ])
  await eventually(async () => (await victim.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= 2, 20_000)
  await new Promise((r) => setTimeout(r, 1500))

  const N = 6000
  const attacker = spawn(process.execPath, [fileURLToPath(new URL('./fixtures/flood-attacker.ts', import.meta.url)), victim.multiaddrs[0]!, victim.peerId, String(N)], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => attacker.kill('SIGKILL'))
  const lines: Record<string, unknown>[] = []
  let buf = ''
  attacker.stdout.on('data', (c: Buffer) => {
    buf += c.toString('utf8')
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      lines.push(JSON.parse(buf.slice(0, i)) as Record<string, unknown>)
      buf = buf.slice(i + 1)
    }
  })
  await eventually(() => lines.some((l) => l.ready), 120_000)

  const logBytes = (d: DaemonHandle): number => d.logLines().reduce((n, l) => n + JSON.stringify(l).length + 1, 0)
  const before = { victim: rssMiB(victim.pid), relay: rssMiB(relay.pid), log: logBytes(victim) }
  let peak = { victim: before.victim, relay: before.relay }
  const sampler = setInterval(() => {
    try {
      peak = { victim: Math.max(peak.victim, rssMiB(victim.pid)), relay: Math.max(peak.relay, rssMiB(relay.pid)) }
    } catch {
      // a daemon gone is caught below
    }
  }, 200)
  t.teardown(() => clearInterval(sampler))

  // The bystander keeps pinging and asking the victim all along.
  const run = { on: true }
  const started = Date.now()
  const pings: number[] = []
  let failures = 0
  const failed: string[] = []
  const legit = (async () => {
    while (run.on) {
      const t0 = performance.now()
      try {
        await bystander.api.post('/v1/peers/ping', { target: victim.did, timeoutMs: 5000 })
        await bystander.api.post('/v1/actor/send', { to: `${victim.did}/node`, behavior: '/noir/node/echo', body: { n: pings.length }, ask: true, timeoutMs: 5000 })
        pings.push(performance.now() - t0)
      } catch (err) {
        failures++
        failed.push(`${Date.now() - started} ms ${(err as Error).name}: ${(err as Error).message.slice(0, 120)}`)
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  })()

  const t0 = Date.now()
  // once its junk is sent the attacker waits 4 s: the victim's status shows it graylisted (peer scoring)
  await eventually(() => lines.some((l) => l.junkSent), 120_000)
  const scored = await eventually(async () => {
    const x = (await victim.api.get<Status>('/v1/status')).broadcast.scores
    return x.graylisted > 0 ? x : undefined
  }, 3_500, 100).catch(() => undefined)
  const done = (await eventually(() => lines.find((l) => l.done), 120_000)) as unknown as { floodMs: number; streams: number }
  const floodMs = done.floodMs
  const streams = done.streams

  await new Promise((r) => setTimeout(r, 3000))
  run.on = false
  await legit
  const s = await victim.api.get<Status>('/v1/status')
  await new Promise((r) => setTimeout(r, 15_000))
  const after = { victim: rssMiB(victim.pid), relay: rssMiB(relay.pid), log: logBytes(victim) }
  clearInterval(sampler)

  const sorted = [...pings].sort((a, b) => a - b)
  const p50 = sorted[Math.floor(sorted.length / 2)] ?? NaN
  const p99 = sorted[Math.floor(sorted.length * 0.99)] ?? NaN
  t.comment(`flood: ${N} bid requests (${N / 2} fresh keys, ${N / 2} one key), 2 s later ${N / 4} junk, in ${floodMs} ms; ${streams} garbage streams`)
  t.comment(`victim RSS MiB: before ${before.victim.toFixed(0)}, peak ${peak.victim.toFixed(0)}, 15 s after ${after.victim.toFixed(0)}; relay: ${before.relay.toFixed(0)} / ${peak.relay.toFixed(0)} / ${after.relay.toFixed(0)}`)
  t.comment(`legit ping+ask during the flood: ${pings.length} ok, ${failures} failed, p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`)
  t.comment(`bid answers sent ${s.services.orchestration.bidAnswers.sent}, dropped ${JSON.stringify(s.services.orchestration.bidAnswers.dropped)}; broadcasts accepted ${s.broadcast.accepted}, refused ${JSON.stringify(s.broadcast.refused)}; log grew ${after.log - before.log} bytes`)

  if (failed.length > 0) t.comment(`failures:\n${failed.slice(0, 5).join('\n')}${failed.length > 5 ? `\n... ${failed.length - 5} more` : ''}\n(flood began at ${t0 - started} ms, lasted ${floodMs} ms)`)
  for (const d of [victim, relay, bystander]) t.ok(d.running, `daemon ${d.pid} is alive`)
  // Printed, not held to a number yet: a window of failed pings (~2 s, streams left closing) follows such a
  // flood on these 2-core machines; bounding it is the wire-level admission issue's "liveness under attack".
  t.ok(pings.length >= 5, `the bystander was served during the flood (${pings.length} answered, ${failures} failed)`)
  await eventually(async () => bystander.api.post('/v1/peers/ping', { target: victim.did, timeoutMs: 5000 }).then(() => true, () => false), 30_000, 250)
  await bystander.api.post('/v1/actor/send', { to: `${victim.did}/node`, behavior: '/noir/node/echo', body: { after: true }, ask: true, timeoutMs: 5000 })
  t.pass('and is served after the flood')
  t.ok((s.broadcast.refused['stranger-budget'] ?? 0) > N / 4, 'fresh keys bought nothing: most of their requests hit the strangers\' shared budget')
  t.ok(scored, `the attacker was graylisted for its junk (lowest score ${scored?.lowest}, ${s.broadcast.refused.malformed ?? 0} of ${N / 4} junk messages rejected)`)
  t.ok(s.broadcast.senders < 200, `the sender table stayed small (${s.broadcast.senders})`)
  t.ok(s.services.orchestration.bidAnswers.sent < N / 10, `bid answers stayed bounded (${s.services.orchestration.bidAnswers.sent} for ${N} requests)`)
  t.ok(peak.victim - before.victim < 400, `the victim's memory stayed bounded (+${(peak.victim - before.victim).toFixed(0)} MiB at peak)`)
  t.ok(after.log - before.log < 200_000, `its log grew by counts, not a line per message (${after.log - before.log} bytes)`)
  t.ok(statSync(victim.home).isDirectory())
})

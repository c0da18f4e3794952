// Must show: nodes on separate "hosts" (network namespaces the test creates, each with its own address):
// cut one node's link, the others keep working; restore it and it rejoins. Skipped with the reason where
// namespaces cannot be made; required under CI.
import t from 'tap'
import { requireOrSkip, netns } from '../../scripts/testing/requirements.ts'
import { NetnsLab } from '../../scripts/testing/netns.ts'
import { DaemonCluster, eventually, type DaemonHandle } from '../../scripts/testing/daemons.ts'

t.test('a partitioned node leaves the others working and rejoins when its link returns', async (t) => {
  if (!requireOrSkip(t, netns)) return
  const lab = NetnsLab.create(3)
  const cluster = new DaemonCluster()
  t.teardown(async () => {
    await cluster.cleanup()
    lab.destroy()
  })
  const start = (i: number, bootstrap: string[] = []): Promise<DaemonHandle> =>
    // ping every second: two missed pings close a dead connection
    cluster.start({ prefix: lab.prefix(i), listen: [`/ip4/${lab.node(i).ip}/tcp/0`], bootstrap, apiViaSocket: true, config: { pingIntervalMs: 1_000 } })
  const peersOf = async (d: DaemonHandle): Promise<string[]> =>
    (await d.api.get<{ peers: Array<{ did: string }> }>('/v1/peers')).peers.map((p) => p.did)

  const a = await start(0)
  t.ok(a.multiaddrs.every((m) => m.startsWith(`/ip4/${lab.node(0).ip}/`)), `node A listens on its own host address ${lab.node(0).ip}`)
  const [b, c] = await Promise.all([start(1, a.multiaddrs), start(2, a.multiaddrs)])

  const ask = (from: DaemonHandle, to: DaemonHandle, timeoutMs = 10_000) =>
    from.api.post<{ reply: { did: string } }>('/v1/actor/send', { to: `${to.did}/node`, behavior: '/noir/node/ping', body: {}, ask: true, timeoutMs })

  t.equal((await ask(b, c)).reply.did, c.did, 'B reaches C (found through A)')
  t.equal((await ask(c, a)).reply.did, a.did, 'C reaches A')

  lab.cut(2)
  t.equal((await ask(a, b)).reply.did, b.did, 'with C cut off, A still reaches B')
  t.equal((await ask(b, a)).reply.did, a.did, 'and B still reaches A')
  const lost = await ask(a, c, 2_000).catch((e: Error) => e)
  t.ok(lost instanceof Error, 'A cannot reach C while its link is down')
  t.ok(['AskTimeoutError', 'UnreachableError'].includes((lost as Error).name), `with a typed error (${(lost as Error).name})`)

  await eventually(async () => !(await peersOf(a)).includes(c.did) && !(await peersOf(b)).includes(c.did), 30_000, 250)
  t.pass('A and B notice C is gone (missed pings) and drop its connections')
  const fast = await ask(a, c, 25_000).catch((e: Error) => e)
  t.equal((fast as Error).name, 'UnreachableError', 'a message to C now fails with UnreachableError (no route), not an ask time-out')
  t.equal((await ask(b, a)).reply.did, a.did, 'A and B keep working')

  lab.restore(2)
  const back = await eventually(() => ask(a, c, 3_000).catch(() => undefined), 60_000, 500)
  t.equal(back.reply.did, c.did, 'after the link returns, A reaches C again')
  t.equal((await ask(c, b)).reply.did, b.did, 'and C reaches B: it rejoined the mesh')
  await eventually(async () => (await peersOf(a)).includes(c.did), 30_000, 250)
  t.pass('A lists C as a connected peer again')
})

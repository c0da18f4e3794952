// Must show: three daemons; the third bootstraps only from the second, yet reaches an actor on the first
// (its address found through the DHT); a broadcast from the first reaches the other two.
import t from 'tap'
import { DaemonCluster } from '../../scripts/testing/daemons.ts'
import type { BroadcastMessage } from '../pubsub.ts'

const cluster = new DaemonCluster()
t.teardown(() => cluster.cleanup())

t.test('a node that knows only the second node reaches an actor on the first through the DHT', async (t) => {
  const a = await cluster.start()
  const b = await cluster.start({ bootstrap: a.multiaddrs })
  const c = await cluster.start({ bootstrap: b.multiaddrs })
  t.notOk(c.multiaddrs.some((m) => a.multiaddrs.includes(m)))

  const r = await c.api.post<{ reply: { pong: boolean; did: string } }>('/v1/actor/send', {
    to: `${a.did}/node`, behavior: '/noir/node/ping', body: {}, ask: true, timeoutMs: 20_000,
  })
  t.equal(r.reply.did, a.did, 'the third node asked the first node\'s actor and got its answer')
  const peers = await c.api.get<{ peers: Array<{ did: string; addresses: string[]; connection: string }> }>('/v1/peers')
  const toA = peers.peers.find((p) => p.did === a.did)
  t.ok(toA, 'the third node is now connected to the first')
  t.equal(toA!.connection, 'direct', 'directly (whichever side dialled)')

  const ping = await c.api.post<{ did: string; rttMs: number }>('/v1/peers/ping', { target: a.did })
  t.equal(ping.did, a.did)
  t.ok(ping.rttMs >= 0, 'ping by DID works too')

  // broadcast from the first reaches the other two
  const topic = 'noir/test/three/v1'
  const got = new Map<string, BroadcastMessage[]>([[b.did, []], [c.did, []]])
  const controller = new AbortController()
  t.teardown(() => controller.abort())
  const readers = [b, c].map(async (d) => {
    for await (const m of d.api.stream<BroadcastMessage | { subscribed: string }>(`/v1/pubsub/subscribe?topic=${encodeURIComponent(topic)}`, { signal: controller.signal })) {
      if ('from' in m) got.get(d.did)!.push(m)
    }
  })
  const both = (): boolean => [...got.values()].every((l) => l.some((m) => m.from === a.did))
  for (let i = 0; i < 60 && !both(); i++) {
    await a.api.post('/v1/pubsub/publish', { topic, body: { hello: 'mesh', i } })
    await new Promise((r) => setTimeout(r, 250))
  }
  controller.abort()
  await Promise.allSettled(readers)
  for (const [did, list] of got) {
    const m = list.find((x) => x.from === a.did)
    t.ok(m, `${did === b.did ? 'second' : 'third'} node received the first node's broadcast`)
    t.equal((m?.body as { hello?: string } | undefined)?.hello, 'mesh', 'with its body')
    t.equal(m?.topic, topic)
  }
})

// The pubsub admission tables under 50,000 senders (issue 24): a flood whose every message comes from a new
// key and a new neighbour id still meets the strangers' one shared budget, the tables stay bounded by
// least-recently-used eviction (never cleared wholesale), and a neighbour far over its budget is reported as
// a flooder once. The validator is the real one, registered on a real libp2p host.
import t from 'tap'
import type { PeerId } from '@libp2p/interface'
import { NodeKey } from '../../identity/keys.ts'
import { Broadcast, DEFAULT_PEER_RATE, encodeBroadcast, FLOOD_HANGUP } from '../pubsub.ts'
import { Mesh } from '../mesh.ts'

const TOPIC = 'noir/test/v1'
const fakePeer = (id: string): PeerId => ({ toString: () => id }) as unknown as PeerId
type Message = Parameters<NonNullable<ReturnType<Mesh['host']['services']['pubsub']['topicValidators']['get']>>>[1]

t.test('50,000 fresh senders through 50,000 neighbour ids: the strangers\' budget holds, the tables stay bounded', async (t) => {
  const mesh = await Mesh.create({ key: NodeKey.generate(), mdns: false, natTraversal: false, pingIntervalMs: 0 })
  await mesh.start()
  t.teardown(() => mesh.stop())
  mesh.broadcast.subscribe(TOPIC, () => {})
  const validate = mesh.host.services.pubsub.topicValidators.get(TOPIC)!
  const N = 50_000
  // 500 signed messages from 500 fresh keys, each sent 100 times under other neighbour ids: the table of
  // senders sees 500 DIDs, the neighbour table 50,000 ids
  const keys = Array.from({ length: 500 }, () => NodeKey.generate())
  const data = keys.map((k, i) => encodeBroadcast(k, TOPIC, { i }, { ttlMs: 120_000 }))
  const started = Date.now()
  let accepted = 0
  for (let i = 0; i < N; i++) {
    const r = await validate(fakePeer(`neighbour-${i}`), { topic: TOPIC, data: data[i % data.length]! } as Message)
    if (r === 'accept') accepted++
  }
  const seconds = (Date.now() - started) / 1000
  const a = mesh.broadcast.admission()
  t.comment(`${N} messages in ${seconds.toFixed(1)} s: ${accepted} accepted; refused ${JSON.stringify(a.refused)}; senders ${a.senders}, evicted ${a.evicted}`)
  t.ok(accepted <= 50 + 20 * seconds + 1, `the strangers shared one budget (burst 50, 20/s): ${accepted} accepted in ${seconds.toFixed(1)} s`)
  t.ok((a.refused['stranger-budget'] ?? 0) >= N - accepted - 10, 'the rest were refused by it, before any signature check')
  t.ok(a.senders <= 10_000, `the sender table stayed bounded (${a.senders})`)
})

t.test('a neighbour that keeps sending past its budget is reported as a flooder once, then its count starts again', async (t) => {
  const mesh = await Mesh.create({ key: NodeKey.generate(), mdns: false, natTraversal: false, pingIntervalMs: 0 })
  await mesh.start()
  t.teardown(() => mesh.stop())
  const floods: string[] = []
  // the mesh's own onFlood quarantines and hangs up; here the report itself is what is checked: a Broadcast
  // of the test's own on the mesh's host, whose validator for the topic is the one registered
  const broadcast = new Broadcast({ host: mesh.host, signer: NodeKey.generate(), onFlood: (p) => floods.push(p.toString()) })
  broadcast.subscribe(TOPIC, () => {})
  const validate = mesh.host.services.pubsub.topicValidators.get(TOPIC)!
  const key = NodeKey.generate()
  const data = encodeBroadcast(key, TOPIC, { x: 1 }, { ttlMs: 120_000 })
  const peer = fakePeer('flooder')
  let n = 0
  while (floods.length === 0 && n < 50_000) {
    await validate(peer, { topic: TOPIC, data } as Message)
    n++
  }
  const burst = DEFAULT_PEER_RATE.burst
  t.same(floods, ['flooder'], `reported once, after ${n} messages (burst ${burst} + ${FLOOD_HANGUP} over budget)`)
  t.ok(n >= burst + FLOOD_HANGUP && n < burst + FLOOD_HANGUP + 500, 'not before its burst and the hang-up threshold were spent')
  const other = fakePeer('honest')
  for (let i = 0; i < burst; i++) await validate(other, { topic: TOPIC, data } as Message)
  t.same(floods, ['flooder'], 'a neighbour within its burst is never reported')
})

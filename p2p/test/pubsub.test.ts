// Signed broadcast: every check of spec/pubsub.md, and validation on a real gossipsub mesh (a forged or
// over-rate message is not delivered; valid ones are).
import t from 'tap'
import { NodeKey } from '../../identity/keys.ts'
import { encodeBroadcast, verifyBroadcast, type BroadcastMessage } from '../pubsub.ts'
import { PubsubMessageRejectedError, InvalidTopicError } from '../errors.ts'
import { Mesh } from '../mesh.ts'

const limits = (now = Date.now()) => ({ now, maxBytes: 64 * 1024, maxTtlMs: 600_000, clockSkewMs: 30_000 })
const reason = (fn: () => unknown): string | undefined => {
  try {
    fn()
    return undefined
  } catch (err) {
    return err instanceof PubsubMessageRejectedError ? err.reason : `other:${(err as Error).name}`
  }
}

t.test('a signed broadcast verifies; each tampering is refused with its reason', async (t) => {
  const key = NodeKey.generate()
  const data = encodeBroadcast(key, 'noir/test/v1', { n: 1 })
  const v = verifyBroadcast(data, 'noir/test/v1', limits())
  t.equal(v.from, key.did)
  t.same(v.body, { n: 1 })

  const tampered = Uint8Array.from(data)
  const i = Buffer.from(tampered).indexOf('"n":1')
  tampered[i + 4] = '2'.charCodeAt(0)
  t.equal(reason(() => verifyBroadcast(tampered, 'noir/test/v1', limits())), 'bad-signature', 'a changed body')
  t.equal(reason(() => verifyBroadcast(data, 'noir/other/v1', limits())), 'topic-mismatch', 'replayed onto another topic')
  t.equal(reason(() => verifyBroadcast(data, 'noir/test/v1', limits(Date.now() + 120_000))), 'expired', 'past its expiry')
  const future = encodeBroadcast(key, 'noir/test/v1', {}, { now: Date.now() + 600_000 })
  t.equal(reason(() => verifyBroadcast(future, 'noir/test/v1', limits())), 'not-yet-valid', 'issued in the future')
  const long = encodeBroadcast(key, 'noir/test/v1', {}, { ttlMs: 3_600_000 })
  t.equal(reason(() => verifyBroadcast(long, 'noir/test/v1', limits())), 'malformed', 'a lifetime over the maximum')
  const nonCanonical = Uint8Array.from([...data.subarray(0, 65), ...Buffer.from(' '), ...data.subarray(65)])
  t.equal(reason(() => verifyBroadcast(nonCanonical, 'noir/test/v1', limits())), 'malformed', 'a non-canonical payload')
  t.equal(reason(() => verifyBroadcast(Uint8Array.of(1, 2, 3), 'noir/test/v1', limits())), 'malformed', 'garbage')
  t.equal(reason(() => verifyBroadcast(new Uint8Array(70_000), 'noir/test/v1', limits())), 'too-large', 'oversize')
})

t.test('a broadcast may carry its publisher\'s trace: signed, and only as a W3C traceparent', async (t) => {
  const key = NodeKey.generate()
  const trace = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
  const data = encodeBroadcast(key, 'noir/test/v1', { n: 1 }, { trace })
  t.equal(verifyBroadcast(data, 'noir/test/v1', limits()).trace, trace, 'the trace comes back')
  t.equal(verifyBroadcast(encodeBroadcast(key, 'noir/test/v1', { n: 1 }), 'noir/test/v1', limits()).trace, undefined, 'none when none was sent')
  // a relay that moves the message into another trace (same length, other span id) breaks the signature
  const moved = Uint8Array.from(data)
  const at = Buffer.from(moved).indexOf('00f067aa0ba902b7')
  moved[at] = '1'.charCodeAt(0)
  t.equal(reason(() => verifyBroadcast(moved, 'noir/test/v1', limits())), 'bad-signature', 'the trace is covered by the signature')
  for (const bad of ['01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', '00-00000000000000000000000000000000-00f067aa0ba902b7-01', '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01', 'x'.repeat(55)]) {
    t.equal(reason(() => verifyBroadcast(encodeBroadcast(key, 'noir/test/v1', { n: 1 }, { trace: bad }), 'noir/test/v1', limits())), 'malformed', `a trace that is not a traceparent is refused: ${bad.slice(0, 20)}...`)
  }
})

t.test('on a gossipsub mesh, forged and over-rate broadcasts are not delivered; valid ones are', async (t) => {
  const opts = { mdns: false, natTraversal: false, pingIntervalMs: 0 }
  const a = await Mesh.create({ key: NodeKey.generate(), ...opts, broadcastRate: { perSecond: 0.1, burst: 5 } })
  await a.start()
  const b = await Mesh.create({ key: NodeKey.generate(), ...opts, bootstrap: a.multiaddrs() })
  await b.start()
  t.teardown(async () => {
    await b.stop()
    await a.stop()
  })
  const topic = 'noir/test/validation/v1'
  const got: BroadcastMessage[] = []
  a.broadcast.subscribe(topic, (m) => got.push(m))
  b.broadcast.subscribe(topic, () => {})
  t.throws(() => a.broadcast.subscribe('Bad Topic!', () => {}), InvalidTopicError)
  // wait until b sees a as a subscriber of the topic
  for (let i = 0; i < 100 && !b.host.services.pubsub.getSubscribers(topic).some((p) => p.equals(a.host.peerId)); i++) await new Promise((r) => setTimeout(r, 100))

  await b.broadcast.publish(topic, { valid: 1 })
  for (let i = 0; i < 50 && got.length < 1; i++) await new Promise((r) => setTimeout(r, 100))
  t.equal(got.length, 1, 'a valid broadcast is delivered')
  t.equal(got[0]?.from, b.did)
  t.equal(got[0]?.receivedFrom, b.peerId, 'with the neighbour that relayed it')

  // a message signed by someone else but claiming to be from b, injected below our API
  const mallory = NodeKey.generate()
  const forged = encodeBroadcast({ did: b.did, sign: (m) => mallory.sign(m) }, topic, { forged: true })
  await b.host.services.pubsub.publish(topic, forged)
  // then more valid ones than a's rate limit allows (burst 5, one per 10 s after that)
  for (let i = 0; i < 12; i++) await b.broadcast.publish(topic, { burst: i })
  for (let i = 0; i < 50 && (a.broadcast.stats.rejected['rate-limited'] ?? 0) < 1; i++) await new Promise((r) => setTimeout(r, 100))
  await new Promise((r) => setTimeout(r, 300))
  t.notOk(got.some((m) => (m.body as { forged?: boolean }).forged), 'the forged broadcast was not delivered')
  t.equal(a.broadcast.stats.rejected['bad-signature'], 1, 'it was rejected for its signature')
  const burst = got.filter((m) => (m.body as { burst?: number }).burst !== undefined).length
  t.ok(burst <= 5 && burst >= 3, `the per-sender rate limit let ${burst} of 12 through`)
  t.ok((a.broadcast.stats.rejected['rate-limited'] ?? 0) >= 7, 'the rest were dropped as rate-limited')
})

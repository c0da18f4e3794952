// The actor wire under sustained load: frames queued together go out in few writes (coalescing), every
// frame arrives in order, and back-pressure keeps the muxer's write buffer bounded (waiting for
// 'drain' alone let yamux queue 30 MB and then abort the stream).
import t, { type Test } from 'tap'
import { PostRecorder } from '../../core/test/transport-compliance.ts'
import { NodeKey } from '../../identity/keys.ts'
import { Mesh } from '../mesh.ts'

/** Two meshes on loopback, b bootstrapped from a, both stopped when the test ends. */
async function connectedPair(t: Test): Promise<{ a: Mesh; b: Mesh }> {
  const opts = { mdns: false, natTraversal: false, pingIntervalMs: 0 }
  const a = await Mesh.create({ key: NodeKey.generate(), ...opts })
  await a.start()
  const b = await Mesh.create({ key: NodeKey.generate(), ...opts, bootstrap: a.multiaddrs() })
  await b.start()
  t.teardown(async () => {
    await b.stop()
    await a.stop()
  })
  return { a, b }
}

t.test('100,000 frames sent without waiting arrive in order, coalesced, with a bounded write buffer', async (t) => {
  const { a, b } = await connectedPair(t)
  const n = 100_000
  let next = 0
  let outOfOrder = 0
  const done = Promise.withResolvers<void>()
  a.transport.onEnvelope(({ bytes }) => {
    const i = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0)
    if (i !== next) outOfOrder++
    next = i + 1
    if (next === n) done.resolve()
  })
  const sends: Promise<void>[] = []
  for (let i = 0; i < n; i++) {
    const body = new Uint8Array(100)
    new DataView(body.buffer).setUint32(0, i)
    sends.push(b.transport.send(a.did, body))
    // a producer that yields now and then, as real actors do
    if (i % 5000 === 4999) await new Promise((r) => setImmediate(r))
  }
  await Promise.all(sends)
  await done.promise
  const s = b.transport.wire.stats
  t.equal(outOfOrder, 0, 'every frame arrived in send order')
  t.equal(a.transport.wire.stats.framesReceived, n, 'none lost, none duplicated')
  t.ok(s.writes < n / 10, `frames were coalesced: ${n} frames in ${s.writes} writes`)
  t.ok(s.maxQueuedBytes < 8 * 1024 * 1024, `the muxer's write buffer stayed bounded (max ${s.maxQueuedBytes} bytes queued)`)
  t.equal(s.streamsOpened, 1, 'one long-lived stream carried everything')
})

t.test('a sender faster than its receiver (another process) keeps flowing once the muxer window fills', async (t) => {
  const { spawn } = await import('node:child_process')
  const { createInterface } = await import('node:readline')
  const child = spawn(process.execPath, [new URL('./slow-receiver.ts', import.meta.url).pathname], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL')
  })
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  const peer = JSON.parse((await lines.next()).value as string) as { did: string; multiaddrs: string[] }
  const b = await Mesh.create({ key: NodeKey.generate(), mdns: false, natTraversal: false, pingIntervalMs: 0, bootstrap: peer.multiaddrs })
  await b.start()
  t.teardown(() => b.stop())
  const n = 40_000
  const sends: Promise<void>[] = []
  for (let i = 0; i < n; i++) {
    sends.push(b.transport.send(peer.did, new Uint8Array(200)))
    if (i % 2000 === 1999) await new Promise((r) => setImmediate(r))
  }
  await Promise.all(sends)
  t.pass(`all ${n} sends were handed to the stream (the writer never stalled on a missed drain/idle event)`)
  let count = 0
  while (count < n) {
    child.stdin!.write('count\n')
    count = (JSON.parse((await lines.next()).value as string) as { count: number }).count
    if (count < n) await new Promise((r) => setTimeout(r, 200))
  }
  t.equal(count, n, 'and the slow receiver got every frame')
  t.ok(b.transport.wire.stats.maxQueuedBytes < 8 * 1024 * 1024, `the stream's write queue stayed bounded (max ${b.transport.wire.stats.maxQueuedBytes} bytes)`)
  child.stdin!.end()
})

t.test('a frame that starts but never completes resets its stream after the frame time-out, and its peer is hung up on', async (t) => {
  const { encodeFrames } = await import('../framing.ts')
  const { ACTOR_PROTOCOL } = await import('../actor-wire.ts')
  const opts = { mdns: false, natTraversal: false, pingIntervalMs: 0 }
  const a = await Mesh.create({ key: NodeKey.generate(), ...opts, frameTimeoutMs: 300 })
  await a.start()
  const b = await Mesh.create({ key: NodeKey.generate(), ...opts, bootstrap: a.multiaddrs() })
  await b.start()
  t.teardown(async () => {
    await b.stop()
    await a.stop()
  })
  const stream = await b.host.dialProtocol(a.host.peerId, ACTOR_PROTOCOL)
  const closed = new Promise<string>((resolve) => stream.addEventListener('close', () => resolve(stream.status), { once: true }))
  stream.send(encodeFrames([new Uint8Array(1000)]).subarray(0, 10)) // and then nothing: the stream stays open
  t.equal(await closed, 'reset', 'the receiver resets the stalled stream')
  t.equal(a.transport.wire.violations, 1, 'counted as a protocol violation')
  const gone = Date.now() + 10_000
  while (b.host.getConnections(a.host.peerId).length > 0 && Date.now() < gone) await new Promise((r) => setTimeout(r, 50))
  t.equal(b.host.getConnections(a.host.peerId).length, 0, 'the peer that stalled is hung up on')
  await t.rejects(b.transport.send(a.did, new Uint8Array(10)), 'and refused when it comes back (quarantine)')
  const c = await Mesh.create({ key: NodeKey.generate(), ...opts, bootstrap: a.multiaddrs() })
  await c.start()
  t.teardown(() => c.stop())
  const got = Promise.withResolvers<void>()
  a.transport.onEnvelope(() => got.resolve())
  await c.transport.send(a.did, new Uint8Array(10))
  await got.promise
  t.pass('another peer\'s frame is received')
})

t.test('post (send without a promise) reports each frame exactly once, never from within the call: handed off in order, or failed with a typed error', async (t) => {
  const { a, b } = await connectedPair(t)
  const rec = new PostRecorder(b.transport)
  const outcomes = rec.outcomes
  const received: number[] = []
  const all = Promise.withResolvers<void>()
  a.transport.onEnvelope(({ bytes }) => {
    received.push(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0))
    if (received.length === 1000) all.resolve()
  })
  const post = (to: string, body: Uint8Array, i: number): void => rec.post(to, body, i)
  for (let i = 0; i < 1000; i++) {
    const body = new Uint8Array(64)
    new DataView(body.buffer).setUint32(0, i)
    post(a.did, body, i)
  }
  post(b.did, new Uint8Array(8), 1000) // its own node
  post('did:web:example.org', new Uint8Array(8), 1001) // not a node DID
  post(a.did, new Uint8Array(b.transport.wire.maxFrameBytes + 1), 1002) // over the frame limit
  t.equal(rec.reportedInCall, 0, 'nothing is reported from within post')
  await all.promise
  await new Promise((r) => setImmediate(r))
  t.same(received, Array.from({ length: 1000 }, (_, i) => i), 'every frame arrived, in order')
  for (let i = 0; i < 1000; i++) if (outcomes.get(i)?.join() !== 'handed off') t.fail(`frame ${i}: ${outcomes.get(i)?.join() ?? 'no outcome'}`)
  t.same(outcomes.get(1000), ['failed: UnreachableError'], 'to its own node: UnreachableError, once')
  t.same(outcomes.get(1001), ['failed: UnreachableError'], 'to a DID that is not a node: UnreachableError, once')
  t.same(outcomes.get(1002), ['failed: MessageTooLargeError'], 'over the frame limit: MessageTooLargeError, once')
  await b.stop()
  post(a.did, new Uint8Array(8), 1003)
  await new Promise((r) => setImmediate(r))
  t.same(outcomes.get(1003), ['failed: NotStartedError'], 'after stop: NotStartedError, once')
})

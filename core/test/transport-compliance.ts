// The Transport compliance suite (core/transport.ts). Every Transport implementation runs it: the memory
// transport here (memory-transport.test.ts) and the libp2p transport in p2p/. `makePair` returns two
// STARTED transports that can reach each other, and a cleanup that stops both (it must tolerate a transport
// the suite already stopped).
import type { Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { NodeKey } from '../../identity/index.ts'
import type { InboundEnvelope, Transport } from '../transport.ts'

export type MakeTransportPair = () => Promise<[Transport, Transport, () => Promise<void>]>

/** Collects what a transport receives; `next(n)` resolves once n envelopes arrived in total. */
class Inbox {
  readonly received: InboundEnvelope[] = []
  #waiters: { n: number; resolve: () => void }[] = []

  constructor(t: Transport) {
    t.onEnvelope((inbound) => {
      this.received.push(inbound)
      this.#waiters = this.#waiters.filter((w) => {
        if (this.received.length < w.n) return true
        w.resolve()
        return false
      })
    })
  }

  async until(n: number): Promise<InboundEnvelope[]> {
    if (this.received.length < n) await new Promise<void>((resolve) => this.#waiters.push({ n, resolve }))
    return this.received
  }
}

/** A payload carrying an index, so order and duplicates can be checked. */
function indexed(tag: number, i: number, size = 64): Uint8Array {
  const b = new Uint8Array(size)
  const dv = new DataView(b.buffer)
  dv.setUint32(0, tag)
  dv.setUint32(4, i)
  return b
}

function indexOf(b: Uint8Array): [number, number] {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
  return [dv.getUint32(0), dv.getUint32(4)]
}

async function withPair(t: Test, makePair: MakeTransportPair): Promise<[Transport, Transport]> {
  const [a, b, cleanup] = await makePair()
  t.teardown(cleanup)
  return [a, b]
}

/**
 * Posts through `transport.post` and records what its sink hears of each (by index): 'handed off' or
 * 'failed: <ErrorName>', and how many reports came from within a `post` call (the contract says none).
 */
export class PostRecorder {
  readonly outcomes = new Map<number, string[]>()
  reportedInCall = 0
  #inCall = false
  readonly #transport: Transport
  readonly #sink = {
    handedOff: (i: number) => this.#record(i, 'handed off'),
    failed: (i: number, err: Error) => this.#record(i, `failed: ${err.name}`),
  }

  constructor(transport: Transport) {
    this.#transport = transport
  }

  post(to: string, bytes: Uint8Array, i: number): void {
    this.#inCall = true
    try {
      this.#transport.post!(to, bytes, this.#sink, i)
    } finally {
      this.#inCall = false
    }
  }

  #record(i: number, what: string): void {
    if (this.#inCall) this.reportedInCall++
    this.outcomes.set(i, [...(this.outcomes.get(i) ?? []), what])
  }
}

export function runTransportCompliance(t: Test, makePair: MakeTransportPair): void {
  t.test('bytes arrive unchanged at the peer, labelled with the sender node DID', async (t) => {
    const [a, b] = await withPair(t, makePair)
    const inbox = new Inbox(b)
    const payload = randomBytes(200)
    await a.send(b.localDid, payload)
    const [got] = await inbox.until(1)
    t.same(Buffer.from(got!.bytes), payload)
    t.equal(got!.peerDid, a.localDid)
  })

  t.test('order is kept per sender and receiver, for sends not awaited one by one', async (t) => {
    const [a, b] = await withPair(t, makePair)
    const inbox = new Inbox(b)
    const n = 1000
    await Promise.all(Array.from({ length: n }, (_, i) => a.send(b.localDid, indexed(1, i))))
    const got = await inbox.until(n)
    t.same(got.map((g) => indexOf(g.bytes)[1]), Array.from({ length: n }, (_, i) => i))
  })

  t.test('each envelope is delivered at most once (here: exactly once, no duplicates)', async (t) => {
    const [a, b] = await withPair(t, makePair)
    const inbox = new Inbox(b)
    const n = 300
    for (let i = 0; i < n; i++) await a.send(b.localDid, indexed(2, i))
    await inbox.until(n)
    // One more round trip's worth of quiet: anything duplicated would have arrived behind this marker.
    await a.send(b.localDid, indexed(3, 0))
    const got = await inbox.until(n + 1)
    t.equal(got.length, n + 1)
    t.equal(new Set(got.map((g) => indexOf(g.bytes).join(':'))).size, n + 1)
  })

  t.test('both directions at once keep their own order', async (t) => {
    const [a, b] = await withPair(t, makePair)
    const inA = new Inbox(a)
    const inB = new Inbox(b)
    const n = 300
    await Promise.all([
      Promise.all(Array.from({ length: n }, (_, i) => a.send(b.localDid, indexed(4, i)))),
      Promise.all(Array.from({ length: n }, (_, i) => b.send(a.localDid, indexed(5, i)))),
    ])
    const [gotA, gotB] = await Promise.all([inA.until(n), inB.until(n)])
    t.same(gotB.map((g) => indexOf(g.bytes)[1]), Array.from({ length: n }, (_, i) => i))
    t.same(gotA.map((g) => indexOf(g.bytes)[1]), Array.from({ length: n }, (_, i) => i))
    t.ok(gotA.every((g) => g.peerDid === b.localDid) && gotB.every((g) => g.peerDid === a.localDid))
  })

  t.test('many concurrent senders each see their sends arrive in their order, none lost', async (t) => {
    const [a, b] = await withPair(t, makePair)
    const inbox = new Inbox(b)
    const tasks = 16
    const each = 40
    await Promise.all(Array.from({ length: tasks }, async (_, task) => {
      for (let i = 0; i < each; i++) await a.send(b.localDid, indexed(100 + task, i))
    }))
    const got = await inbox.until(tasks * each)
    for (let task = 0; task < tasks; task++) {
      const seq = got.map((g) => indexOf(g.bytes)).filter(([tag]) => tag === 100 + task).map(([, i]) => i)
      t.same(seq, Array.from({ length: each }, (_, i) => i), `sender ${task}`)
    }
  })

  t.test('a large payload (512 KiB) arrives intact', async (t) => {
    const [a, b] = await withPair(t, makePair)
    const inbox = new Inbox(b)
    const big = randomBytes(512 * 1024)
    const small = indexed(6, 1)
    await a.send(b.localDid, big)
    await a.send(b.localDid, small)
    const got = await inbox.until(2)
    t.ok(Buffer.from(got[0]!.bytes).equals(big), 'large payload equal')
    t.same(indexOf(got[1]!.bytes), [6, 1], 'and the next one behind it')
  })

  t.test('sending to a node that cannot be found rejects with UnreachableError', async (t) => {
    const [a] = await withPair(t, makePair)
    const err = await a.send(NodeKey.generate().did, indexed(7, 0)).then(() => undefined, (e: unknown) => e as Error)
    t.equal(err?.name, 'UnreachableError')
  })

  t.test('once the peer stopped, sending to it rejects with UnreachableError', async (t) => {
    const [a, b] = await withPair(t, makePair)
    const inbox = new Inbox(b)
    await a.send(b.localDid, indexed(8, 0))
    await inbox.until(1)
    await b.stop()
    // A connection may need a moment to notice the peer left; never any other kind of error.
    let err: Error | undefined
    for (let attempt = 0; attempt < 100 && err === undefined; attempt++) {
      err = await a.send(b.localDid, indexed(8, attempt + 1)).then(() => undefined, (e: unknown) => e as Error)
      if (err === undefined) await new Promise((r) => setTimeout(r, 20))
    }
    t.equal(err?.name, 'UnreachableError')
  })

  t.test('post (when the transport has it, as the kernel prefers): each envelope reported exactly once, never within the call, delivered in order; an unknown node fails with UnreachableError', async (t) => {
    const [a, b] = await withPair(t, makePair)
    if (a.post === undefined) {
      t.pass('this transport has no post: the kernel sends through send, which the tests above cover')
      return
    }
    const inbox = new Inbox(b)
    const rec = new PostRecorder(a)
    const N = 500
    for (let i = 0; i < N; i++) rec.post(b.localDid, indexed(11, i), i)
    rec.post(NodeKey.generate().did, indexed(11, N), N)
    const { outcomes } = rec
    const got = await inbox.until(N)
    t.same(got.map((x) => indexOf(x.bytes)[1]), Array.from({ length: N }, (_, i) => i), 'delivered in order, each once')
    const end = Date.now() + 10_000
    while (outcomes.size < N + 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 5))
    t.equal(rec.reportedInCall, 0, 'never reported from within the call')
    t.ok([...Array(N).keys()].every((i) => outcomes.get(i)?.length === 1 && outcomes.get(i)![0] === 'handed off'), 'every delivered envelope reported handed off, exactly once')
    t.same(outcomes.get(N), ['failed: UnreachableError'], 'the one to an unknown node failed, once, with UnreachableError')
  })

  t.test('installing a new handler replaces the old one', async (t) => {
    const [a, b] = await withPair(t, makePair)
    let old = 0
    b.onEnvelope(() => old++)
    const inbox = new Inbox(b)
    await a.send(b.localDid, indexed(9, 0))
    await inbox.until(1)
    t.equal(old, 0)
  })
}

// Sealed streams in the kernel (spec/envelope.md, "Sealed streams"; spec/actors.md, "Signature checks"):
// ActorSystems on memory transports that claim authenticated peers, and a bare transport that sends
// hand-made members and seals and reads what comes back as a third party would (SealedStreamReader).
import t, { type Test } from 'tap'
import {
  EnvelopeVerifier,
  NodeKey,
  SealedStreamReader,
  decodeEnvelope,
  encodeMember,
  encodeSeal,
  isStreamFrame,
  prepareEnvelope,
  signSeal,
  signEnvelope,
  type Envelope,
  type EnvelopeInit,
  type JsonValue,
} from '../../identity/index.ts'
import { signedRemote, type MemoryTransport, type RemoteEndpointOptions, type SystemEvent } from '../index.ts'
import { TestKit, type TestNode } from '../testkit.ts'
import { recorder } from './helpers.ts'

type T = Test
type ErrorBody = { ok: false; error: { name: string; message: string } } | { error: { name: string; message: string } }

interface RawPeer {
  key: NodeKey
  transport: MemoryTransport
  /** Envelopes received: self-signed ones once verified, members once their seal verified. */
  inbox: Envelope[]
  /** Standalone encodings of the sealed members received (what a third party keeps). */
  evidence: Uint8Array[]
  frames: { members: number; seals: number }
  readerErrors: Error[]
}

async function kitWith(t: T, opts: { authenticatesPeers?: boolean } = {}): Promise<TestKit> {
  const kit = new TestKit({ authenticatesPeers: opts.authenticatesPeers ?? true })
  t.teardown(() => kit.stop())
  return kit
}

async function nodeWith(kit: TestKit, remote: RemoteEndpointOptions = {}): Promise<TestNode> {
  const n = await kit.node({ remote: signedRemote(remote) })
  n.system.spawn(recorder(), { name: 'r' })
  return n
}

async function rawPeer(t: T, kit: TestKit, authenticatesPeers = true): Promise<RawPeer> {
  const key = NodeKey.generate()
  const transport = kit.network.transport(key.did, { authenticatesPeers })
  const peer: RawPeer = { key, transport, inbox: [], evidence: [], frames: { members: 0, seals: 0 }, readerErrors: [] }
  const reader = new SealedStreamReader()
  const verifier = new EnvelopeVerifier({ now: () => kit.clock.now() })
  transport.onEnvelope(({ bytes, peerDid }) => {
    if (!isStreamFrame(bytes)) {
      verifier.verify(bytes)
      peer.inbox.push(decodeEnvelope(bytes).envelope)
      return
    }
    if (bytes[1] === 0x03) peer.frames.members++
    else peer.frames.seals++
    try {
      for (const s of reader.push(bytes, peerDid)) {
        peer.inbox.push(s.envelope)
        peer.evidence.push(s.bytes)
      }
    } catch (err) {
      peer.readerErrors.push(err as Error)
    }
  })
  await transport.start()
  t.teardown(() => transport.stop())
  return peer
}

/** Payload of an envelope from the raw peer. */
function payload(kit: TestKit, peer: RawPeer, init: Partial<EnvelopeInit> & { to: string; body: JsonValue }): Uint8Array {
  return prepareEnvelope(peer.key, { from: peer.key.did, behavior: '/rec/record', now: kit.clock.now(), ...init }).payload
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 5_000): Promise<void> {
  const end = Date.now() + ms
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 2))
  }
}

const errorName = (e: Envelope | undefined): string | undefined => {
  const b = e?.body as ErrorBody | null | undefined
  return b ? b.error?.name : undefined
}

function logOf(n: TestNode, address: string): Promise<unknown[]> {
  return n.system.ask<unknown[]>(address, '/rec/log')
}

function events<K extends SystemEvent['type']>(n: TestNode, type: K): Extract<SystemEvent, { type: K }>[] {
  return n.events.filter((e): e is Extract<SystemEvent, { type: K }> => e.type === type)
}

t.test('over an authenticated transport, messages travel as members and seals that a third party verifies', async (t) => {
  const kit = await kitWith(t)
  const a = await nodeWith(kit)
  const b = await nodeWith(kit)
  for (let i = 0; i < 300; i++) b.system.tell(`${a.system.did}/r`, '/rec/record', i)
  t.same(await b.system.ask(`${a.system.did}/r`, '/rec/log'), Array.from({ length: 300 }, (_, i) => i), 'tells keep their order and the ask is answered')

  const c = await rawPeer(t, kit)
  for (let i = 0; i < 40; i++) b.system.tell(`${c.key.did}/x`, '/x/hit', i)
  await until('40 sealed envelopes', () => c.inbox.length === 40)
  t.same(c.inbox.map((e) => e.body), Array.from({ length: 40 }, (_, i) => i), 'every member arrives, in order, and its seal verifies')
  t.equal(c.frames.members, 40)
  t.ok(c.frames.seals >= 1 && c.frames.seals < 40, `one seal covers many members (${c.frames.seals} seals for 40)`)
  t.same(c.readerErrors, [])
  const thirdParty = new EnvelopeVerifier({ now: () => kit.clock.now() })
  for (const bytes of c.evidence) thirdParty.verify(bytes)
  t.pass('each member, rebuilt as a standalone envelope, verifies with EnvelopeVerifier alone')
})

t.test('concurrent checks: a read-only behavior answers before the seal; a state-changing one waits for it; a forged seal changes nothing, is answered, and nothing after it is read', async (t) => {
  const kit = await kitWith(t)
  const a = await nodeWith(kit)
  const c = await rawPeer(t, kit)
  const to = `${a.system.did}/r`
  // an ask to the read-only /rec/log (no event: answered from the snapshot), sealed properly later
  const look = payload(kit, c, { to, behavior: '/rec/log', body: null, replyTo: c.key.did })
  await c.transport.send(a.system.did, encodeMember(6, 0, look))
  await until('the read-only answer', () => c.inbox.length === 1)
  t.same(c.inbox[0]!.body, { ok: true, value: [] }, 'answered before its seal came')
  await c.transport.send(a.system.did, encodeSeal(6, 1, signSeal(c.key, [look])))
  // a state-changing tell under a forged seal
  const p = payload(kit, c, { to, body: 'forged' })
  await c.transport.send(a.system.did, encodeMember(7, 0, p))
  await kit.settle(20)
  t.same(await logOf(a, to), [], 'the state-changing member waits for its seal')
  await c.transport.send(a.system.did, encodeSeal(7, 1, signSeal(NodeKey.generate(), [p])))
  await until('a peer-violation', () => events(a, 'peer-violation').length === 1)
  const v = events(a, 'peer-violation')[0]!
  t.equal(v.peerDid, c.key.did)
  t.equal(v.error.name, 'BadSignatureError')
  await until('the answer', () => c.inbox.length === 2)
  t.equal(errorName(c.inbox[1]), 'BadSignatureError', 'the sender is told, with a typed error')
  await a.system.signaturesChecked()
  t.same(await logOf(a, to), [], 'the forged member never reached the behavior: the state is unchanged')
  // the same peer, on the same session, tries again: nothing of it is read any more
  const again = payload(kit, c, { to, body: 'second' })
  await c.transport.send(a.system.did, encodeMember(8, 0, again))
  await c.transport.send(a.system.did, encodeSeal(8, 1, signSeal(NodeKey.generate(), [again])))
  await kit.settle(30)
  await a.system.signaturesChecked()
  t.equal(events(a, 'peer-violation').length, 1, 'the second forged seal was never read (no second violation)')
  t.equal(c.inbox.length, 2, 'and nothing more was answered')
  t.same(await logOf(a, to), [], 'and the state is still unchanged')
})

t.test('inline checks: members wait for their seal; a forged seal refuses them all', async (t) => {
  const kit = await kitWith(t)
  const a = await nodeWith(kit, { signatureCheck: 'inline' })
  const c = await rawPeer(t, kit)
  const to = `${a.system.did}/r`
  const log = (): Promise<unknown[]> => logOf(a, to)
  const good = [payload(kit, c, { to, body: 'one' }), payload(kit, c, { to, body: 'two' })]
  for (let i = 0; i < good.length; i++) await c.transport.send(a.system.did, encodeMember(1, i, good[i]!))
  await kit.settle(20)
  t.same(await log(), [], 'nothing is delivered before the seal')
  await c.transport.send(a.system.did, encodeSeal(1, 2, signSeal(c.key, good)))
  await until('delivery', async () => (await log()).length === 2)
  t.same(await log(), ['one', 'two'], 'delivered in order once the seal verified')

  const bad = [payload(kit, c, { to, body: 'three' }), payload(kit, c, { to, body: 'four' })]
  for (let i = 0; i < bad.length; i++) await c.transport.send(a.system.did, encodeMember(2, i, bad[i]!))
  await c.transport.send(a.system.did, encodeSeal(2, 2, signSeal(c.key, [bad[1]!, bad[0]!])))
  await until('two refusals', () => c.inbox.length === 2)
  t.same(c.inbox.map(errorName), ['BadSignatureError', 'BadSignatureError'], 'each member of the batch is refused')
  t.equal(events(a, 'peer-violation').length, 1)
  await kit.settle(10)
  t.same(await log(), ['one', 'two'], 'the forged batch was never delivered')
})

t.test('a member that fails its own checks still counts in its batch; the others are delivered', async (t) => {
  const kit = await kitWith(t)
  const a = await nodeWith(kit, { signatureCheck: 'inline' })
  const c = await rawPeer(t, kit)
  const to = `${a.system.did}/r`
  const expired = payload(kit, c, { to, body: 'stale', now: kit.clock.now() - 120_000, ttlMs: 1_000 })
  const fine = payload(kit, c, { to, body: 'fresh' })
  await c.transport.send(a.system.did, encodeMember(9, 0, expired))
  await c.transport.send(a.system.did, encodeMember(9, 1, fine))
  await c.transport.send(a.system.did, encodeSeal(9, 2, signSeal(c.key, [expired, fine])))
  await until('delivery', async () => (await logOf(a, to)).length === 1)
  t.same(await logOf(a, to), ['fresh'])
  await until('the refusal', () => c.inbox.length === 1)
  t.equal(errorName(c.inbox[0]), 'ExpiredEnvelopeError')
  t.same(events(a, 'peer-violation'), [], 'the seal verified: no violation')
  t.same(events(a, 'unsealed'), [])
})

t.test('a batch whose seal never comes, or that lost a member, ends unsealed', async (t) => {
  const kit = await kitWith(t)
  const strict = await nodeWith(kit, { signatureCheck: 'inline', sealTimeoutMs: 1_000 })
  const c = await rawPeer(t, kit)
  const to = `${strict.system.did}/r`
  await c.transport.send(strict.system.did, encodeMember(3, 0, payload(kit, c, { to, body: 'orphan' })))
  await kit.settle(5)
  kit.advance(1_500)
  await until('the unsealed event', () => events(strict, 'unsealed').length === 1)
  const u = events(strict, 'unsealed')[0]!
  t.equal(u.delivered, false)
  t.equal(u.envelopes, 1)
  t.match(u.reason, /no seal within 1000 ms/)
  await until('the refusal', () => c.inbox.length === 1)
  t.equal(errorName(c.inbox[0]), 'UnsealedEnvelopeError', 'a held member is refused with a typed error the sender can act on')
  await until('the violation', () => events(strict, 'peer-violation').length === 1)
  t.equal(events(strict, 'peer-violation')[0]!.error.name, 'UnsealedEnvelopeError', 'a complete batch left unsealed past its deadline is a violation')

  const fast = await nodeWith(kit)
  const to2 = `${fast.system.did}/r`
  const ps = [0, 1, 2].map((i) => payload(kit, c, { to: to2, body: i }))
  await c.transport.send(fast.system.did, encodeMember(4, 0, ps[0]!))
  await c.transport.send(fast.system.did, encodeMember(4, 2, ps[2]!))
  await c.transport.send(fast.system.did, encodeSeal(4, 3, signSeal(c.key, ps)))
  await until('the unsealed event', () => events(fast, 'unsealed').length === 1)
  const g = events(fast, 'unsealed')[0]!
  t.equal(g.delivered, false, 'with concurrent checks too, nothing state-changing was delivered before its seal')
  t.match(g.reason, /covers 3 envelopes, 2 arrived/)
  await until('two refusals', () => c.inbox.length === 3)
  t.same(c.inbox.slice(1).map(errorName), ['UnsealedEnvelopeError', 'UnsealedEnvelopeError'], 'the members that can never be proven are refused')
  t.same(await logOf(fast, to2), [], 'and never delivered')
  t.same(events(fast, 'peer-violation'), [], 'a lost member is not a forgery')
})

t.test('sealed-stream frames are refused with typed errors when malformed or not over an authenticated transport', async (t) => {
  const kit = await kitWith(t, { authenticatesPeers: false })
  const a = await nodeWith(kit)
  const c = await rawPeer(t, kit, false)
  const p = payload(kit, c, { to: `${a.system.did}/r`, body: 'x' })
  await c.transport.send(a.system.did, encodeMember(1, 0, p))
  await until('the refusal', () => c.inbox.length === 1)
  t.equal(errorName(c.inbox[0]), 'MalformedEnvelopeError')
  t.match((c.inbox[0]!.body as { error: { message: string } }).error.message, /authenticates its peers/)

  const kit2 = await kitWith(t)
  const b = await nodeWith(kit2)
  const d = await rawPeer(t, kit2)
  await d.transport.send(b.system.did, Uint8Array.of(1, 3, 0, 0)) // a member shorter than its header
  await d.transport.send(b.system.did, encodeSeal(1, 1, new Uint8Array(64)).subarray(0, 40)) // a cut seal
  await d.transport.send(b.system.did, encodeSeal(1, 0, new Uint8Array(64))) // a seal over no envelopes
  await until('three refusals', () => d.inbox.length === 3)
  t.same(d.inbox.map(errorName), ['MalformedEnvelopeError', 'MalformedEnvelopeError', 'MalformedEnvelopeError'])
})

t.test('signaturesChecked() waits for the seals of waiting members, then for their check and delivery', async (t) => {
  const kit = await kitWith(t)
  const a = await nodeWith(kit)
  const c = await rawPeer(t, kit)
  const to = `${a.system.did}/r`
  const ps = [payload(kit, c, { to, body: 'e1' }), payload(kit, c, { to, body: 'e2' })]
  for (let i = 0; i < 2; i++) await c.transport.send(a.system.did, encodeMember(11, i, ps[i]!))
  await kit.settle(10)
  let checked = false
  const waiting = a.system.signaturesChecked().then(() => {
    checked = true
  })
  await new Promise((r) => setTimeout(r, 50))
  t.notOk(checked, 'still pending: the members wait for their seal')
  t.same(await logOf(a, to), [], 'and were not delivered')
  await c.transport.send(a.system.did, encodeSeal(11, 2, signSeal(c.key, ps)))
  await waiting
  t.ok(checked, 'resolved once the seal arrived and was checked')
  t.same(await logOf(a, to), ['e1', 'e2'], 'delivered, in order, once it passed')
  t.same(events(a, 'peer-violation'), [])
})

t.test('members beyond maxUnverified waiting for seals are turned away with UnsealedEnvelopeError; the room comes back', async (t) => {
  const kit = await kitWith(t)
  const a = await nodeWith(kit, { maxUnverified: 3 })
  const c = await rawPeer(t, kit)
  const to = `${a.system.did}/r`
  const ps = [0, 1, 2, 3, 4].map((i) => payload(kit, c, { to, body: i }))
  for (let i = 0; i < ps.length; i++) await c.transport.send(a.system.did, encodeMember(20, i, ps[i]!))
  await until('five refusals', () => c.inbox.length === 5, 10_000)
  t.same(c.inbox.map(errorName), Array(5).fill('UnsealedEnvelopeError'), 'the 4th member, over the limit, is refused with a typed error, and so is the rest of its batch (it can no longer be proven)')
  t.match((c.inbox.find((e) => /already wait for their seal/.test(JSON.stringify(e.body)))?.body as { error: { message: string } } | undefined)?.error.message ?? '', /3 envelopes/, 'the refusal says how many wait')
  t.same(await logOf(a, to), [], 'nothing of the batch was delivered')
  await c.transport.send(a.system.did, encodeSeal(20, 5, signSeal(c.key, ps)))
  await until('the unsealed event', () => events(a, 'unsealed').length === 1)
  t.match(events(a, 'unsealed')[0]!.reason, /turned away/, 'a batch with a turned-away member ends unsealed')
  t.same(events(a, 'peer-violation'), [], 'and that is not a forgery')
  const next = [payload(kit, c, { to, body: 'after' })]
  await c.transport.send(a.system.did, encodeMember(21, 0, next[0]!))
  await c.transport.send(a.system.did, encodeSeal(21, 1, signSeal(c.key, next)))
  await until('delivery', async () => (await logOf(a, to)).length === 1)
  await a.system.signaturesChecked()
  t.same(await logOf(a, to), ['after'], 'the room came back: the next batch is delivered')
  t.equal(events(a, 'unsealed').length, 1, 'the next batch is sealed normally')
})

t.test('inline checks: a batch that can no longer be proven refuses its held and later members at once', async (t) => {
  const kit = await kitWith(t)
  const a = await nodeWith(kit, { signatureCheck: 'inline', maxUnverified: 3 })
  const c = await rawPeer(t, kit)
  const to = `${a.system.did}/r`
  const ps = [0, 1, 2, 3, 4].map((i) => payload(kit, c, { to, body: i }))
  for (let i = 0; i < ps.length; i++) await c.transport.send(a.system.did, encodeMember(30, i, ps[i]!))
  await until('five refusals', () => c.inbox.length === 5, 10_000)
  t.same(c.inbox.map(errorName), Array(5).fill('UnsealedEnvelopeError'), 'every member is refused, without waiting for a seal or a time-out')
  t.same(await logOf(a, to), [], 'nothing was delivered')
  await c.transport.send(a.system.did, encodeSeal(30, 5, signSeal(c.key, ps)))
  await until('the unsealed event', () => events(a, 'unsealed').length === 1)
  t.equal(events(a, 'unsealed')[0]!.delivered, false)
})

t.test('bytes waiting for seals are bounded too (maxUnsealedBytes): a member that would exceed it is turned away', async (t) => {
  const kit = await kitWith(t)
  const a = await nodeWith(kit, { maxUnsealedBytes: 1_000 })
  const c = await rawPeer(t, kit)
  const to = `${a.system.did}/r`
  const ps = [0, 1, 2].map((i) => payload(kit, c, { to, body: `${i}${'x'.repeat(400)}` }))
  t.ok(ps[0]!.byteLength > 500 && ps[0]!.byteLength < 1_000, `each payload is ${ps[0]!.byteLength} bytes: one fits, two do not`)
  for (let i = 0; i < ps.length; i++) await c.transport.send(a.system.did, encodeMember(40, i, ps[i]!))
  await until('three refusals', () => c.inbox.length === 3, 10_000)
  t.same(c.inbox.map(errorName), Array(3).fill('UnsealedEnvelopeError'))
  t.ok(c.inbox.some((e) => /bytes\) already wait for their seal/.test((e.body as { ok: false; error: { message: string } }).error.message)), 'the one over the limit is told why')
  t.same(await logOf(a, to), [], 'the batch let go of what it kept: nothing of it is delivered')
  const next = [payload(kit, c, { to, body: 'small' })]
  await c.transport.send(a.system.did, encodeMember(41, 0, next[0]!))
  await c.transport.send(a.system.did, encodeSeal(41, 1, signSeal(c.key, next)))
  await until('delivery', async () => (await logOf(a, to)).length === 1)
  t.same(await logOf(a, to), ['small'], 'the room came back')
})

t.test("a read-only ask behind its sender's waiting tell waits for it too: each sender's order holds", async (t) => {
  const kit = await kitWith(t)
  const a = await nodeWith(kit)
  const c = await rawPeer(t, kit)
  const to = `${a.system.did}/r`
  const write = payload(kit, c, { to, body: 'w' })
  const read = payload(kit, c, { to, behavior: '/rec/log', body: null, replyTo: c.key.did })
  await c.transport.send(a.system.did, encodeMember(12, 0, write))
  await c.transport.send(a.system.did, encodeMember(12, 1, read))
  await kit.settle(20)
  t.equal(c.inbox.length, 0, 'the read waits behind the write, which waits for its seal')
  await c.transport.send(a.system.did, encodeSeal(12, 2, signSeal(c.key, [write, read])))
  await until('the answer', () => c.inbox.length === 1)
  t.same(c.inbox[0]!.body, { ok: true, value: ['w'] }, 'the read sees the write before it')
})

t.test('concurrent checks, self-signed envelopes: a forged one to a state-changing behavior never reaches it', async (t) => {
  const kit = await kitWith(t)
  const a = await nodeWith(kit)
  const c = await rawPeer(t, kit)
  const to = `${a.system.did}/r`
  const s = signEnvelope(c.key, { from: c.key.did, to, behavior: '/rec/record', body: 'forged', replyTo: c.key.did, now: kit.clock.now() })
  const bytes = Uint8Array.from(s.bytes)
  bytes[10]! ^= 0x01 // inside the signature
  await c.transport.send(a.system.did, bytes)
  await until('the refusal', () => c.inbox.length === 1)
  t.equal(errorName(c.inbox[0]), 'BadSignatureError')
  t.equal(c.inbox.filter((e) => (e.body as { ok?: boolean } | null)?.ok === true).length, 0, 'no other answer')
  await a.system.signaturesChecked()
  t.same(await logOf(a, to), [], 'the state is unchanged')
  const honest = await nodeWith(kit)
  await honest.system.ask(to, '/rec/record', 'honest')
  t.same(await logOf(a, to), ['honest'], 'an honest sender is served (after its check passed)')
})

t.test('an ask to a state-changing behavior is sealed at once: it is answered even when the seal window is a minute', async (t) => {
  const kit = await kitWith(t)
  const a = await nodeWith(kit)
  const b = await nodeWith(kit, { sealWindowMs: 60_000 })
  const to = `${a.system.did}/r`
  await b.system.ask(to, '/rec/log', null) // read-only: answered before any seal
  await b.system.ask(to, '/rec/record', 'held for its seal')
  t.same(await logOf(a, to), ['held for its seal'], 'the state-changing ask waited for its seal, which came at once')
  b.system.tell(to, '/rec/record', 'a tell waits for the window')
  await kit.settle(30)
  t.same(await logOf(a, to), ['held for its seal'], 'a tell is not sealed before its window closes (one seal covers many)')
})

t.test('a sender whose connections closed (a crash) with a batch open is refused but not a violator: its restart is not shut out', async (t) => {
  const kit = await kitWith(t)
  const strict = await nodeWith(kit, { signatureCheck: 'inline', sealTimeoutMs: 1_000 })
  const to = `${strict.system.did}/r`
  // a sender that stays connected and never seals: a violation (the case above)
  const stays = await rawPeer(t, kit)
  await stays.transport.send(strict.system.did, encodeMember(7, 0, payload(kit, stays, { to, body: 'kept-open' })))
  // a sender that dies with its batch open: every member came in order, then its connection closed
  const crashes = await rawPeer(t, kit)
  await crashes.transport.send(strict.system.did, encodeMember(9, 0, payload(kit, crashes, { to, body: 'in-flight' })))
  await kit.settle(5)
  await crashes.transport.stop()
  await kit.settle(5)
  kit.advance(1_500)
  await until('both batches ended unsealed', () => events(strict, 'unsealed').length === 2)
  await until('the violation', () => events(strict, 'peer-violation').length >= 1)
  await kit.settle(5)
  const violators = events(strict, 'peer-violation').map((e) => e.peerDid)
  t.same(violators, [stays.key.did], 'only the sender that stayed connected and never sealed broke the protocol')
  t.same(await logOf(strict, to), [], 'nothing unsealed was delivered, from either')
})

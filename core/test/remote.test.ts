// Two ActorSystems joined by the memory transport: real signed envelopes, real capability tokens.
import t, { type Test } from 'tap'
import { NodeKey, decodeEnvelope, signEnvelope, type Envelope, type JsonValue } from '../../identity/index.ts'
import {
  ActorCrashedError,
  ActorNotFoundError,
  AskTimeoutError,
  CapabilityDeniedError,
  UnknownBehaviorError,
  UnreachableError,
  type MemoryTransport,
} from '../index.ts'
import { TestKit, type TestNode } from '../testkit.ts'
import { recorder, rejection } from './helpers.ts'

type T = Test

async function pair(t: T): Promise<{ kit: TestKit; a: TestNode; b: TestNode; addr: string }> {
  const kit = new TestKit()
  t.teardown(() => kit.stop())
  const a = await kit.node()
  const b = await kit.node()
  a.system.spawn(recorder(), { name: 'r' })
  return { kit, a, b, addr: `${a.system.did}/r` }
}

/** A bare transport on the kit's network, to send hand-made bytes and see what comes back. */
async function raw(t: T, kit: TestKit, key = NodeKey.generate()): Promise<{ key: NodeKey; transport: MemoryTransport; inbox: Envelope[] }> {
  const transport = kit.network.transport(key.did)
  const inbox: Envelope[] = []
  transport.onEnvelope((inbound) => inbox.push(decodeEnvelope(inbound.bytes).envelope))
  await transport.start()
  t.teardown(() => transport.stop())
  return { key, transport, inbox }
}

t.test('a remote ask is answered and remote tells keep their order', async (t) => {
  const { b, addr } = await pair(t)
  for (let i = 0; i < 300; i++) b.system.tell(addr, '/rec/record', i)
  const log = await b.system.ask<number[]>(addr, '/rec/log')
  t.same(log, Array.from({ length: 300 }, (_, i) => i))
})

t.test('an undeclared remote behavior is answered with UnknownBehaviorError', async (t) => {
  const { b, addr, kit } = await pair(t)
  t.type(await rejection(b.system.ask(addr, '/rec/nope')), UnknownBehaviorError)
  b.system.tell(addr, '/rec/nope', 1)
  await kit.settle()
  const rejected = b.events.find((e) => e.type === 'rejected')
  t.equal((rejected as { error: Error } | undefined)?.error.name, 'UnknownBehaviorError', 'a refused remote tell comes back as a rejected event')
})

t.test('a remote message without a capability is answered with CapabilityDeniedError', async (t) => {
  const { b, addr } = await pair(t)
  const err = await rejection(b.system.ask(addr, '/rec/guarded', 'x'))
  t.type(err, CapabilityDeniedError)
  t.equal(err.name, 'CapabilityDeniedError')
})

t.test('a capability from a trusted root lets the remote message in; one for another ability does not', async (t) => {
  const { kit, a, b, addr } = await pair(t)
  const token = await kit.grant(a.key, b.system.did, ['/rec/guarded'])
  t.equal(await b.system.ask(addr, '/rec/guarded', 'x', { proofs: [token] }), 1)
  t.type(await rejection(b.system.ask(addr, '/rec/admin', 'y', { proofs: [token] })), CapabilityDeniedError)
  const adminToken = await kit.grant(a.key, b.system.did, ['/rec/admin'])
  t.equal(await b.system.ask(addr, '/rec/admin', 'y', { proofs: [adminToken] }), null, 'no reply function: answered once handled, with undefined (null on the wire)')
  b.system.tell(addr, '/rec/admin', 'z', { proofs: [adminToken] })
  t.same(await b.system.ask(addr, '/rec/log'), ['x', 'y', 'z'])
})

t.test('a capability issued by an untrusted root, or to another audience, is denied', async (t) => {
  const { kit, a, b, addr } = await pair(t)
  const stranger = NodeKey.generate()
  const untrusted = await kit.grant(stranger, b.system.did, ['/rec/guarded'])
  const err = await rejection(b.system.ask(addr, '/rec/guarded', 'x', { proofs: [untrusted] }))
  t.type(err, CapabilityDeniedError)
  t.match(err.message, /UntrustedRootError/)
  const forSomeoneElse = await kit.grant(a.key, stranger.did, ['/rec/guarded'])
  t.type(await rejection(b.system.ask(addr, '/rec/guarded', 'x', { proofs: [forSomeoneElse] })), CapabilityDeniedError)
})

t.test('a root configured in trustedRoots is honoured', async (t) => {
  const kit = new TestKit()
  t.teardown(() => kit.stop())
  const owner = NodeKey.generate()
  const a = await kit.node({ trustedRoots: [owner.did] })
  const b = await kit.node()
  a.system.spawn(recorder(), { name: 'r' })
  const token = await kit.grant(owner, b.system.did, ['/rec'])
  t.equal(await b.system.ask(`${a.system.did}/r`, '/rec/guarded', 1, { proofs: [token] }), 1)
})

t.test('remote asks to a missing or crashing actor fail at once with the typed error', async (t) => {
  const { b, a } = await pair(t)
  t.type(await rejection(b.system.ask(`${a.system.did}/ghost`, '/rec/log', null, { timeoutMs: 60_000 })), ActorNotFoundError)
  t.type(await rejection(b.system.ask(`${a.system.did}/r`, '/rec/boom', 'x', { timeoutMs: 60_000 })), ActorCrashedError)
})

t.test('a remote ask times out on the simulated clock; its late answer is reported as unmatched', async (t) => {
  const { kit, b, addr } = await pair(t)
  const p = b.system.ask(addr, '/rec/park', null, { timeoutMs: 2000 })
  await kit.settle()
  kit.advance(2000)
  t.type(await rejection(p), AskTimeoutError)
  b.system.tell(addr, '/rec/release', 'late')
  await kit.settle(10)
  t.ok(b.events.some((e) => e.type === 'unmatched-reply'), 'late answer seen as unmatched')
})

t.test('an ask waiting on a node whose connection closes fails at once with UnreachableError, not at its time-out', async (t) => {
  const { kit, a, b, addr } = await pair(t)
  const p = b.system.ask(addr, '/rec/park', null, { timeoutMs: 60_000 })
  await kit.settle()
  await a.transport.stop() // the node asked is gone (kill -9): its connections close
  const err = await rejection(p)
  t.type(err, UnreachableError)
  t.match((err as Error).message, /connection closed while an ask waited/)
})

t.test('a node that is not on the network is unreachable', async (t) => {
  const { b } = await pair(t)
  const nowhere = NodeKey.generate().did
  t.type(await rejection(b.system.ask(`${nowhere}/x`, '/rec/log')), UnreachableError)
})

t.test('an envelope whose sender is not the delivering peer is refused with SenderMismatchError', async (t) => {
  const { kit, a, addr } = await pair(t)
  const mallory = await raw(t, kit)
  const victim = NodeKey.generate()
  const forged = signEnvelope(victim, { from: victim.did, to: addr, behavior: '/rec/record', body: 'forged', now: kit.clock.now() })
  await mallory.transport.send(a.system.did, forged.bytes)
  await kit.settle()
  t.equal(mallory.inbox.length, 1)
  const answer = mallory.inbox[0]!
  t.equal(answer.behavior, '/noir/reply')
  t.equal(answer.inReplyTo, forged.envelope.id)
  t.equal((answer.body as { error: { name: string } }).error.name, 'SenderMismatchError')
  t.same(await a.system.ask(addr, '/rec/log'), [], 'nothing delivered')
})

t.test('a replayed envelope is refused with ReplayedEnvelopeError; an expired one with ExpiredEnvelopeError', async (t) => {
  const { kit, a, addr } = await pair(t)
  const c = await raw(t, kit)
  const once = signEnvelope(c.key, { from: c.key.did, to: addr, behavior: '/rec/record', body: 'once', now: kit.clock.now() })
  await c.transport.send(a.system.did, once.bytes)
  await c.transport.send(a.system.did, once.bytes)
  const old = signEnvelope(c.key, { from: c.key.did, to: addr, behavior: '/rec/record', body: 'old', now: kit.clock.now(), ttlMs: 1000 })
  kit.advance(60_000)
  await c.transport.send(a.system.did, old.bytes)
  await kit.settle()
  t.same(c.inbox.map((e) => (e.body as { error: { name: string } }).error.name), ['ReplayedEnvelopeError', 'ExpiredEnvelopeError'])
  t.same(await a.system.ask(addr, '/rec/log'), ['once'])
})

t.test('undecodable bytes are answered with /noir/error; answers are never answered', async (t) => {
  const { kit, a } = await pair(t)
  const c = await raw(t, kit)
  await c.transport.send(a.system.did, new TextEncoder().encode('not an envelope'))
  await kit.settle()
  t.equal(c.inbox.length, 1)
  t.equal(c.inbox[0]!.behavior, '/noir/error')
  t.equal((c.inbox[0]!.body as { error: { name: string } }).error.name, 'MalformedEnvelopeError')
  // A bogus answer (and a bogus error) from c: a gets events, c gets nothing back.
  const bogus = signEnvelope(c.key, { from: c.key.did, to: a.system.did, behavior: '/noir/reply', inReplyTo: 'nope', body: { ok: true, value: 1 } as JsonValue, now: kit.clock.now() })
  const bogusErr = signEnvelope(c.key, { from: c.key.did, to: a.system.did, behavior: '/noir/reply', inReplyTo: 'nope2', body: { ok: false, error: { name: 'X', code: 'X', message: 'x' } } as JsonValue, now: kit.clock.now() })
  await c.transport.send(a.system.did, bogus.bytes)
  await c.transport.send(a.system.did, bogusErr.bytes)
  await kit.settle()
  t.equal(c.inbox.length, 1, 'no answer to an answer')
  t.ok(a.events.some((e) => e.type === 'unmatched-reply'))
})

t.test('an answer that matches no pending ask does not disturb a waiting ask', async (t) => {
  const { kit, a, b, addr } = await pair(t)
  const c = await raw(t, kit)
  const p = b.system.ask(addr, '/rec/park', null, { timeoutMs: 5000 })
  await kit.settle()
  const parked = (a.system.snapshotOf(addr) as { context: { parked: unknown[] } }).context.parked.length
  t.equal(parked, 1)
  const fake = signEnvelope(c.key, { from: c.key.did, to: b.system.did, behavior: '/noir/reply', inReplyTo: 'whatever', body: { ok: true, value: 'fake' } as JsonValue, now: kit.clock.now() })
  await c.transport.send(b.system.did, fake.bytes)
  await kit.settle()
  b.system.tell(addr, '/rec/release', 'real')
  t.equal(await p, 'real')
})

t.test('a full remote mailbox answers the extra tells with MailboxFullError', async (t) => {
  const kit = new TestKit()
  t.teardown(() => kit.stop())
  const a = await kit.node()
  const b = await kit.node()
  const addr = a.system.spawn(recorder({ mailboxCapacity: 2 }), { name: 'small' }).address
  for (let i = 0; i < 6; i++) b.system.tell(addr, '/rec/record', i)
  await kit.settle(10)
  const refused = b.events.filter((e) => e.type === 'rejected') as { error: Error }[]
  t.equal(refused.length, 4)
  t.ok(refused.every((e) => e.error.name === 'MailboxFullError'))
  t.same(await b.system.ask(addr, '/rec/log'), [0, 1])
})

t.test('remote messages keep their order while capability checks are in flight', async (t) => {
  const { kit, a, b, addr } = await pair(t)
  const token = await kit.grant(a.key, b.system.did, ['/rec/guarded'])
  b.system.tell(addr, '/rec/guarded', 'a', { proofs: [token] })
  b.system.tell(addr, '/rec/record', 'b')
  b.system.tell(addr, '/rec/guarded', 'c', { proofs: [token] })
  b.system.tell(addr, '/rec/record', 'd')
  t.same(await b.system.ask(addr, '/rec/log'), ['a', 'b', 'c', 'd'])
})

t.test('an actor messages a remote actor as itself, and gets its answer', async (t) => {
  const { a, b, addr } = await pair(t)
  const asker = b.system.spawn(recorder(), { name: 'asker' })
  const answer = await b.system.ask(addr, '/rec/log', null, { from: asker.address })
  t.same(answer, [])
  a.system.spawn(recorder(), { name: 'peer' })
  t.ok(b.system.refFor(`${a.system.did}/peer`).address.endsWith('/peer'))
  t.same(await b.system.refFor(`${a.system.did}/peer`).ask('/rec/log'), [])
})

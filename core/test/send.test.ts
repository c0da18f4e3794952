// system.send: a tell whose hand-off can be awaited (local mailbox or remote transport), rejecting with the
// refusal known by then: what the daemon API's /v1/actor/send uses so an unreachable node is an error.
import t from 'tap'
import { NodeKey } from '../../identity/index.ts'
import { ActorNotFoundError, CapabilityDeniedError, UnknownBehaviorError, UnreachableError, type SystemEvent } from '../index.ts'
import { TestKit } from '../testkit.ts'
import { recorder, rejection } from './helpers.ts'

t.test('send to a local actor resolves once the message is queued, and the actor handles it', async (t) => {
  const kit = new TestKit()
  t.teardown(() => kit.stop())
  const a = await kit.node()
  a.system.spawn(recorder(), { name: 'r' })
  await a.system.send(`${a.system.did}/r`, '/rec/record', 1)
  t.same(await a.system.ask(`${a.system.did}/r`, '/rec/log'), [1])
  t.type(await rejection(a.system.send(`${a.system.did}/ghost`, '/rec/record', 1)), ActorNotFoundError)
  t.type(await rejection(a.system.send(`${a.system.did}/r`, '/rec/nope', 1)), UnknownBehaviorError)
})

t.test('send under a checked local policy rejects with CapabilityDeniedError when no token covers the behavior', async (t) => {
  const kit = new TestKit()
  t.teardown(() => kit.stop())
  const a = await kit.node({ localPolicy: 'checked' })
  a.system.spawn(recorder(), { name: 'r' })
  t.type(await rejection(a.system.send(`${a.system.did}/r`, '/rec/guarded', 'x')), CapabilityDeniedError)
})

t.test('send to a remote actor resolves on hand-off to the transport and the message arrives', async (t) => {
  const kit = new TestKit()
  t.teardown(() => kit.stop())
  const a = await kit.node()
  const b = await kit.node()
  a.system.spawn(recorder(), { name: 'r' })
  await b.system.send(`${a.system.did}/r`, '/rec/record', 'hi')
  t.same(await b.system.ask(`${a.system.did}/r`, '/rec/log'), ['hi'])
})

t.test('send to a node no transport can reach rejects with UnreachableError (a tell only emits a rejected event)', async (t) => {
  const kit = new TestKit()
  t.teardown(() => kit.stop())
  const b = await kit.node()
  const nowhere = `${NodeKey.generate().did}/r`
  const err = await rejection(b.system.send(nowhere, '/rec/record', 1))
  t.type(err, UnreachableError)
  t.equal(err.name, 'UnreachableError')
  const events: SystemEvent[] = []
  t.teardown(b.system.subscribe((e) => events.push(e)))
  b.system.tell(nowhere, '/rec/record', 2)
  await new Promise((r) => setTimeout(r, 20))
  t.ok(events.some((e) => e.type === 'rejected' && e.error.name === 'UnreachableError'), 'the plain tell reports it only as an event')
})

t.test('under the trusted local policy a message marked untrusted is capability-checked like a remote one', async (t) => {
  const kit = new TestKit()
  t.teardown(() => kit.stop())
  const a = await kit.node()
  t.equal(a.system.localPolicy, 'trusted')
  a.system.spawn(recorder(), { name: 'r' })
  const addr = `${a.system.did}/r`
  const from = `${a.system.did}/alloc/sandboxed`
  t.equal(await a.system.ask(addr, '/rec/guarded', 'trusted', { from }), 1, 'an ordinary local sender is trusted')
  t.type(await rejection(a.system.ask(addr, '/rec/guarded', 'x', { from, untrusted: true })), CapabilityDeniedError, 'no token: CapabilityDeniedError')
  t.type(await rejection(a.system.send(addr, '/rec/guarded', 'x', { from, untrusted: true })), CapabilityDeniedError, 'a tell is refused the same way')
  const other = await kit.grant(a.key, a.system.did, ['/rec/admin'])
  t.type(await rejection(a.system.ask(addr, '/rec/guarded', 'x', { from, untrusted: true, proofs: [other] })), CapabilityDeniedError, 'a token for another ability does not cover it')
  const token = await kit.grant(a.key, a.system.did, ['/rec/guarded'])
  t.equal(await a.system.ask(addr, '/rec/guarded', 'covered', { from, untrusted: true, proofs: [token] }), 2, 'a covering token: delivered')
  await a.system.send(addr, '/rec/record', 'public', { from, untrusted: true })
  t.same(await a.system.ask(addr, '/rec/log'), ['trusted', 'covered', 'public'], 'public behaviors need no token; refused messages never reached the actor')
})

// Must show: a daemon refuses, with typed errors the sender reads, an envelope whose signer is not the
// connection's peer, a replayed envelope and an expired one; random, truncated and oversize frames reset
// that stream, the peer is hung up on and quarantined, and the daemon stays up (it answers others). Bad signatures and forged seals of
// sealed streams are answered, logged and the peer hung up on; with inline checks nothing acts on them.
import t from 'tap'
import { randomBytes } from 'node:crypto'
import { peerIdFromString } from '@libp2p/peer-id'
import { NodeKey } from '../../identity/keys.ts'
import { peerIdFromDid } from '../../identity/did-key.ts'
import { prepareEnvelope, signEnvelope, type Envelope } from '../../identity/envelope.ts'
import { encodeMember, encodeSeal, signSeal } from '../../identity/sealed-stream.ts'
import { DaemonCluster, eventually, type DaemonHandle } from '../../scripts/testing/daemons.ts'
import { ACTOR_PROTOCOL } from '../actor-wire.ts'
import { encodeFrames } from '../framing.ts'
import { Probe } from './probe.ts'

const cluster = new DaemonCluster()
t.teardown(() => cluster.cleanup())

type ErrorBody = { ok?: boolean; error?: { name: string; code?: string; message: string } }
const errorName = (e: Envelope): string | undefined => (e.body as ErrorBody | null)?.error?.name

t.test('a daemon refuses forged, replayed and expired envelopes with typed errors', async (t) => {
  const d = await cluster.start()
  const probe = await Probe.start({ bootstrap: d.multiaddrs })
  t.teardown(() => probe.stop())
  const to = `${d.did}/node`

  // sanity: an honest ask is answered
  const honest = signEnvelope(probe.key, { from: probe.did, to, behavior: '/noir/node/ping', body: {}, replyTo: probe.did })
  await probe.mesh.transport.send(d.did, honest.bytes)
  const answer = await probe.waitFor((e) => e.inReplyTo === honest.envelope.id)
  t.same((answer.body as { ok: boolean }).ok, true, 'an honest signed ask is answered')
  t.equal(answer.from, to)

  // signed correctly, but by a key that is not this connection's peer
  const other = NodeKey.generate()
  const forged = signEnvelope(other, { from: other.did, to, behavior: '/noir/node/ping', body: {}, replyTo: other.did })
  await probe.mesh.transport.send(d.did, forged.bytes)
  const e1 = await probe.waitFor((e) => e.inReplyTo === forged.envelope.id)
  t.equal(errorName(e1), 'SenderMismatchError', 'a sender DID other than the authenticated peer is refused, and the peer is told why')

  // the same bytes again
  await probe.mesh.transport.send(d.did, honest.bytes)
  const e2 = await probe.waitFor((e) => e.inReplyTo === honest.envelope.id && errorName(e) !== undefined)
  t.equal(errorName(e2), 'ReplayedEnvelopeError', 'a replayed envelope is refused with ReplayedEnvelopeError')

  // issued an hour ago with a one-second lifetime
  const expired = signEnvelope(probe.key, { from: probe.did, to, behavior: '/noir/node/ping', body: {}, replyTo: probe.did, now: Date.now() - 3_600_000, ttlMs: 1000 })
  await probe.mesh.transport.send(d.did, expired.bytes)
  const e3 = await probe.waitFor((e) => e.inReplyTo === expired.envelope.id)
  t.equal(errorName(e3), 'ExpiredEnvelopeError', 'an expired envelope is refused with ExpiredEnvelopeError')

  // the daemon still serves
  const after = await d.api.post<{ reply: { pong: boolean } }>('/v1/actor/send', { to, behavior: '/noir/node/ping', body: {}, ask: true })
  t.equal(after.reply.pong, true)
})

t.test('random, truncated and oversize frames reset that stream, the peer is hung up on and refused; the daemon still answers others', async (t) => {
  // a truncated frame is caught when the stream ends, or when the frame stalls (frameTimeoutMs), whichever first
  const d = await cluster.start({ config: { frameTimeoutMs: 2_000 } })
  const peer = peerIdFromString(d.peerId)

  const cases: Array<{ what: string; bytes: Uint8Array; error: string }> = [
    { what: 'random bytes', bytes: Uint8Array.of(0x05, 0x7e, ...randomBytes(64)), error: 'MalformedFrameError' },
    { what: 'a truncated frame', bytes: encodeFrames([new Uint8Array(500)]).subarray(0, 100), error: 'TruncatedFrameError' },
    { what: 'an oversize frame', bytes: Uint8Array.of(0xff, 0xff, 0xff, 0x7f, 0x01), error: 'FrameTooLargeError' },
  ]
  let resets = 0
  for (const c of cases) {
    // Each attack from a peer of its own: the first violation ends that peer's welcome.
    const probe = await Probe.start({ bootstrap: d.multiaddrs })
    t.teardown(() => probe.stop())
    const host = probe.mesh.host
    const stream = await host.dialProtocol(peer, ACTOR_PROTOCOL)
    const closed = new Promise<string>((resolve) => stream.addEventListener('close', () => resolve(stream.status), { once: true }))
    stream.send(c.bytes)
    // end our side (not awaited: the daemon may reset the stream first)
    stream.close().catch(() => {})
    const status = await closed
    resets++
    t.ok(['reset', 'aborted', 'closed'].includes(status), `${c.what}: the stream ends (${status})`)
    const line = await eventually(() => d.logLines().find((l) => l.msg === 'actor stream reset: protocol violation' && l.error === c.error), 10_000)
      .catch(() => ({ error: `none; daemon log:\n${d.logLines().filter((l) => String(l.msg).startsWith('actor')).map((l) => JSON.stringify(l)).join('\n')}` }))
    t.equal(line.error, c.error, `${c.what}: the daemon logs a typed ${c.error}`)
    await eventually(() => host.getConnections(peer).length === 0, 10_000)
    t.pass(`${c.what}: the daemon hung up on the peer (nothing more it sends is read)`)
    const again = await host.dialProtocol(peer, ACTOR_PROTOCOL, { signal: AbortSignal.timeout(5_000) }).then(() => 'dialled', (e: Error) => e.name)
    t.not(again, 'dialled', `${c.what}: the peer is refused when it comes back (quarantine)`)
    const s = await d.api.get<{ wire: { streamsReset: number } }>('/v1/status')
    t.equal(s.wire.streamsReset, resets, `${c.what}: counted as a protocol violation`)
  }
  // another, honest peer is still answered
  const honestPeer = await Probe.start({ bootstrap: d.multiaddrs })
  t.teardown(() => honestPeer.stop())
  const honest = signEnvelope(honestPeer.key, { from: honestPeer.did, to: `${d.did}/node`, behavior: '/noir/node/echo', body: { still: 'up' }, replyTo: honestPeer.did })
  await honestPeer.mesh.transport.send(d.did, honest.bytes)
  const answer = await honestPeer.waitFor((e) => e.inReplyTo === honest.envelope.id)
  t.same(answer.body, { ok: true, value: { still: 'up' } }, 'the daemon answers another peer afterwards')
  t.ok(d.running, 'the daemon process is still running')
})

/** A correctly formed envelope from `key` whose signature is wrong (one bit flipped). */
function badlySigned(key: NodeKey, to: string, body: string, behavior = '/noir/node/echo'): { bytes: Uint8Array; envelope: Envelope } {
  const s = signEnvelope(key, { from: key.did, to, behavior, body, replyTo: key.did })
  const bytes = Uint8Array.from(s.bytes)
  bytes[10]! ^= 0x01 // inside the 64-byte signature
  return { bytes, envelope: s.envelope }
}

/** What a daemon saw, for a wait that failed: its wire counters and the log lines of its mesh and actors. */
const daemonView = (d: DaemonHandle) => async (): Promise<string> => {
  const status = await d.api.get<{ wire: unknown }>('/v1/status').then((s) => JSON.stringify(s.wire), (err: unknown) => `status failed: ${String(err)}`)
  const lines = d.logLines().filter((l) => l.level !== 'debug' && l.svc !== 'api').slice(-40).map((l) => JSON.stringify(l))
  return `daemon wire: ${status}\ndaemon log (last ${lines.length}):\n${lines.join('\n')}`
}

const peerConnected = (probe: Probe, did: string): boolean => probe.mesh.host.getConnections(peerIdFromDid(did)).length > 0

t.test('concurrent checks (the default): a bad signature from the session peer is answered with BadSignatureError, logged, and the peer is quarantined', async (t) => {
  const quarantineMs = 4_000
  const d = await cluster.start({ config: { quarantineMs } })
  const probe = await Probe.start({ bootstrap: d.multiaddrs })
  t.teardown(() => probe.stop())
  const daemonPeer = peerIdFromDid(d.did)
  const disconnected = new Promise<number>((resolve) => probe.mesh.host.addEventListener('peer:disconnect', (e) => {
    if (e.detail.equals(daemonPeer)) resolve(Date.now())
  }))
  const bad = badlySigned(probe.key, `${d.did}/node`, 'tampered')
  await probe.mesh.transport.send(d.did, bad.bytes)
  const refusal = await probe.waitFor((e) => e.inReplyTo === bad.envelope.id && errorName(e) !== undefined, 10_000, daemonView(d))
  t.equal(errorName(refusal), 'BadSignatureError', 'the sender reads a typed BadSignatureError naming its envelope')
  t.equal(refusal.from, d.did, 'the refusal comes from the node')
  t.ok(probe.membersSeen.some((e) => e.inReplyTo === bad.envelope.id && (e.body as { ok?: boolean }).ok === true),
    'checked concurrently, the read-only echo answered before its signature failed (spec/actors.md, "Signature checks")')
  const line = await eventually(() => d.logLines().find((l) => l.msg === 'peer violated the protocol: answered and disconnected'), 10_000)
  t.equal(line.peer, probe.did, 'the daemon logs the violation with the peer')
  t.equal(line.error, 'BadSignatureError')
  const droppedAt = await disconnected
  t.pass('the daemon hung up on the peer')

  // quarantined: the daemon refuses the peer's connections for quarantineMs
  const honest = signEnvelope(probe.key, { from: probe.did, to: `${d.did}/node`, behavior: '/noir/node/echo', body: 'honest', replyTo: probe.did })
  if (Date.now() - droppedAt < quarantineMs - 1_500) {
    const refused = await probe.mesh.transport.send(d.did, honest.bytes).then(() => 'sent', (err: Error) => err.name)
    t.equal(refused, 'UnreachableError', 'while quarantined, the peer cannot reach the node')
  }
  // afterwards the node serves it again
  await new Promise((r) => setTimeout(r, Math.max(0, droppedAt + quarantineMs + 200 - Date.now())))
  const again = signEnvelope(probe.key, { from: probe.did, to: `${d.did}/node`, behavior: '/noir/node/echo', body: 'after', replyTo: probe.did })
  await eventually(async () => (await probe.mesh.transport.send(d.did, again.bytes).then(() => true, () => undefined)), 10_000)
  const answer = await probe.waitFor((e) => e.inReplyTo === again.envelope.id)
  t.same(answer.body, { ok: true, value: 'after' }, 'after the quarantine an honest envelope is answered')
})

t.test('a peer too busy to read at once still reads the refusal, and its seal, before the node hangs up', async (t) => {
  const d = await cluster.start({ config: { quarantineMs: 60_000 } })
  const probe = await Probe.start({ bootstrap: d.multiaddrs })
  t.teardown(() => probe.stop())
  const bad = badlySigned(probe.key, `${d.did}/node`, 'tampered')
  await probe.mesh.transport.send(d.did, bad.bytes)
  // the probe's event loop is blocked while the node answers, refuses and hangs up: every frame waits unread
  // in its socket, and the first thing the probe does afterwards is a write of its own (a latency ping)
  const until = Date.now() + 1_000
  while (Date.now() < until) {
    // busy: nothing is read
  }
  const refusal = await probe.waitFor((e) => e.inReplyTo === bad.envelope.id && errorName(e) !== undefined, 10_000, daemonView(d))
  t.equal(errorName(refusal), 'BadSignatureError', 'the refusal was read although the node hung up meanwhile')
  await eventually(() => (probe.framesByKind[4] ?? 0) >= 1, 10_000)
  t.equal(probe.bad, 0, 'the seal of the answers that came before the refusal arrived and verified')
  await eventually(() => !peerConnected(probe, d.did), 10_000)
  t.pass('and the node hung up')
})

t.test("signatureCheck 'inline': a bad signature is refused before delivery, with BadSignatureError and no other answer", async (t) => {
  const d = await cluster.start({ config: { signatureCheck: 'inline' } })
  const probe = await Probe.start({ bootstrap: d.multiaddrs })
  t.teardown(() => probe.stop())
  const bad = badlySigned(probe.key, `${d.did}/node`, 'tampered')
  await probe.mesh.transport.send(d.did, bad.bytes)
  const refusal = await probe.waitFor((e) => e.inReplyTo === bad.envelope.id)
  t.equal(errorName(refusal), 'BadSignatureError', 'the first and only answer is the refusal')
  // an honest envelope sent after it is answered, and by then nothing else answered the bad one
  const honest = signEnvelope(probe.key, { from: probe.did, to: `${d.did}/node`, behavior: '/noir/node/echo', body: 'honest', replyTo: probe.did })
  await probe.mesh.transport.send(d.did, honest.bytes)
  await probe.waitFor((e) => e.inReplyTo === honest.envelope.id)
  t.equal(probe.received.filter((e) => e.inReplyTo === bad.envelope.id).length, 1, 'the echo actor never saw the bad envelope')
  t.ok(peerConnected(probe, d.did), 'refused inline, the peer stays connected (nothing was acted on)')
})

// ---- sealed streams (spec/envelope.md, "Sealed streams") ------------------------------------------------------

function member(probe: Probe, to: string, body: string, behavior = '/noir/node/echo'): { envelope: Envelope; payload: Uint8Array } {
  return prepareEnvelope(probe.key, { from: probe.did, to, behavior, body, replyTo: probe.did })
}

/** The daemon's ping count (each /noir/node/ping handled adds one), asked by an honest peer. */
async function pings(probe: Probe, d: DaemonHandle): Promise<number> {
  const env = signEnvelope(probe.key, { from: probe.did, to: `${d.did}/node`, behavior: '/noir/node/ping', body: null, replyTo: probe.did })
  await probe.mesh.transport.send(d.did, env.bytes)
  const answer = await probe.waitFor((e) => e.inReplyTo === env.envelope.id, 10_000)
  return (answer.body as { ok: true; value: { count: number } }).value.count - 1 // less this ping itself
}

t.test('as an attacker: forged envelopes and forged seals to a state-changing behavior never change its state; a second forged seal on the connection is never read', async (t) => {
  const d = await cluster.start({ config: { quarantineMs: 60_000 } })
  const to = `${d.did}/node`
  // 1. a self-signed envelope with a broken signature to /noir/node/ping (it counts pings: state)
  const forger = await Probe.start({ bootstrap: d.multiaddrs })
  t.teardown(() => forger.stop())
  const bad = badlySigned(forger.key, to, 'x', '/noir/node/ping')
  await forger.mesh.transport.send(d.did, bad.bytes)
  const refusal = await forger.waitFor((e) => e.inReplyTo === bad.envelope.id && errorName(e) !== undefined, 10_000, daemonView(d))
  t.equal(errorName(refusal), 'BadSignatureError', 'the forger reads BadSignatureError')
  t.notOk(forger.received.some((e) => e.inReplyTo === bad.envelope.id && (e.body as { ok?: boolean }).ok === true), 'and no pong: the behavior never ran')

  // 2. a sealed batch of pings under a forged seal, then a second one on the same connection
  const sealer = await Probe.start({ bootstrap: d.multiaddrs })
  t.teardown(() => sealer.stop())
  const forged = [member(sealer, to, 'f0', '/noir/node/ping'), member(sealer, to, 'f1', '/noir/node/ping')]
  for (let i = 0; i < 2; i++) await sealer.mesh.transport.send(d.did, encodeMember(50, i, forged[i]!.payload))
  await new Promise((r) => setTimeout(r, 300))
  t.notOk(sealer.received.some((e) => forged.some((f) => f.envelope.id === e.inReplyTo)), 'the members wait for their seal: nothing answered them')
  await sealer.mesh.transport.send(d.did, encodeSeal(50, 2, signSeal(NodeKey.generate(), forged.map((m) => m.payload))))
  // and at once a second forged batch on the same connection, before the node could hang up
  const second = [member(sealer, to, 's0', '/noir/node/ping')]
  await sealer.mesh.transport.send(d.did, encodeMember(51, 0, second[0]!.payload)).catch(() => {})
  await sealer.mesh.transport.send(d.did, encodeSeal(51, 1, signSeal(NodeKey.generate(), [second[0]!.payload]))).catch(() => {})
  const answers = await eventually(() => {
    const a = sealer.received.filter((e) => forged.some((f) => f.envelope.id === e.inReplyTo))
    return a.length === 2 ? a : undefined
  }, 10_000)
  t.same(answers.map(errorName), ['BadSignatureError', 'BadSignatureError'], 'each forged member is refused with BadSignatureError')
  await eventually(() => !peerConnected(sealer, d.did) || undefined, 10_000)
  const violations = d.logLines().filter((l) => l.msg === 'peer violated the protocol: answered and disconnected' && l.peer === sealer.did)
  t.equal(violations.length, 1, 'one violation: the second forged seal was never read')
  t.notOk(sealer.received.some((e) => e.inReplyTo === second[0]!.envelope.id), 'and its member was never answered')

  // 3. an honest peer's ping: the count shows that none of the forged pings ran
  const honest = await Probe.start({ bootstrap: d.multiaddrs })
  t.teardown(() => honest.stop())
  t.equal(await pings(honest, d), 0, 'the ping count is unchanged: no forged message reached the behavior')
})

t.test('a sealed stream with a forged seal: its members were answered, the seal is refused with BadSignatureError and the peer hung up on', async (t) => {
  const d = await cluster.start()
  const probe = await Probe.start({ bootstrap: d.multiaddrs })
  t.teardown(() => probe.stop())
  const to = `${d.did}/node`
  const honest = [member(probe, to, 'h0'), member(probe, to, 'h1')]
  for (let i = 0; i < 2; i++) await probe.mesh.transport.send(d.did, encodeMember(40, i, honest[i]!.payload))
  await probe.mesh.transport.send(d.did, encodeSeal(40, 2, signSeal(probe.key, honest.map((m) => m.payload))))
  const a1 = await probe.waitFor((e) => e.inReplyTo === honest[1]!.envelope.id)
  t.same(a1.body, { ok: true, value: 'h1' }, 'an honestly sealed batch is answered (and the answers come sealed too)')
  t.equal(probe.bad, 0, "every answer's seal verified at the probe")

  const daemonPeer = peerIdFromDid(d.did)
  const disconnected = new Promise<void>((resolve) => probe.mesh.host.addEventListener('peer:disconnect', (e) => {
    if (e.detail.equals(daemonPeer)) resolve()
  }))
  const forged = [member(probe, to, 'f0'), member(probe, to, 'f1')]
  for (let i = 0; i < 2; i++) await probe.mesh.transport.send(d.did, encodeMember(41, i, forged[i]!.payload))
  await probe.waitFor((e) => e.inReplyTo === forged[1]!.envelope.id && (e.body as { ok?: boolean }).ok === true)
  t.pass('checked concurrently, the members were delivered and answered before their seal came')
  await probe.mesh.transport.send(d.did, encodeSeal(41, 2, signSeal(NodeKey.generate(), forged.map((m) => m.payload))))
  const line = await eventually(() => d.logLines().find((l) => l.msg === 'peer violated the protocol: answered and disconnected'), 10_000)
  t.equal(line.peer, probe.did)
  t.equal(line.error, 'BadSignatureError')
  await disconnected
  t.pass('the daemon hung up on the peer')
})

t.test("signatureCheck 'inline': sealed members wait for their seal before anything acts on them", async (t) => {
  const d = await cluster.start({ config: { signatureCheck: 'inline' } })
  const probe = await Probe.start({ bootstrap: d.multiaddrs })
  t.teardown(() => probe.stop())
  const m = member(probe, `${d.did}/node`, 'held')
  await probe.mesh.transport.send(d.did, encodeMember(7, 0, m.payload))
  await new Promise((r) => setTimeout(r, 500))
  t.notOk(probe.received.some((e) => e.inReplyTo === m.envelope.id), 'no answer while the seal has not come')
  await probe.mesh.transport.send(d.did, encodeSeal(7, 1, signSeal(probe.key, [m.payload])))
  const answer = await probe.waitFor((e) => e.inReplyTo === m.envelope.id)
  t.same(answer.body, { ok: true, value: 'held' }, 'answered once the seal verified')
})

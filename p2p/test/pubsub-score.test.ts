// Gossipsub peer scoring as an attacker meets it (spec/pubsub.md "Peer scoring"): a stock js-libp2p node that
// delivers invalid broadcasts to a Mesh is graylisted, and then even its valid messages go unread, while an
// honest peer (even one over its rate limit) keeps delivering. The parameters themselves (P4 decay, P6 by
// address with loopback and operator prefixes exempt, P7) are checked with gossipsub's own score code.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { gossipsub } from '@libp2p/gossipsub'
import { PeerScore, validatePeerScoreParams, validatePeerScoreThresholds } from '@libp2p/gossipsub/score'
import { multiaddr } from '@multiformats/multiaddr'
import { NodeKey } from '../../identity/keys.ts'
import { encodeBroadcast, type BroadcastMessage } from '../pubsub.ts'
import { Mesh } from '../mesh.ts'
import { AddressAdmission, allowedBy, DEFAULT_ALLOW } from '../address-admission.ts'
import { pubsubScoreParams, peerScoreSummary, scoreTopic, SCORE_THRESHOLDS, SCORED_TOPICS } from '../pubsub-score.ts'
import { Topics } from '../../actors/orchestrator/protocol.ts'
import { HEARTBEAT_TOPIC } from '../../appliance/heartbeat/heartbeat.ts'
import { REVOCATION_TOPIC } from '../../appliance/daemon/revocations.ts'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`)
    await sleep(50)
  }
}

const { gossipThreshold, publishThreshold, graylistThreshold } = SCORE_THRESHOLDS
const quiet = Object.assign(() => {}, { error: () => {}, trace: () => {}, enabled: false })
/** gossipsub's own scorer (the one the router runs), with our parameters, no score cache. */
function scorer(exempt = allowedBy(DEFAULT_ALLOW)): { ps: PeerScore; score: (id: string) => number } {
  const ps = new PeerScore(pubsubScoreParams(exempt), null, { forComponent: () => quiet } as never, { scoreCacheValidityMs: 0 })
  return {
    ps,
    score: (id) => {
      ps.scoreCache.delete(id)
      return ps.score(id)
    },
  }
}

t.test('an attacker that delivers invalid broadcasts is graylisted: its valid messages then go unread; an honest peer over its rate limit keeps delivering', async (t) => {
  const topic = Topics.bidRequests
  const opts = { mdns: false, natTraversal: false, pingIntervalMs: 0 }
  const victim = await Mesh.create({ key: NodeKey.generate(), ...opts, broadcastRate: { perSecond: 5, burst: 5 } })
  await victim.start()
  const honest = await Mesh.create({ key: NodeKey.generate(), ...opts, bootstrap: victim.multiaddrs() })
  await honest.start()
  // the attacker: stock libraries only, its own key (a did:key, so its valid messages are well signed)
  const attackerKey = NodeKey.generate()
  const attacker = await createLibp2p({
    privateKey: attackerKey.toLibp2pPrivateKey(),
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify(), pubsub: gossipsub({ globalSignaturePolicy: 'StrictNoSign', allowPublishToZeroTopicPeers: true, emitSelf: false }) },
  })
  t.teardown(async () => {
    await attacker.stop()
    await honest.stop()
    await victim.stop()
  })
  const got: BroadcastMessage[] = []
  victim.broadcast.subscribe(topic, (m) => got.push(m))
  honest.broadcast.subscribe(topic, () => {})
  await attacker.dial(multiaddr(victim.multiaddrs()[0]!))
  attacker.services.pubsub.subscribe(topic)
  await until('the attacker sees the victim on the topic', () => attacker.services.pubsub.getSubscribers(topic).some((p) => p.equals(victim.host.peerId)))
  await until('the honest peer sees the victim on the topic', () => honest.host.services.pubsub.getSubscribers(topic).some((p) => p.equals(victim.host.peerId)))
  const a = attacker.peerId.toString()
  const scoreOf = (peer: string) => (victim.host.services.pubsub as unknown as { getScore(p: string): number }).getScore(peer)
  const fromAttacker = () => got.filter((m) => m.from === attackerKey.did)

  // before: the attacker's valid message is delivered like anyone's
  await attacker.services.pubsub.publish(topic, encodeBroadcast(attackerKey, topic, { n: 'hello' }))
  await until('the attacker\'s first valid message', () => fromAttacker().length === 1)
  t.equal(scoreOf(a), 0, 'the attacker starts at score 0')

  // an honest peer over its rate limit is ignored, not penalised
  for (let i = 0; i < 15; i++) await honest.broadcast.publish(topic, { burst: i })
  await until('rate-limited', () => (victim.broadcast.stats.rejected['rate-limited'] ?? 0) >= 5)

  // the attack: forged (another key claiming the honest peer's DID), tampered and junk messages
  const mallory = NodeKey.generate()
  const invalid: Uint8Array[] = []
  for (let i = 0; i < 3; i++) invalid.push(encodeBroadcast({ did: honest.did, sign: (m) => mallory.sign(m) }, topic, { forged: i }))
  for (let i = 0; i < 3; i++) {
    const m = encodeBroadcast(attackerKey, topic, { tampered: i })
    m[Buffer.from(m).indexOf('"tampered":') + 11] = 0x39 // the body's digit becomes 9: still canonical, not what was signed
    invalid.push(m)
  }
  for (let i = 0; i < 3; i++) invalid.push(randomBytes(150))
  const before = { ...victim.broadcast.stats.rejected }
  for (const m of invalid) {
    const r = await attacker.services.pubsub.publish(topic, m)
    t.ok(r.recipients.some((p) => p.equals(victim.host.peerId)), 'the invalid message went to the victim over the wire')
  }
  const score = await until('the attacker graylisted', () => (scoreOf(a) < graylistThreshold ? scoreOf(a) : false))
  t.ok(score < graylistThreshold, `the attacker's score ${score} is below the graylist threshold ${graylistThreshold}`)
  const rejected = (r: string) => (victim.broadcast.stats.rejected[r] ?? 0) - (before[r] ?? 0)
  t.equal(rejected('bad-signature'), 6, 'forged and tampered messages were rejected for their signature')
  t.equal(rejected('malformed'), 3, 'junk was rejected as malformed')
  t.equal(scoreOf(honest.peerId), 0, 'the honest peer, rate-limited and impersonated, keeps score 0')
  const summary = peerScoreSummary(victim.host.services.pubsub)
  t.equal(summary.graylisted, 1, 'the status counts one graylisted peer')
  t.equal(summary.lowest, score, 'and reports the lowest score')
  t.equal(summary.penalised[0]?.peerId, a, 'naming the attacker')

  // past gossipsub's 1 s score cache and its 1 s acceptance window for peers that had a non-negative score
  await sleep(1_500)
  const accepted = victim.broadcast.stats.accepted
  const refused = Object.values(victim.broadcast.stats.rejected).reduce((x, y) => x + y, 0)
  for (let i = 0; i < 3; i++) {
    const r = await attacker.services.pubsub.publish(topic, encodeBroadcast(attackerKey, topic, { n: `valid-${i}` }))
    t.ok(r.recipients.some((p) => p.equals(victim.host.peerId)), 'the attacker\'s valid message was sent to the victim')
  }
  await honest.broadcast.publish(topic, { n: 'still here' })
  await until('the honest peer\'s message', () => got.some((m) => (m.body as { n?: string }).n === 'still here'))
  await sleep(1_000)
  t.equal(fromAttacker().length, 1, 'no valid message from the graylisted attacker was delivered')
  t.equal(victim.broadcast.stats.accepted, accepted + 1, 'the validator saw only the honest message')
  t.equal(Object.values(victim.broadcast.stats.rejected).reduce((x, y) => x + y, 0), refused, 'the attacker\'s RPCs were dropped unread')
  t.ok(scoreOf(a) < graylistThreshold, 'the attacker stays graylisted')

  // a topic an application subscribes to through the local API is scored like ours (see the next test)
  victim.broadcast.subscribe('app/chat/v1', () => {})
  const live = victim.host.services.pubsub as unknown as { score: { params: { topics: Record<string, unknown> } } }
  t.ok(live.score.params.topics['app/chat/v1'], 'the running router scores a topic once our validator runs on it')
})

t.test('on a topic an application chose, invalid messages penalise as on ours', async (t) => {
  const { ps, score } = scorer()
  const pubsub = { getScore: score, score: ps } as never
  ps.addPeer('p')
  for (let i = 0; i < 3; i++) ps.markInvalidMessageDelivery('p', 'app/chat/v1')
  t.equal(score('p'), 0, 'an unscored topic counts nothing')
  scoreTopic(pubsub, 'app/chat/v1')
  for (let i = 0; i < 3; i++) ps.markInvalidMessageDelivery('p', 'app/chat/v1')
  t.ok(score('p') < graylistThreshold, 'once the validator runs on it, three rejections graylist')
  const params = ps.params.topics['app/chat/v1']
  scoreTopic(pubsub, 'app/chat/v1')
  t.equal(ps.params.topics['app/chat/v1'], params, 'scoring a topic twice keeps its counters\' parameters')
})

t.test('P4: three rejected messages graylist a peer; five keep it graylisted for minutes, then it recovers', async (t) => {
  const { ps, score } = scorer()
  for (const [n, check, what] of [
    [1, (s: number) => s >= gossipThreshold, 'one costs nothing observable'],
    [2, (s: number) => s < gossipThreshold && s >= publishThreshold, 'two stop gossip with the peer'],
    [3, (s: number) => s < graylistThreshold, 'three graylist it'],
  ] as const) {
    const id = `p${n}`
    ps.addPeer(id)
    for (let i = 0; i < n; i++) ps.markInvalidMessageDelivery(id, Topics.bidRequests)
    t.ok(check(score(id)), `${what} (${score(id)})`)
  }
  ps.addPeer('x')
  for (let i = 0; i < 5; i++) ps.markInvalidMessageDelivery('x', Topics.heartbeat)
  // each refreshScores() is one decay interval (1 s) of good behaviour while connected
  let s = 0
  for (; score('x') < graylistThreshold; s++) ps.refreshScores()
  t.ok(s >= 60 && s <= 300, `five rejections graylist for ${s} s`)
  for (; score('x') < gossipThreshold; s++) ps.refreshScores()
  t.ok(s >= 180 && s <= 600, `gossip resumes after ${s} s`)
  for (; score('x') < 0; s++) ps.refreshScores()
  t.ok(s <= 30 * 60, `and the score is back to 0 after ${s} s`)
})

t.test('P6: many peer ids on one IP are penalised; loopback and operator-allowed prefixes are not', async (t) => {
  const crowd = (exempt: (ip: string) => boolean, ip: string, n: number): number => {
    const { ps, score } = scorer(exempt)
    for (let i = 0; i < n; i++) {
      ps.addPeer(`id${i}`)
      ps.addIP(`id${i}`, ip)
    }
    return score('id0')
  }
  const def = allowedBy(DEFAULT_ALLOW)
  t.equal(crowd(def, '203.0.113.7', 5), 0, '5 peer ids on one IP: no penalty')
  t.ok(crowd(def, '203.0.113.7', 7) < gossipThreshold, '7: no gossip with any of them')
  t.ok(crowd(def, '203.0.113.7', 10) < graylistThreshold, '10 (what address admission lets in per minute): all graylisted')
  t.equal(crowd(def, '127.0.0.1', 50), 0, '50 on loopback: no penalty')
  t.equal(crowd(def, '::1', 50), 0, '50 on IPv6 loopback: no penalty')
  const operator = new AddressAdmission({ allow: [...DEFAULT_ALLOW, '10.1.0.0/16'] })
  const exempt = (ip: string) => operator.exempt(ip)
  t.equal(crowd(exempt, '10.1.2.3', 50), 0, '50 behind an address the operator allows: no penalty')
  t.ok(crowd(exempt, '10.2.0.1', 10) < graylistThreshold, 'outside the allowed prefix: graylisted')
})

t.test('P7: a few broken promises are free, a pattern of them stops gossip, then graylists', async (t) => {
  const { ps, score } = scorer()
  const penalised = (n: number) => {
    ps.addPeer(`b${n}`)
    ps.addPenalty(`b${n}`, n, 'broken_promise' as never)
    return score(`b${n}`)
  }
  t.equal(penalised(6), 0, '6: free')
  t.ok(penalised(12) < gossipThreshold, '12: no gossip')
  t.ok(penalised(12) >= graylistThreshold, 'but not graylisted')
  t.ok(penalised(21) < graylistThreshold, '21: graylisted')
})

t.test('the parameters are valid for gossipsub and cover every topic the nodes use', async (t) => {
  const params = pubsubScoreParams(allowedBy(DEFAULT_ALLOW))
  t.doesNotThrow(() => validatePeerScoreParams(params))
  t.doesNotThrow(() => validatePeerScoreThresholds(SCORE_THRESHOLDS))
  const alive = /ALIVE_TOPIC = '([^']+)'/.exec(readFileSync(new URL('../../appliance/node-services/orchestration.ts', import.meta.url), 'utf8'))?.[1]
  for (const topic of [...Object.values(Topics), HEARTBEAT_TOPIC, REVOCATION_TOPIC, alive ?? 'ALIVE_TOPIC not found']) {
    t.ok(SCORED_TOPICS.includes(topic), `${topic} is scored`)
  }
  for (const topic of SCORED_TOPICS) {
    const p = params.topics[topic]!
    t.ok(p.invalidMessageDeliveriesWeight < 0, `${topic}: P4 on`)
    t.equal(p.timeInMeshWeight + p.firstMessageDeliveriesWeight + p.meshMessageDeliveriesWeight + p.meshFailurePenaltyWeight, 0, `${topic}: P1-P3b off`)
  }
})

// Gossipsub peer scoring for our topics (spec/pubsub.md "Peer scoring"): gossipsub's own defences, tuned for
// meshes of 3-10 nodes. Only penalties count: a peer that delivers messages our validator rejects (P4), many
// peer ids behind one IP (P6) and broken gossip promises (P7) push a score below zero; nothing pushes it above,
// because every positive term (time in the mesh, first deliveries) is free to an attacker here (a valid message
// costs one key generation) and the mesh-delivery penalty (P3) misfires in meshes this small.
import type { GossipSub } from '@libp2p/gossipsub'
import { createPeerScoreParams, createPeerScoreThresholds, type PeerScoreParams, type PeerScoreThresholds, type TopicScoreParams } from '@libp2p/gossipsub/score'

/** How often gossipsub decays every counter. */
export const SCORE_DECAY_INTERVAL_MS = 1_000

/** The per-interval factor that takes a counter to 1% of its value in `ms`. */
export function decayToOnePercentIn(ms: number): number {
  return 0.01 ** (SCORE_DECAY_INTERVAL_MS / ms)
}

/** The topics our nodes use (actors/orchestrator/protocol.ts Topics, heartbeats, liveness, revocations, trust records). */
export const SCORED_TOPICS: readonly string[] = ['noir/bids/v1', 'noir/fence/v1', 'noir/heartbeat/v1', 'noir/alive/v1', 'noir/revocation/v1', 'noir/cert-revocation/v1', 'noir/trust/v1']

export const SCORE_THRESHOLDS: PeerScoreThresholds = createPeerScoreThresholds({
  // below: no gossip (IHAVE/IWANT) to or from the peer
  gossipThreshold: -10,
  // below: our own messages are not published to the peer
  publishThreshold: -50,
  // below: every RPC from the peer is dropped unread, valid messages included
  graylistThreshold: -80,
  // no score is ever positive (see above), so peer exchange is never accepted: peers come from bootstrap,
  // the DHT and mDNS, never from a PRUNE an attacker wrote
  acceptPXThreshold: 10,
  // grafts better peers only when the median mesh peer is penalised
  opportunisticGraftThreshold: 0,
})

/** One topic's parameters: only P4 (invalid messages) counts. */
export const TOPIC_SCORE: TopicScoreParams = {
  topicWeight: 1,
  // P1 time in mesh: off (free to an attacker who just stays)
  timeInMeshWeight: 0,
  timeInMeshQuantum: 1_000,
  timeInMeshCap: 1,
  // P2 first deliveries: off (a valid message costs an attacker one key generation)
  firstMessageDeliveriesWeight: 0,
  firstMessageDeliveriesDecay: 0.5,
  firstMessageDeliveriesCap: 1,
  // P3 / P3b mesh delivery deficit: off (a 3-10 node mesh on a quiet topic would penalise honest peers)
  meshMessageDeliveriesWeight: 0,
  meshMessageDeliveriesDecay: 0.5,
  meshMessageDeliveriesCap: 1,
  meshMessageDeliveriesThreshold: 1,
  meshMessageDeliveriesWindow: 10,
  meshMessageDeliveriesActivation: 5_000,
  meshFailurePenaltyWeight: 0,
  meshFailurePenaltyDecay: 0.5,
  // P4: -10 x count²: 1 rejected message -10 (no effect), 2 -40 (no gossip), 3 -90 (graylisted). Honest relays never
  // hand on what we reject (every Reject check is deterministic; late or over-budget messages are Ignored).
  invalidMessageDeliveriesWeight: -10,
  // the count falls to 1% in 15 min: 5 rejected messages graylist a peer for ~2 min, gossip returns after ~5
  invalidMessageDeliveriesDecay: decayToOnePercentIn(15 * 60_000),
}

/**
 * gossipsub looks a peer's IP up in `IPColocationFactorWhitelist` with `has(ip)` and nothing else (exact
 * strings); this set answers for whole prefixes (`127.0.0.0/8`, an operator's `10.1.0.0/16`).
 */
class PrefixWhitelist extends Set<string> {
  readonly #exempt: (ip: string) => boolean

  constructor(exempt: (ip: string) => boolean) {
    super()
    this.#exempt = exempt
  }

  override has(ip: string): boolean {
    return super.has(ip) || this.#exempt(ip)
  }
}

/**
 * The score parameters for a node. `exempt(ip)`: addresses whose peer ids are not counted for IP colocation
 * (loopback and the operator's allowAddresses, the same list as address admission: p2p/address-admission.ts).
 */
export function pubsubScoreParams(exempt: (ip: string) => boolean): PeerScoreParams {
  return createPeerScoreParams({
    topics: Object.fromEntries(SCORED_TOPICS.map((t) => [t, { ...TOPIC_SCORE }])),
    // no positive topic terms, so no cap is needed; kept at gossipsub's default
    topicScoreCap: 10,
    // P5 application score: unused
    appSpecificScore: () => 0,
    appSpecificWeight: 0,
    // P6: -5 x (peer ids on one IP - 5)², on each of them: 6 ids -5, 7 -20 (no gossip), 9 -80, 10 -125
    // (all graylisted); address admission lets one address bring at most 10 new ids a minute
    IPColocationFactorWeight: -5,
    IPColocationFactorThreshold: 5,
    IPColocationFactorWhitelist: new PrefixWhitelist(exempt),
    // P7: -0.4 x (penalties - 6)²: 6 broken promises / early re-grafts are free (honest peers break a few
    // under load), 12 -14 (no gossip), 21 -90 (graylisted); falls to 1% in 10 min
    behaviourPenaltyWeight: -0.4,
    behaviourPenaltyThreshold: 6,
    behaviourPenaltyDecay: decayToOnePercentIn(10 * 60_000),
    decayInterval: SCORE_DECAY_INTERVAL_MS,
    decayToZero: 0.01,
    // a disconnected peer's counters are kept (and not decayed) for an hour: reconnecting resets nothing
    retainScore: 60 * 60_000,
  })
}

/** What the GossipSub instance has beyond its declared interface (@libp2p/gossipsub 17: the class's public members). */
interface ScoringGossipSub {
  getScore(peerId: string): number
  score?: { params?: PeerScoreParams; addPenalty?(id: string, penalty: number, label: string): void }
}

function scoring(pubsub: GossipSub): ScoringGossipSub | undefined {
  const s = pubsub as unknown as Partial<ScoringGossipSub>
  return typeof s.getScore === 'function' ? (s as ScoringGossipSub) : undefined
}

/**
 * Messages a neighbour sends over its budget (p2p/pubsub.ts, 400/s, burst 1,000) per behaviour penalty
 * (P7): gossipsub keeps a record of every message it sees for 2 minutes (~700 bytes each, before any
 * validator runs), so a neighbour that floods must lose its standing, not only its messages (it is also hung
 * up on at FLOOD_HANGUP over; the standing follows its peer id if it comes back). An honest relay briefly
 * over budget loses a little standing, recovered within minutes.
 */
export const OVER_BUDGET_PER_PENALTY = 100

/** One behaviour penalty (P7) for `peerId`. */
export function penalise(pubsub: GossipSub, peerId: string): void {
  scoring(pubsub)?.score?.addPenalty?.(peerId, 1, 'over_budget')
}

/**
 * Scores `topic` like our own topics (a topic an application uses through the local API): invalid messages
 * there penalise as on ours. Scored topics are never removed (gossipsub keeps per-topic counters that refer
 * to them); a node scores only topics it validates.
 */
export function scoreTopic(pubsub: GossipSub, topic: string): void {
  const topics = scoring(pubsub)?.score?.params?.topics
  if (topics && !(topic in topics)) topics[topic] = { ...TOPIC_SCORE }
}

export interface PeerScoreSummary {
  /** Peers gossipsub knows. */
  peers: number
  /** Below graylistThreshold: everything they send is dropped. */
  graylisted: number
  /** Below gossipThreshold: no gossip with them. */
  belowGossip: number
  /** The lowest score (null with no peers). */
  lowest: number | null
  /** The (at most 5) lowest-scored peers below zero, lowest first. */
  penalised: Array<{ peerId: string; score: number }>
  graylistThreshold: number
}

/** Each peer's gossipsub score, summed up for the status. */
export function peerScoreSummary(pubsub: GossipSub, thresholds: PeerScoreThresholds = SCORE_THRESHOLDS): PeerScoreSummary {
  const s = scoring(pubsub)
  const scores = pubsub.getPeers().map((p) => ({ peerId: p.toString(), score: s?.getScore(p.toString()) ?? 0 }))
  scores.sort((a, b) => a.score - b.score)
  return {
    peers: scores.length,
    graylisted: scores.filter((x) => x.score < thresholds.graylistThreshold).length,
    belowGossip: scores.filter((x) => x.score < thresholds.gossipThreshold).length,
    lowest: scores[0]?.score ?? null,
    penalised: scores.filter((x) => x.score < 0).slice(0, 5),
    graylistThreshold: thresholds.graylistThreshold,
  }
}

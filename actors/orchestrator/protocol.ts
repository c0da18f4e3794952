// Names on the wire for orchestration (spec/orchestration.md): actor paths, behaviors and pubsub topics.
export const MARKET_ACTOR = 'market'
export const ORCHESTRATOR_ACTOR = 'orchestrator'

export const MarketBehavior = {
  bid: '/noir/market/bid',
  propose: '/noir/market/propose',
  start: '/noir/market/start',
  stop: '/noir/market/stop',
  logs: '/noir/market/logs',
  fence: '/noir/market/fence',
  /** A migration: the consumer asks that a contract's instance be quiesced and its state archived: `{ contractId }` -> `{ digest, bytes }`. */
  checkpoint: '/noir/market/checkpoint',
  /**
   * A migration's handover: the consumer asks that a reserved contract's instance be readied ahead of its
   * start (an SDK actor's sandbox spawned with its bundle loaded, its actor not started): `{ contractId }` ->
   * `{ warm: boolean }` (false: nothing to ready, the start will be a cold one).
   */
  prewarm: '/noir/market/prewarm',
  /** A standby orchestrator takes a consumer's deployment over: Handover (orchestrator-authority.ts). */
  handover: '/noir/market/handover',
  /** The consumer renews the leases of its contracts on this node, one batch per period: `{ contracts: [id] }` -> RenewAnswer. */
  renew: '/noir/market/renew',
  /** A restarted orchestrator asks for the live contracts it acts for: `{}` -> `{ contracts: [ContractLeaseView] }`. */
  contractsOfConsumer: '/noir/market/contracts-of-consumer',
  /** Local only: a fence this node heard on the fence topic; `from` is the verified signer. */
  fenceHeard: '/noir/market/fence-heard',
  /** Local only: the provider takes up a stored contract (after a restart): its actor is spawned from the record. */
  adopt: '/noir/market/adopt',
  /** Local only: a status of a contract's instance, from the runner, for the contract's actor. */
  instance: '/noir/market/instance',
  /** Local only: a standby contract gives its hold back (a replica of its deployment is being reserved here). */
  promote: '/noir/market/promote',
} as const
export type MarketBehaviorPath = (typeof MarketBehavior)[keyof typeof MarketBehavior]

export const OrchestratorBehavior = {
  /** A node answering a broadcast bid request: `{ bid }` or `{ decline }`. */
  bid: '/noir/orchestrator/bid',
  /** A provider reporting an instance's state change (ReplicaReport). */
  report: '/noir/orchestrator/report',
  /** A provider's signed usage record (actors/usage/record.ts) -> the record answered: countersigned or disputed. */
  usage: '/noir/orchestrator/usage',
  /** A provider asking its consumer to cosign a checkpoint holding its receipts (actors/usage/witness.ts) -> a Cosignature. */
  cosign: '/noir/orchestrator/cosign',
  /** Local only: the failure detector convicted a node (NodeLost). */
  nodeLost: '/noir/orchestrator/node-lost',
  /** From the orchestrating node to its standby: a deployment's latest snapshot, and the capability. */
  replica: '/noir/orchestrator/replica',
  /** Asked by a restarted orchestrating node of its standby: which of its deployments the standby took over. */
  takenOver: '/noir/orchestrator/taken-over',
} as const

export const Topics = {
  bidRequests: 'noir/bids/v1',
  fences: 'noir/fence/v1',
  heartbeat: 'noir/heartbeat/v1',
} as const

// What the checker reads: the real state after a schedule (containers by Docker label, each live daemon's
// deployments and contracts), the history of acknowledged operations, and the double runs and fault windows
// seen while it ran. Plain data, so the checker (invariants.ts) is a pure function, unit-tested on
// synthetic observations.

export interface ContainerSeen {
  id: string
  /** Labels `noir.node`, `noir.contract`, `noir.slot`, and the watchdog's grace (ms). */
  node: string
  contract: string
  slot: string
  graceMs: number
}

export interface ReplicaSeen { slot: string; node: string | null; contractId: string | null; state: string; epoch: number }

export interface DeploymentSeen {
  id: string
  phase: string
  reason: string | null
  desired: number
  replicas: ReplicaSeen[]
  standby: { node: string; contractId: string } | null
  orchestratorEpoch: number
  takenOverFrom: string | null
}

/** A contract as its provider lists it (GET /v1/contracts today; a provider listing of contracts can replace it). */
export interface ContractSeen {
  id: string
  side: 'consumer' | 'provider'
  status: string
  deploymentId: string
  slot: string
  role: 'replica' | 'standby'
  consumer: string
  provider: string
  startsAt: number
  endsAt: number
  cpu: number
}

export interface NodeSeen {
  index: number
  did: string
  /** False: down (killed and not restarted); nothing else is read from it. */
  live: boolean
  deployments: DeploymentSeen[]
  contracts: ContractSeen[]
  /** cpu the node's capacity counts as used (reserved or committed). */
  usedCpu: number | null
}

/** An acknowledged create (the API answered with the deployment) and whether its stop was acknowledged. */
export interface AckedCreate {
  key: string
  id: string
  via: number
  at: number
  stopAckedAt: number | null
  /**
   * When a stop was sent whose answer never came (a time-out, or its orchestrator killed meanwhile): an
   * indeterminate operation in Jepsen's sense, so the deployment may be stopped or not; absent when none was.
   */
  stopSentAt?: number | null
  /** The id a create retried with the same key after the run answered (must be `id`), or null if not retried. */
  replayedId: string | null
}

/** A time when two or more containers of one slot ran at once (sampled). */
export interface DoubleRun { slot: string; nodes: string[]; graceMs: number; from: number; to: number }

/** A network fault's window: from its start to its heal, with the nodes it touched. */
export interface FaultWindow { kind: 'cut' | 'partition' | 'delay'; nodes: string[]; from: number; to: number }

export interface Observation {
  at: number
  containers: ContainerSeen[]
  nodes: NodeSeen[]
  creates: AckedCreate[]
  doubleRuns: DoubleRun[]
  faultWindows: FaultWindow[]
}

// Reads the real state for the checker: running containers by Docker label on this host, and each live
// daemon's deployments, contracts and used capacity through its local API. The contract listing is a
// parameter (`ContractSource`): today GET /v1/contracts; a provider's own listing can be plugged in.
// DoubleRunSampler watches Docker while a schedule runs and records every time a slot runs twice.
import Docker from 'dockerode'
import { LABEL_GRACE } from '../appliance/watchdog/lease.ts'
import type { ApiClient } from '../cli/api-client.ts'
import type { ContainerSeen, ContractSeen, DeploymentSeen, DoubleRun, NodeSeen } from './observation.ts'

/** Lists a node's contracts (both sides). */
export type ContractSource = (api: ApiClient, signal: AbortSignal) => Promise<ContractSeen[]>

interface ContractSummary {
  id: string; side: 'consumer' | 'provider'; status: string; deploymentId: string; slot: string; role: 'replica' | 'standby'
  consumer: string; provider: string; startsAt: number; endsAt: number; resources: { cpu: number }
}

export const apiContracts: ContractSource = async (api, signal) => {
  const r = await api.get<{ contracts: ContractSummary[] }>('/v1/contracts', { signal })
  return r.contracts.map((c) => ({
    id: c.id, side: c.side, status: c.status, deploymentId: c.deploymentId, slot: c.slot, role: c.role, consumer: c.consumer,
    provider: c.provider, startsAt: c.startsAt, endsAt: c.endsAt, cpu: c.resources.cpu,
  }))
}

const docker = new Docker()

/** Running containers of a contract slot that belong to one of `dids` (labels `noir.node`, `noir.contract`, `noir.slot`). */
export async function runningContainers(dids: readonly string[]): Promise<ContainerSeen[]> {
  const list = await docker.listContainers({ filters: { label: ['noir.slot'], status: ['running'] } })
  return list
    .filter((c) => dids.includes(c.Labels['noir.node'] ?? ''))
    .map((c) => ({ id: c.Id, node: c.Labels['noir.node']!, contract: c.Labels['noir.contract'] ?? '', slot: c.Labels['noir.slot']!, graceMs: Number(c.Labels[LABEL_GRACE]) || 1_000 }))
}

export interface NodeHandleLike { did: string; live: boolean; api: ApiClient | null }

/** One node as the checker sees it; a live node whose API does not answer within 5 s (3 tries) throws. */
export async function observeNode(index: number, n: NodeHandleLike, contracts: ContractSource = apiContracts): Promise<NodeSeen> {
  if (!n.live || !n.api) return { index, did: n.did, live: false, deployments: [], contracts: [], usedCpu: null }
  const api = n.api
  let last: unknown
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const signal = AbortSignal.timeout(5_000)
      const [d, c, info] = await Promise.all([
        api.get<{ deployments: DeploymentSeen[] }>('/v1/deployments', { signal }),
        contracts(api, signal),
        api.get<{ capacity: { used: { cpu: number } } }>('/v1/node/info', { signal }),
      ])
      const deployments = d.deployments.map((v) => ({
        id: v.id, phase: v.phase, reason: v.reason, desired: v.desired, standby: v.standby, orchestratorEpoch: v.orchestratorEpoch ?? 1, takenOverFrom: v.takenOverFrom ?? null,
        replicas: v.replicas.map((r) => ({ slot: r.slot, node: r.node, contractId: r.contractId, state: r.state, epoch: r.epoch })),
      }))
      return { index, did: n.did, live: true, deployments, contracts: c, usedCpu: info.capacity.used.cpu }
    } catch (err) {
      last = err
      await new Promise((r) => setTimeout(r, 300))
    }
  }
  throw new Error(`node ${index} (${n.did.slice(-6)}) does not answer its API: ${(last as Error).message}`)
}

/** Samples Docker every `everyMs` and keeps each stretch of time a slot ran on two or more nodes at once. */
export class DoubleRunSampler {
  readonly runs: DoubleRun[] = []
  readonly #dids: readonly string[]
  readonly #open = new Map<string, DoubleRun>()
  #timer: NodeJS.Timeout | undefined
  #busy = false

  constructor(dids: readonly string[]) {
    this.#dids = dids
  }

  start(everyMs = 250): this {
    this.#timer = setInterval(() => void this.sample(), everyMs)
    return this
  }

  async sample(): Promise<void> {
    if (this.#busy) return
    this.#busy = true
    try {
      const now = Date.now()
      const bySlot = new Map<string, ContainerSeen[]>()
      for (const c of await runningContainers(this.#dids)) bySlot.set(c.slot, [...(bySlot.get(c.slot) ?? []), c])
      for (const [slot, run] of this.#open) {
        if ((bySlot.get(slot)?.length ?? 0) > 1) run.to = now
        else this.#open.delete(slot)
      }
      for (const [slot, cs] of bySlot) {
        if (cs.length < 2 || this.#open.has(slot)) continue
        const run: DoubleRun = { slot, nodes: cs.map((c) => c.node), graceMs: Math.max(...cs.map((c) => c.graceMs)), from: now, to: now }
        this.#open.set(slot, run)
        this.runs.push(run)
      }
    } catch {
      // Docker busy: the next sample tries again
    } finally {
      this.#busy = false
    }
  }

  stop(): void {
    clearInterval(this.#timer)
  }
}

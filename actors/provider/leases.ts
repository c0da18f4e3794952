// Leases on the provider side (spec/contracts.md "Leases" and "Reconciliation"): the consumer's batched
// renewal (`/noir/market/renew`), the question a restarted orchestrator asks (`/noir/market/contracts-of-consumer`)
// and the lease view `noir node contracts` shows. Who may renew or ask is the OrchestratorAuthority's answer:
// the contract's consumer, or the standby orchestrator that took its deployment over. Each contract's own
// actor keeps its lease timer (contract-machine.ts); this module only checks, routes and reports.
import type { ContractStatus, ContractStore, StoredContract } from '../contracts/store.ts'
import { HandedOverError, InvalidTermsError, NotContractConsumerError, type OrchestrationError } from '../errors.ts'
import { isLive } from './contract-machine.ts'
import type { OrchestratorAuthority } from './orchestrator-authority.ts'

/** The most contract ids one renewal may carry (a consumer with more sends several). */
export const MAX_RENEWAL_BATCH = 1000

/** A contract the provider no longer holds live: the consumer's orchestrator repairs the slot. */
export interface GoneContract {
  contractId: string
  /** Its final status, or `unknown` when this node has no record of it. */
  status: ContractStatus | 'unknown'
  note?: string
  instanceState?: string
  exitCode?: number | null
}

/** A renewal refused for one contract: the typed error, as it crosses the wire. */
export interface RefusedRenewal {
  contractId: string
  error: { name: string; code: string; message: string }
}

export interface RenewAnswer {
  renewed: string[]
  gone: GoneContract[]
  refused: RefusedRenewal[]
}

/** The lease of a live contract as its actor holds it. */
export interface LeaseState {
  leaseMs: number
  /** How long ago the last renewal arrived (or the actor was spawned), on the provider's monotonic clock. */
  renewedAgoMs: number
}

/** One live contract as `noir node contracts` and the reconciliation answer show it. */
export interface ContractLeaseView {
  contractId: string
  consumer: string
  deploymentId: string
  slot: string
  epoch: number
  role: 'replica' | 'standby'
  status: ContractStatus
  instanceState: string | null
  leaseMs: number | null
  lastRenewalAgeMs: number | null
  leaseRemainingMs: number | null
  /** More than half the lease passed without a renewal: the consumer has gone silent (renewals come every third). */
  late: boolean
}

export interface LeaseDeskDeps {
  contracts: Pick<ContractStore, 'get' | 'list'>
  authority: Pick<OrchestratorAuthority, 'acts'>
  /** Tells the contract's actor (spawned from its record if it has none) that its lease was renewed. */
  renew(record: StoredContract): void
  /** The lease its actor holds, if it has one running. */
  lease(contractId: string): LeaseState | undefined
}

const wireError = (e: OrchestrationError): RefusedRenewal['error'] => ({ name: e.name, code: e.code, message: e.message })

export function leaseView(s: StoredContract, lease: LeaseState | undefined): ContractLeaseView {
  const t = s.contract.terms
  const remaining = lease ? Math.max(0, lease.leaseMs - lease.renewedAgoMs) : null
  return {
    contractId: t.id, consumer: t.consumer, deploymentId: t.deploymentId, slot: t.slot, epoch: t.epoch, role: t.role, status: s.status,
    instanceState: s.instanceState ?? null, leaseMs: lease?.leaseMs ?? null, lastRenewalAgeMs: lease ? Math.round(lease.renewedAgoMs) : null,
    leaseRemainingMs: remaining === null ? null : Math.round(remaining), late: lease ? lease.renewedAgoMs > lease.leaseMs / 2 : false,
  }
}

export class LeaseDesk {
  readonly #d: LeaseDeskDeps

  constructor(deps: LeaseDeskDeps) {
    this.#d = deps
  }

  /**
   * A renewal `{ contracts: [id] }` from `from`: each live contract `from` acts for is renewed; a contract
   * someone else acts for is refused (NotContractConsumerError; HandedOverError for a consumer whose
   * deployment its standby took over) and left untouched; one this node no longer holds live is listed as gone.
   */
  async renew(body: unknown, from: string): Promise<RenewAnswer> {
    const ids = (body as { contracts?: unknown } | null)?.contracts
    if (!Array.isArray(ids) || ids.length > MAX_RENEWAL_BATCH || !ids.every((x) => typeof x === 'string' && x.length > 0 && x.length <= 128)) {
      throw new InvalidTermsError(`renew: { contracts: [contract id] } with at most ${MAX_RENEWAL_BATCH} ids required`)
    }
    const out: RenewAnswer = { renewed: [], gone: [], refused: [] }
    for (const id of new Set(ids as string[])) {
      const s = await this.#d.contracts.get(id, 'provider')
      if (!s) {
        out.gone.push({ contractId: id, status: 'unknown' })
        continue
      }
      const t = s.contract.terms
      if (!(await this.#d.authority.acts(t.consumer, t.deploymentId, from))) {
        const e = from === t.consumer
          ? new HandedOverError(`deployment ${t.deploymentId} of contract ${id} is orchestrated by its standby now`)
          : new NotContractConsumerError(`contract ${id} is not yours to renew`)
        out.refused.push({ contractId: id, error: wireError(e) })
        continue
      }
      if (!isLive(s.status)) {
        out.gone.push({
          contractId: id, status: s.status, ...(s.note ? { note: s.note } : {}), ...(s.instanceState ? { instanceState: s.instanceState } : {}),
          ...(s.exitCode !== undefined ? { exitCode: s.exitCode } : {}),
        })
        continue
      }
      this.#d.renew(s)
      out.renewed.push(id)
    }
    return out
  }

  /**
   * The live contracts `from` acts for (as their consumer, or as the standby orchestrator that took their
   * deployment over): what a restarted orchestrator reconciles. Asking for another consumer's is refused.
   */
  async contractsOf(body: unknown, from: string): Promise<{ contracts: ContractLeaseView[] }> {
    const named = (body as { consumer?: unknown } | null)?.consumer
    if (named !== undefined && named !== from) throw new NotContractConsumerError('only the contracts of the asking orchestrator are answered')
    const out: ContractLeaseView[] = []
    for (const s of await this.#d.contracts.list()) {
      const t = s.contract.terms
      if (s.side !== 'provider' || !isLive(s.status)) continue
      // the consumer's own (not those its standby took over), or those of a deployment `from` took over
      if (!(await this.#d.authority.acts(t.consumer, t.deploymentId, from))) continue
      out.push(leaseView(s, this.#d.lease(t.id)))
    }
    return { contracts: out }
  }
}

/** Every live contract this node holds as a provider, with its lease: `noir node contracts`. */
export async function leaseViews(contracts: Pick<ContractStore, 'list'>, lease: (contractId: string) => LeaseState | undefined): Promise<ContractLeaseView[]> {
  const out: ContractLeaseView[] = []
  for (const s of await contracts.list()) if (s.side === 'provider' && isLive(s.status)) out.push(leaseView(s, lease(s.contract.terms.id)))
  return out
}

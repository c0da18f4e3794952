// Who may act for a consumer's deployment on this provider: the consumer itself, until a standby
// orchestrator takes the deployment over. A takeover (`/noir/market/handover`) carries a capability the
// consumer's node issued to its standby (ability `/noir/orchestrate`, spec/orchestration.md "Standby
// orchestrator") and an orchestrator epoch above the one held: from then on only that standby may start,
// stop, fence or read the deployment's contracts, the consumer's own operations and proposals for it are
// refused with HandedOverError, and instance reports go to the standby. Epochs only grow, and are kept in
// the contract store's epoch map, so a takeover survives a restart of the provider.
import { CapabilityVerifier } from '../../identity/capabilities.ts'
import type { ContractStore } from '../contracts/store.ts'
import { HandedOverError, InvalidTermsError, NotStandbyError, StaleEpochError } from '../errors.ts'

export const ORCHESTRATE_ABILITY = '/noir/orchestrate'

export interface Handover {
  /** The deployment's consumer (the orchestrator that created it). */
  consumer: string
  deploymentId: string
  /** The orchestrator epoch the standby takes over at (the consumer's own is 1). */
  epoch: number
  /** The capability chain the consumer issued to the standby (ability /noir/orchestrate). */
  token: string
}

const epochKey = (consumer: string, deploymentId: string): string => `orchestrator ${consumer} ${deploymentId}`
const holderKey = (consumer: string, deploymentId: string, did: string): string => `orchestrator-by ${consumer} ${deploymentId} ${did}`

export class OrchestratorAuthority {
  readonly #store: ContractStore
  readonly #now: () => number

  constructor(store: ContractStore, now: () => number = Date.now) {
    this.#store = store
    this.#now = now
  }

  /** Whether `fromDid` acts for the consumer's deployment now. */
  async acts(consumer: string, deploymentId: string, fromDid: string): Promise<boolean> {
    const current = await this.#store.epoch(epochKey(consumer, deploymentId))
    if (current === 0) return fromDid === consumer
    return (await this.#store.epoch(holderKey(consumer, deploymentId, fromDid))) === current
  }

  /** Throws HandedOverError when the consumer proposes for a deployment its standby took over. */
  async checkProposal(consumer: string, deploymentId: string): Promise<void> {
    const current = await this.#store.epoch(epochKey(consumer, deploymentId))
    if (current > 0 && !(await this.acts(consumer, deploymentId, consumer))) {
      throw new HandedOverError(`deployment ${deploymentId} of ${consumer} is orchestrated by its standby now (orchestrator epoch ${current})`)
    }
  }

  /** Where reports about the consumer's deployment go: the acting orchestrator. */
  async reportTo(consumer: string, deploymentId: string): Promise<string> {
    const current = await this.#store.epoch(epochKey(consumer, deploymentId))
    if (current === 0) return consumer
    return (await this.#store.note(`holder ${consumer} ${deploymentId} ${current}`)) ?? consumer
  }

  /** Records a takeover by `fromDid`; answers the epoch held. Checks the capability before anything is written. */
  async handover(h: Handover, fromDid: string): Promise<{ epoch: number }> {
    if (typeof h?.consumer !== 'string' || typeof h.deploymentId !== 'string' || h.deploymentId.length === 0 || h.deploymentId.length > 256) {
      throw new InvalidTermsError('handover: { consumer, deploymentId, epoch, token } required')
    }
    if (!Number.isSafeInteger(h.epoch) || h.epoch < 2 || h.epoch > 2 ** 31 - 1) throw new InvalidTermsError('handover: epoch must be a whole number from 2')
    if (typeof h.token !== 'string') throw new InvalidTermsError('handover: token required')
    // The chain must be rooted at the consumer and name the sender: the consumer's node chose this standby.
    const verifier = new CapabilityVerifier({ trustedRoots: [h.consumer], now: this.#now })
    try {
      await verifier.verify(h.token, { audience: fromDid, ability: ORCHESTRATE_ABILITY })
    } catch (err) {
      throw new NotStandbyError(`handover refused: ${(err as Error).name}: ${(err as Error).message}`)
    }
    const key = epochKey(h.consumer, h.deploymentId)
    const current = await this.#store.epoch(key)
    if (current >= h.epoch && !(await this.acts(h.consumer, h.deploymentId, fromDid))) {
      throw new StaleEpochError(`deployment ${h.deploymentId} is at orchestrator epoch ${current}`, { held: current, epoch: h.epoch })
    }
    await this.#store.raiseEpoch(holderKey(h.consumer, h.deploymentId, fromDid), h.epoch)
    const held = await this.#store.raiseEpoch(key, h.epoch)
    if (held === h.epoch) await this.#store.putNote(`holder ${h.consumer} ${h.deploymentId} ${held}`, fromDid)
    return { epoch: held }
  }
}

// What a contract actor does to the world (ContractSteps), from the Provider's ports: the capacity (two-phase
// reservations), the runner, the contract store and the node's key. Each step writes the contract's record
// (the durable truth; spec/contracts.md "Storage") and reports what it wrote; the machine (contract-machine.ts)
// decides what that means.
import type { NodeKey } from '../../identity/keys.ts'
import { countersign, type Contract, type ContractTerms } from '../contracts/contract.ts'
import type { ContractStore, StoredContract } from '../contracts/store.ts'
import { ReservationFailedError, StaleEpochError, StopFailedError, WorkloadStartError } from '../errors.ts'
import type { Workload } from '../workload/workload.ts'
import type { ContractSteps, ReplicaReport, StepOutcome } from './contract-machine.ts'
import type { CapacityPort, InstanceStatus, WorkloadRunner } from './ports.ts'

export interface ContractPorts {
  key: NodeKey
  capacity: CapacityPort
  runner: WorkloadRunner
  contracts: ContractStore
  reservationTtlMs: number
  now(): number
  /** The monotonic clock leases are measured on. */
  leaseClock(): number
  /** The lease of a contract whose terms name none (made before leases). */
  defaultLeaseMs: number
  report(consumer: string, r: ReplicaReport): void
  /** The contract's instance was stopped by a stop of the contract (no status follows it): metering ends here. */
  instanceStopped?(contractId: string, at: number): void
  /** Asks the consumer's standby contracts of the deployment to give their holds back (before a replica of it reserves). */
  handOverStandby(terms: ContractTerms): Promise<void>
  /** From now on the instance's statuses go to the contract's actor. */
  follow(instanceId: string, contractId: string): void
  unfollow(instanceId: string): void
  log(msg: string, fields?: Record<string, unknown>): void
  /** Throws HandedOverError when the consumer proposes for a deployment its standby orchestrator took over. */
  checkOrchestrator(consumer: string, deploymentId: string): Promise<void>
}

/** The highest epoch a slot may reach: far beyond any real number of re-placements, far below 2^53. */
export const MAX_EPOCH = 2 ** 31 - 1
export const validEpoch = (e: unknown): e is number => Number.isSafeInteger(e) && (e as number) >= 1 && (e as number) <= MAX_EPOCH
/** Where a slot's epoch is kept: per consumer, so one consumer's slot names never touch another's. */
export const epochKey = (consumer: string, slot: string): string => `${consumer} ${slot}`

export function contractSteps(p: ContractPorts): ContractSteps {
  const did = p.key.did
  const write = async (r: StoredContract, patch: Partial<StoredContract>): Promise<StoredContract> => {
    const next: StoredContract = { ...r, ...patch, updatedAt: p.now() }
    await p.contracts.put(next)
    return next
  }
  /** Frees a contract's hold; a failure leaves capacity held, so it is logged with the reason (not fatal). */
  const release = async (r: StoredContract, why: string): Promise<void> => {
    if (!r.reservationId) return
    try {
      await p.capacity.release(r.reservationId)
    } catch (err) {
      const e = err as Error
      p.log('reservation not released', { contractId: r.contract.terms.id, reservationId: r.reservationId, why, error: e.name, message: e.message })
    }
  }

  return {
    now: () => p.now(),
    leaseClock: () => p.leaseClock(),
    defaultLeaseMs: p.defaultLeaseMs,
    reservationTtlMs: p.reservationTtlMs,

    async reserve({ contract, workload }: { contract: Contract; workload: Workload }): Promise<StoredContract> {
      const terms = contract.terms
      await p.checkOrchestrator(terms.consumer, terms.deploymentId)
      // Epochs are kept per consumer and slot: nobody can fence a slot that belongs to someone else. Nothing is
      // written yet: a proposal that fails below leaves no record behind (the store grows only with contracts).
      const slotKey = epochKey(terms.consumer, terms.slot)
      const current = await p.contracts.epoch(slotKey)
      if (current > terms.epoch) throw new StaleEpochError(`slot ${terms.slot} is at epoch ${current}, contract has ${terms.epoch}`, { held: current, epoch: terms.epoch })
      // Promotion of a standby: the hold made for this deployment's standby is given back first. Only the
      // protected lane has standbys (spec/orchestration.md): a best-effort proposal skips the scan of the store.
      if (terms.role === 'replica' && terms.lane === 'protected') await p.handOverStandby(terms)
      let reservationId: string
      try {
        reservationId = (await p.capacity.reserve({ id: terms.id, resources: workload.resources, ttlMs: p.reservationTtlMs, ports: workload.ports.length })).reservationId
      } catch (err) {
        const e = err as Error
        throw new ReservationFailedError(`node ${did} could not reserve: ${e.name}: ${e.message}`, { cause: e.name })
      }
      try {
        const held = await p.contracts.raiseEpoch(slotKey, terms.epoch)
        // A newer proposal for the same slot won the race while this one reserved.
        if (held > terms.epoch) throw new StaleEpochError(`slot ${terms.slot} is at epoch ${held}, contract has ${terms.epoch}`, { held, epoch: terms.epoch })
        const signed = countersign(p.key, contract)
        if (terms.role === 'standby') await p.capacity.commit(reservationId)
        const record: StoredContract = { contract: signed, side: 'provider', status: terms.role === 'standby' ? 'standby' : 'reserved', updatedAt: p.now(), workload, reservationId }
        await p.contracts.put(record)
        return record
      } catch (err) {
        await p.capacity.release(reservationId).catch(() => undefined)
        throw err
      }
    },

    async start(r: StoredContract): Promise<StepOutcome> {
      const t = r.contract.terms
      if (t.epoch < (await p.contracts.epoch(epochKey(t.consumer, t.slot)))) {
        // Placed again elsewhere before it started: nothing runs, so nothing stays held.
        await release(r, 'superseded before the start')
        return { record: await write(r, { status: 'superseded', note: 'superseded before the start' }), error: new StaleEpochError(`contract ${t.id} was superseded`) }
      }
      try {
        await p.capacity.commit(r.reservationId!)
      } catch (err) {
        const e = err as Error
        return {
          record: await write(r, { status: 'refused', note: `reservation lost: ${e.message}` }),
          error: new ReservationFailedError(`reservation for ${t.id} is gone (expired?): ${e.message}`),
        }
      }
      let instanceId: string
      try {
        ;({ instanceId } = await p.runner.start({ contractId: t.id, slot: t.slot, workload: r.workload!, reservationId: r.reservationId!, consumer: t.consumer, ...(r.restore ? { restore: r.restore } : {}) }))
      } catch (err) {
        // Nothing runs, so nothing stays held: the reservation goes back at once and the consumer learns why.
        const e = err as Error
        const why = `start failed: ${e.name}: ${e.message}`
        await release(r, why)
        return {
          record: await write(r, { status: 'refused', note: why }),
          error: new WorkloadStartError(`node ${did} could not start contract ${t.id}: ${e.name}: ${e.message}`, { cause: e.name }),
        }
      }
      // Followed before anything else can happen: the runner reports the instance from now on.
      p.follow(instanceId, t.id)
      return { record: await write(r, { status: 'active', instanceId, instanceState: 'running' }) }
    },

    async stop({ record: r, as, note }): Promise<StepOutcome> {
      const t = r.contract.terms
      if (r.instanceId) {
        try {
          await p.runner.stop(r.instanceId)
        } catch (err) {
          const e = err as Error
          p.log('instance did not stop', { contractId: t.id, instanceId: r.instanceId, error: e.name, message: e.message })
          return {
            record: await write(r, { note: `stop failed: ${e.name}: ${e.message}` }),
            error: new StopFailedError(`node ${did} could not stop instance ${r.instanceId} of contract ${t.id}: ${e.name}: ${e.message}`, { contractId: t.id, instanceId: r.instanceId, cause: e.name }),
          }
        }
      }
      // the runner reports nothing of an instance its contract stopped: the end is told here (the final usage record)
      if (r.instanceId) p.instanceStopped?.(t.id, p.now())
      await release(r, note)
      return { record: await write(r, { status: as, note, ...(r.instanceId ? { instanceState: 'stopped' } : {}) }) }
    },

    async finish({ record: r, status: st }: { record: StoredContract; status: InstanceStatus }): Promise<StoredContract> {
      await release(r, `instance ${st.state}`)
      return write(r, {
        instanceState: st.state, ...(st.code !== undefined ? { exitCode: st.code } : {}),
        ...(r.status === 'active' ? { status: 'ended' as const, note: st.reason ?? st.state } : {}),
      })
    },

    async expire(r: StoredContract): Promise<StoredContract> {
      const why = `reservation expired: not started within ${p.reservationTtlMs} ms`
      await release(r, why)
      return write(r, { status: 'expired', note: why })
    },

    record: ({ record: r, status: st }) => write(r, { instanceState: st.state, ...(st.code !== undefined ? { exitCode: st.code } : {}) }),
    logs: (instanceId, o) => p.runner.logs(instanceId, o),
    report: (consumer, r) => p.report(consumer, r),
    resume(instanceId, contractId) {
      p.follow(instanceId, contractId)
      p.runner.resume?.(instanceId)
    },
    unfollow: (instanceId) => p.unfollow(instanceId),
    log: (msg, fields) => p.log(msg, fields),
  }
}

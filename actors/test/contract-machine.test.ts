// The contract machine on its own: its steps are scripted (each call waits until the test settles it) and its
// reservation time-out runs on XState's SimulatedClock, so every transition is driven step by step. The steps
// themselves (contract-steps.ts) are proven against real providers in orchestrator.test.ts and fence-attack.test.ts.
import t from 'tap'
import { createActor, SimulatedClock } from 'xstate'
import { NodeKey } from '../../identity/keys.ts'
import { countersign, proposeContract, workloadDigest, type Contract } from '../contracts/contract.ts'
import type { StoredContract } from '../contracts/store.ts'
import { OrchestrationError, ReservationFailedError, StaleEpochError, StopFailedError, WorkloadStartError } from '../errors.ts'
import { contractMachine, type ContractContext, type ContractEvent, type ContractSteps, type Ending, type ReplicaReport, type StepOutcome } from '../provider/contract-machine.ts'
import type { InstanceStatus } from '../provider/ports.ts'
import { workload } from './helpers.ts'

type Kind = 'reserve' | 'start' | 'stop' | 'finish' | 'expire' | 'record'
interface Call { kind: Kind; input: never; resolve(v: unknown): void; reject(e: Error): void }

const consumer = NodeKey.generate()
const provider = NodeKey.generate()
const stranger = NodeKey.generate()
const w = workload()
const TTL = 30_000
const LEASE = 60_000

class ScriptedSteps implements ContractSteps {
  readonly calls: Call[] = []
  readonly reports: { consumer: string; report: ReplicaReport }[] = []
  readonly resumed: string[] = []
  readonly unfollowed: string[] = []
  readonly reservationTtlMs = TTL
  readonly clock: SimulatedClock
  #waiters: (() => void)[] = []
  constructor(clock: SimulatedClock) {
    this.clock = clock
  }
  now = (): number => this.clock.now()
  leaseClock = (): number => this.clock.now()
  readonly defaultLeaseMs = LEASE
  #call<T>(kind: Kind, input: unknown): Promise<T> {
    return new Promise((resolve, reject) => {
      this.calls.push({ kind, input: input as never, resolve: resolve as never, reject })
      for (const x of this.#waiters.splice(0)) x()
    })
  }
  reserve = (i: unknown) => this.#call<StoredContract>('reserve', i)
  start = (i: unknown) => this.#call<StepOutcome>('start', i)
  stop = (i: unknown) => this.#call<StepOutcome>('stop', i)
  finish = (i: unknown) => this.#call<StoredContract>('finish', i)
  expire = (i: unknown) => this.#call<StoredContract>('expire', i)
  record = (i: unknown) => this.#call<StoredContract>('record', i)
  logs = async () => ({ lines: [{ ts: 1, stream: 'stdout', line: 'hello' }], ended: false })
  report = (c: string, r: ReplicaReport): void => void this.reports.push({ consumer: c, report: r })
  resume = (instanceId: string): void => void this.resumed.push(instanceId)
  unfollow = (instanceId: string): void => void this.unfollowed.push(instanceId)
  log = (): void => {}
  /** The next call not yet taken, of this kind (fails the test on another kind). */
  async next(kind: Kind): Promise<Call> {
    for (;;) {
      const c = this.calls.shift()
      if (c) {
        if (c.kind !== kind) throw new Error(`expected a ${kind} call, got ${c.kind}`)
        return c
      }
      await new Promise<void>((r) => this.#waiters.push(r))
    }
  }
}

/** What an asker received. */
class Answer {
  value: unknown
  error: Error | undefined
  settled = false
  readonly reply = {
    respond: (v: unknown): void => {
      this.settled = true
      this.value = v
    },
    fail: (e: Error): void => {
      this.settled = true
      this.error = e
    },
  }
}

function proposal(o: { epoch?: number; role?: 'replica' | 'standby' } = {}): Contract {
  return proposeContract(consumer, {
    deploymentId: 'd1', workloadName: w.name, kind: w.kind, slot: o.role === 'standby' ? 'd1/standby' : 'd1/0', epoch: o.epoch ?? 2,
    provider: provider.did, providerOwner: provider.did, bidId: 'b1', resources: w.resources, pricePerHour: '1000000', lane: w.lane,
    role: o.role ?? 'replica', durationSeconds: 60, workloadDigest: workloadDigest(w), now: 1_000,
  })
}

function run(input: { proposal: { contract: Contract; workload: typeof w } } | { record: StoredContract }, clock = new SimulatedClock()) {
  clock.set(1_000)
  const steps = new ScriptedSteps(clock)
  const actor = createActor(contractMachine(steps), { input, clock })
  actor.start()
  const send = (e: ContractEvent): void => actor.send(e)
  /** Sends a request and returns what its asker will receive. */
  const ask = (e: Record<string, unknown> & { type: string }): Answer => {
    const a = new Answer()
    send({ ...e, reply: a.reply } as ContractEvent)
    return a
  }
  const state = (): string => String(actor.getSnapshot().value)
  const ctx = (): ContractContext => actor.getSnapshot().context
  return { steps, clock, actor, send, ask, state, ctx }
}

const settle = () => new Promise((r) => setImmediate(r))

const stored = (c: Contract, over: Partial<StoredContract> = {}): StoredContract => ({
  contract: countersign(provider, c), side: 'provider', status: c.terms.role === 'standby' ? 'standby' : 'reserved', updatedAt: 1_000, workload: w, reservationId: 'r1', ...over,
})

/** A contract driven to `reserved` (or `standby`) through its proposal. */
async function reserved(o: { epoch?: number; role?: 'replica' | 'standby' } = {}) {
  const c = proposal(o)
  const r = run({ proposal: { contract: c, workload: w } })
  const a = r.ask({ type: 'PROPOSE', contract: c, from: consumer.did })
  const call = await r.steps.next('reserve')
  call.resolve(stored(c))
  await settle()
  return { ...r, contract: c, proposeAnswer: a }
}

/** A contract driven to `running` with instance i1. */
async function running(o: { epoch?: number } = {}) {
  const r = await reserved(o)
  r.ask({ type: 'START', from: consumer.did })
  const call = await r.steps.next('start')
  call.resolve({ record: { ...(call.input as StoredContract), status: 'active', instanceId: 'i1', instanceState: 'running' } })
  await settle()
  return r
}

const status = (state: InstanceStatus['state'], over: Partial<InstanceStatus> = {}): InstanceStatus => ({ instanceId: 'i1', state, at: 5_000, ...over })

t.test('a proposal is reserved and countersigned by its step, then answered with the signed contract', async (t) => {
  const c = proposal()
  const r = run({ proposal: { contract: c, workload: w } })
  t.equal(r.state(), 'proposed')
  const a = r.ask({ type: 'PROPOSE', contract: c, from: consumer.did })
  t.equal(r.state(), 'reserving')
  const call = await r.steps.next('reserve')
  t.same(call.input, { contract: c, workload: w }, 'the step is given the proposal and its workload')
  t.notOk(a.settled, 'answered only when the step settles')
  call.resolve(stored(c))
  await settle()
  t.equal(r.state(), 'reserved')
  t.ok((a.value as Contract).providerSig, 'the asker gets the countersigned contract')
  t.equal(r.ctx().record?.status, 'reserved')
  t.equal(r.ctx().reservedUntil, 1_000 + TTL, 'the reservation lapses a TTL after it was written')
  t.equal(r.ctx().proposal, null)
  const again = r.ask({ type: 'PROPOSE', contract: c, from: consumer.did })
  await settle()
  t.same(again.value, a.value, 'the same proposal asked again gets the same contract')
})

t.test('a standby proposal goes to standby, and a refused proposal ends with the refusal and no record', async (t) => {
  const s = await reserved({ role: 'standby' })
  t.equal(s.state(), 'standby')
  const c = proposal()
  const r = run({ proposal: { contract: c, workload: w } })
  const a = r.ask({ type: 'PROPOSE', contract: c, from: consumer.did })
  ;(await r.steps.next('reserve')).reject(new StaleEpochError('slot d1/0 is at epoch 3'))
  await settle()
  t.equal(r.state(), 'refused')
  t.equal(r.actor.getSnapshot().status, 'done', 'the actor is done (the market frees its name)')
  t.type(a.error, StaleEpochError)
  t.equal(r.ctx().record, null)
})

t.test('start -> running: the start step commits and runs; a start asked again answers the same instance', async (t) => {
  const r = await reserved()
  const a = r.ask({ type: 'START', from: consumer.did })
  t.equal(r.state(), 'starting')
  const call = await r.steps.next('start')
  t.equal((call.input as StoredContract).status, 'reserved')
  call.resolve({ record: { ...(call.input as StoredContract), status: 'active', instanceId: 'i1', instanceState: 'running' } })
  await settle()
  t.equal(r.state(), 'running')
  t.same(a.value, { instanceId: 'i1' })
  t.equal(r.ctx().reservedUntil, null, 'a committed reservation no longer lapses')
  const again = r.ask({ type: 'START', from: consumer.did })
  await settle()
  t.same(again.value, { instanceId: 'i1' })
})

t.test('a start that fails ends refused, and the asker gets the step\'s typed error', async (t) => {
  const r = await reserved()
  const a = r.ask({ type: 'START', from: consumer.did })
  const call = await r.steps.next('start')
  call.resolve({ record: { ...(call.input as StoredContract), status: 'refused', note: 'start failed: ImageNotFoundError' }, error: new WorkloadStartError('could not start') })
  await settle()
  t.equal(r.state(), 'refused')
  t.type(a.error, WorkloadStartError)
  t.match(r.ctx().failure, /^WorkloadStartError: could not start/)
})

t.test('a start superseded by a newer placement ends superseded with StaleEpochError', async (t) => {
  const r = await reserved()
  const a = r.ask({ type: 'START', from: consumer.did })
  const call = await r.steps.next('start')
  call.resolve({ record: { ...(call.input as StoredContract), status: 'superseded' }, error: new StaleEpochError('superseded') })
  await settle()
  t.equal(r.state(), 'superseded')
  t.type(a.error, StaleEpochError)
})

t.test('a reservation never started expires after its TTL: released and recorded by its step', async (t) => {
  const r = await reserved()
  r.clock.increment(TTL - 1)
  t.equal(r.state(), 'reserved')
  r.clock.increment(1)
  t.equal(r.state(), 'expiring')
  const call = await r.steps.next('expire')
  const late = r.ask({ type: 'START', from: consumer.did })
  t.notOk(late.settled, 'a start during the expiry waits for it')
  call.resolve({ ...(call.input as StoredContract), status: 'expired', note: 'reservation expired' })
  await settle()
  t.equal(r.state(), 'expired')
  t.type(late.error, ReservationFailedError, 'and is then refused: the reservation is gone')
})

t.test('a reserved record taken up after a restart whose TTL passed expires at once', async (t) => {
  const clock = new SimulatedClock()
  const c = proposal()
  const r = run({ record: stored(c, { updatedAt: 1_000 - TTL - 5 }) }, clock)
  t.equal(r.state(), 'reserved')
  clock.increment(0)
  await settle()
  t.equal(r.state(), 'expiring')
  t.ok(await r.steps.next('expire'))
})

t.test('an active record taken up after a restart follows its instance again', async (t) => {
  const c = proposal()
  const r = run({ record: stored(c, { status: 'active', instanceId: 'i9', instanceState: 'running' }) })
  t.equal(r.state(), 'running')
  t.same(r.steps.resumed, ['i9'], 'the runner is asked to re-attach the instance')
})

t.test('stop: the instance is stopped and the hold released by the stop step, then the contract ends', async (t) => {
  const r = await running()
  const a = r.ask({ type: 'STOP', from: consumer.did })
  t.equal(r.state(), 'stopping')
  const call = await r.steps.next('stop')
  t.same({ as: (call.input as Ending).as, note: (call.input as Ending).note }, { as: 'ended', note: 'stopped by the consumer' })
  r.send({ type: 'STATUS', status: status('stopped') })
  call.resolve({ record: { ...(call.input as { record: StoredContract }).record, status: 'ended', instanceState: 'stopped' } })
  await settle()
  t.equal(r.state(), 'ended')
  t.same(a.value, { stopped: true })
  t.same(r.steps.unfollowed, ['i1'], 'its instance is no longer followed')
  t.same(r.steps.reports, [], 'the instance\'s own `stopped` during the stop is not reported')
})

t.test('a stop the runner could not carry out leaves the contract running, with the error', async (t) => {
  const r = await running()
  const a = r.ask({ type: 'STOP', from: consumer.did })
  const call = await r.steps.next('stop')
  const rec = (call.input as { record: StoredContract }).record
  call.resolve({ record: { ...rec, note: 'stop failed: Error: kill refused' }, error: new StopFailedError('could not stop instance i1: Error: kill refused') })
  await settle()
  t.equal(r.state(), 'running')
  t.type(a.error, StopFailedError)
  t.match(r.ctx().failure, /^StopFailedError: .*kill refused/)
  t.equal(r.ctx().record?.status, 'active')
  t.match(r.ctx().record?.note, /stop failed/)
  // The instance is still followed: its statuses still count, and a stop asked again tries again.
  const again = r.ask({ type: 'STOP', from: consumer.did })
  const retry = await r.steps.next('stop')
  retry.resolve({ record: { ...rec, status: 'ended' } })
  await settle()
  t.equal(r.state(), 'ended')
  t.same(again.value, { stopped: true })
})

t.test('a stop asked while the start is in flight waits for it, then stops what was started', async (t) => {
  const r = await reserved()
  const started = r.ask({ type: 'START', from: consumer.did })
  const call = await r.steps.next('start')
  const stopped = r.ask({ type: 'STOP', from: consumer.did })
  r.send({ type: 'STATUS', status: status('running') })
  t.equal(r.state(), 'starting', 'postponed')
  call.resolve({ record: { ...(call.input as StoredContract), status: 'active', instanceId: 'i1', instanceState: 'running' } })
  await settle()
  t.same(started.value, { instanceId: 'i1' })
  t.equal(r.state(), 'stopping', 'the postponed stop is taken first, in the order things arrived')
  ;(await r.steps.next('stop')).resolve({ record: { ...r.ctx().record!, status: 'ended' } })
  await settle()
  t.same(stopped.value, { stopped: true })
  t.equal(r.state(), 'ended')
})

t.test('a fence supersedes only a contract of a lower epoch', async (t) => {
  const r = await running({ epoch: 2 })
  for (const epoch of [1, 2]) {
    const a = r.ask({ type: 'FENCE', from: consumer.did, epoch })
    await settle()
    t.same(a.value, { stopped: false }, `a fence at epoch ${epoch} leaves epoch 2 alone`)
    t.equal(r.state(), 'running')
  }
  const a = r.ask({ type: 'FENCE', from: consumer.did, epoch: 3 })
  t.equal(r.state(), 'stopping')
  const call = await r.steps.next('stop')
  t.equal((call.input as Ending).as, 'superseded')
  t.match((call.input as Ending).note, /fenced: slot is at epoch 3/)
  call.resolve({ record: { ...(call.input as { record: StoredContract }).record, status: 'superseded' } })
  await settle()
  t.equal(r.state(), 'superseded')
  t.same(a.value, { stopped: true })
})

t.test('a fence supersedes a reservation and a standby as well', async (t) => {
  for (const role of ['replica', 'standby'] as const) {
    const r = await reserved({ role, epoch: 1 })
    const a = r.ask({ type: 'FENCE', from: consumer.did, epoch: 2 })
    const call = await r.steps.next('stop')
    call.resolve({ record: { ...(call.input as { record: StoredContract }).record, status: 'superseded' } })
    await settle()
    t.equal(r.state(), 'superseded', role)
    t.same(a.value, { stopped: true })
  }
})

t.test('a standby gives its hold back when a replica of its deployment is proposed', async (t) => {
  const r = await reserved({ role: 'standby', epoch: 1 })
  const a = r.ask({ type: 'PROMOTED' })
  const call = await r.steps.next('stop')
  t.same({ as: (call.input as Ending).as, note: (call.input as Ending).note }, { as: 'ended', note: 'promoted to replica' })
  call.resolve({ record: { ...(call.input as { record: StoredContract }).record, status: 'ended' } })
  await settle()
  t.equal(r.state(), 'ended')
  t.same(a.value, { ended: true })
})

t.test('the runner\'s status changes are recorded by a step and reported to the consumer', async (t) => {
  const r = await running()
  r.send({ type: 'STATUS', status: status('running') })
  t.equal(r.state(), 'recording')
  r.send({ type: 'STATUS', status: status('exited', { code: 0, at: 6_000 }) })
  const rec = await r.steps.next('record')
  t.same((rec.input as { status: InstanceStatus }).status, status('running'))
  t.same(r.steps.reports, [], 'reported once it is written')
  rec.resolve({ ...(rec.input as { record: StoredContract }).record, instanceState: 'running' })
  await settle()
  const t0 = r.contract.terms
  t.same(r.steps.reports[0], {
    consumer: consumer.did,
    report: { contractId: t0.id, deploymentId: 'd1', slot: 'd1/0', epoch: 2, node: provider.did, state: 'running', at: 5_000 },
  })
  t.equal(r.state(), 'finishing', 'the exit that arrived meanwhile is taken next')
  const fin = await r.steps.next('finish')
  t.same((fin.input as { status: InstanceStatus }).status.state, 'exited')
  fin.resolve({ ...(fin.input as { record: StoredContract }).record, status: 'ended', instanceState: 'exited', exitCode: 0 })
  await settle()
  t.equal(r.state(), 'ended')
  t.same(r.steps.reports[1]?.report, { contractId: t0.id, deploymentId: 'd1', slot: 'd1/0', epoch: 2, node: provider.did, state: 'exited', code: 0, at: 6_000 })
  t.same(r.steps.unfollowed, ['i1'])
})

t.test('only the contract\'s consumer may start, stop, fence or read the logs of it', async (t) => {
  const r = await running()
  for (const type of ['START', 'STOP', 'LOGS', 'FENCE']) {
    const a = r.ask({ type, from: stranger.did, epoch: 99, since: 0, limit: 10 })
    await settle()
    t.type(a.error, OrchestrationError, `${type} from a stranger`)
    t.match(a.error?.message, /only the consumer/)
    t.equal(r.state(), 'running', 'changes nothing')
  }
  const logs = r.ask({ type: 'LOGS', from: consumer.did, since: 0, limit: 10 })
  await settle()
  t.same(logs.value, { lines: [{ ts: 1, stream: 'stdout', line: 'hello' }], ended: false }, 'the consumer reads them')
})

// ---- leases (spec/contracts.md "Leases") -------------------------------------------------------------------

/** A contract driven to `running` whose terms carry a short lease. */
async function leased(leaseMs: number) {
  const c = proposeContract(consumer, {
    deploymentId: 'd1', workloadName: w.name, kind: w.kind, slot: 'd1/0', epoch: 2, provider: provider.did, providerOwner: provider.did,
    bidId: 'b1', resources: w.resources, pricePerHour: '1000000', lane: w.lane, role: 'replica', durationSeconds: 3600, leaseMs,
    workloadDigest: workloadDigest(w), now: 1_000,
  })
  const r = run({ proposal: { contract: c, workload: w } })
  r.ask({ type: 'PROPOSE', contract: c, from: consumer.did })
  ;(await r.steps.next('reserve')).resolve(stored(c))
  await settle()
  r.ask({ type: 'START', from: consumer.did })
  const call = await r.steps.next('start')
  call.resolve({ record: { ...(call.input as StoredContract), status: 'active', instanceId: 'i1', instanceState: 'running' } })
  await settle()
  return r
}

t.test('a running contract whose lease is not renewed is stopped and released, written lease-expired', async (t) => {
  const r = await leased(3_000)
  t.equal(r.state(), 'running')
  t.equal(r.ctx().leaseMs, 3_000, 'the lease comes from the terms')
  r.clock.increment(2_999)
  t.equal(r.state(), 'running', 'not before the lease ran out')
  r.clock.increment(1)
  t.equal(r.state(), 'stopping')
  const call = await r.steps.next('stop')
  const input = call.input as { record: StoredContract } & Ending
  t.equal(input.as, 'lease-expired')
  t.match(input.note, /lease expired: no renewal from the consumer for 3000 ms/)
  const late = r.ask({ type: 'START', from: consumer.did })
  call.resolve({ record: { ...input.record, status: 'lease-expired', note: input.note, instanceState: 'stopped' } })
  await settle()
  t.equal(r.state(), 'leaseExpired')
  t.equal(r.actor.getSnapshot().status, 'done')
  t.type(late.error, Error, 'a start that waited is answered from the final record')
  t.equal(late.error?.name, 'LeaseExpiredError')
  t.same(r.steps.unfollowed, ['i1'], 'the instance is no longer followed')
})

t.test('each renewal gives a full lease again, measured from when it arrived (the message carries no time)', async (t) => {
  const r = await leased(3_000)
  for (let i = 0; i < 10; i++) {
    r.clock.increment(2_000)
    r.send({ type: 'RENEW' })
  }
  t.equal(r.state(), 'running', 'ten renewals 2 s apart: 20 s, well past several leases, still running')
  t.equal(r.steps.calls.length, 0, 'no step was started')
  r.clock.increment(2_999)
  t.equal(r.state(), 'running')
  r.clock.increment(1)
  t.equal(r.state(), 'stopping', 'the lease counts from the last renewal')
})

t.test('a renewal during a step in flight is noted, and the lease runs from it once the step settled', async (t) => {
  const r = await leased(3_000)
  r.send({ type: 'STATUS', status: status('running') })
  t.equal(r.state(), 'recording')
  const rec = await r.steps.next('record')
  r.clock.increment(2_500)
  r.send({ type: 'RENEW' })
  r.clock.increment(1_000) // the lease's timer is not running in `recording`
  rec.resolve({ ...(rec.input as { record: StoredContract }).record })
  await settle()
  t.equal(r.state(), 'running')
  r.clock.increment(1_999)
  t.equal(r.state(), 'running', 'the renewal made while recording counts')
  r.clock.increment(1)
  t.equal(r.state(), 'stopping')
})

t.test('a reservation and a standby hold also end when their lease runs out', async (t) => {
  const s = await reserved({ role: 'standby' })
  t.equal(s.state(), 'standby')
  s.clock.increment(LEASE)
  t.equal(s.state(), 'stopping', 'the standby hold (default lease) lapsed')
  const call = await s.steps.next('stop')
  t.equal((call.input as Ending).as, 'lease-expired')
  call.resolve({ record: { ...(call.input as { record: StoredContract }).record, status: 'lease-expired' } })
  await settle()
  t.equal(s.state(), 'leaseExpired')
  const r = await reserved()
  r.clock.increment(TTL - 1)
  r.send({ type: 'RENEW' })
  t.equal(r.state(), 'reserved', 'a renewal does not stretch the reservation: it still expires at its TTL')
  r.clock.increment(1)
  t.equal(r.state(), 'expiring')
})

t.test('a lease stop the runner refuses goes back to running and is tried again after a pause, not in a tight loop', async (t) => {
  const r = await leased(3_000)
  r.clock.increment(3_000)
  const call = await r.steps.next('stop')
  call.resolve({ record: (call.input as { record: StoredContract }).record, error: new StopFailedError('docker did not answer') })
  await settle()
  t.equal(r.state(), 'running')
  t.match(r.ctx().failure, /StopFailedError/)
  r.clock.increment(999)
  t.equal(r.state(), 'running', 'waits before the next try')
  r.clock.increment(1)
  t.equal(r.state(), 'stopping')
})

t.test('a contract taken up from its record after a restart starts with a full lease', async (t) => {
  const c = proposal()
  const rec = stored(c, { status: 'active', instanceId: 'i1', instanceState: 'running', updatedAt: 1 })
  const r = run({ record: rec })
  t.equal(r.state(), 'running')
  t.same(r.steps.resumed, ['i1'])
  r.clock.increment(LEASE - 1)
  t.equal(r.state(), 'running', 'the whole lease, from the restart on')
  r.clock.increment(1)
  t.equal(r.state(), 'stopping')
  const done = run({ record: stored(c, { status: 'lease-expired' }) })
  t.equal(done.state(), 'leaseExpired', 'a lease-expired record is final')
})

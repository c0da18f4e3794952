// Usage records (actors/usage/): signing and verifying, the consumer's judgement, the desk that answers
// and pays them, and the escrow arithmetic over a real ledger (appliance/node-services/ledger-escrow.ts).
import t from 'tap'
import { NodeKey } from '../../identity/keys.ts'
import { MemoryKvStore } from '../../core/index.ts'
import type { Contract, ContractTerms } from '../contracts/contract.ts'
import { InsufficientFundsError, InvalidSignatureError, InvalidTermsError, InvalidUsageError, UsageConflictError } from '../errors.ts'
import { answerUsage, contractPricePerHour, signUsage, usageAmount, verifyAnswered, verifyUsage, type UsageBody } from '../usage/record.ts'
import { judgeUsage, observedMs } from '../usage/judge.ts'
import { UsageDesk } from '../usage/desk.ts'
import { KvUsageStore } from '../usage/store.ts'
import type { Escrow } from '../usage/escrow.ts'
import { MemoryContractStore } from './memory-contract-store.ts'
import { openTestLedger } from '../../ledger/test/helpers.ts'
import { LedgerEarnings, LedgerEscrow } from '../../appliance/node-services/ledger-escrow.ts'

const provider = NodeKey.generate()
const consumer = NodeKey.generate()
const stranger = NodeKey.generate()
const T0 = 1_700_000_000_000

function terms(o: Partial<ContractTerms> = {}): ContractTerms {
  return {
    v: 2, id: 'c-1', deploymentId: 'd-1', workloadName: 'w', kind: 'service', slot: 'd-1/0', epoch: 1, consumer: consumer.did, provider: provider.did,
    providerOwner: provider.did, bidId: 'b', resources: { cpu: 1, memoryBytes: 1, gpu: 0, vramBytes: 0, diskBytes: 0 }, pricePerHour: '360000', lane: 'best-effort',
    role: 'replica', durationSeconds: 3600, startsAt: T0, endsAt: T0 + 3_600_000, workloadDigest: 'x', ...o,
  }
}

function body(o: Partial<UsageBody> = {}): UsageBody {
  const replicaMs = o.replicaMs ?? 60_000
  return {
    v: 1, contractId: 'c-1', deploymentId: 'd-1', slot: 'd-1/0', consumer: consumer.did, provider: provider.did, seq: 0, from: T0, to: T0 + 60_000, replicaMs,
    pricePerHour: '360000', amount: String(usageAmount(360_000n, replicaMs)), ...o,
  }
}

t.test('the price accessor reads a decimal string of µNLC and refuses anything else by field', async (t) => {
  t.equal(contractPricePerHour({ pricePerHour: '386719' }), 386_719n)
  t.equal(contractPricePerHour({ pricePerHour: '0' }), 0n)
  for (const bad of [0.386719, -1, '-1', '1.5', '1e6', '01', '']) {
    t.throws(() => contractPricePerHour({ pricePerHour: bad as unknown as string }), InvalidTermsError, JSON.stringify(bad))
  }
})

t.test('amounts are rounded up in whole µNLC with integer math', async (t) => {
  t.equal(usageAmount(360_000n, 60_000), 6000n, '0.36 NLC/h for a minute is 6,000 µNLC')
  t.equal(usageAmount(360_000n, 1), 1n, 'a millisecond costs at least one µNLC')
  t.equal(usageAmount(1n, 3_600_001), 2n)
  t.equal(usageAmount(0n, 3_600_000), 0n)
  const huge = 10n ** 30n
  t.equal(usageAmount(huge, 3_600_000), huge, 'no float anywhere: exact at 10^30')
})

t.test('a record verifies for its provider and for nobody else', async (t) => {
  const r = signUsage(provider, body())
  t.same(verifyUsage(r), body())
  t.throws(() => verifyUsage({ ...r, body: { ...r.body, replicaMs: 61_000 } }), InvalidSignatureError, 'an edited body fails')
  t.throws(() => verifyUsage({ ...r, body: { ...r.body, provider: stranger.did } }), InvalidSignatureError, 'another provider named fails')
  t.throws(() => signUsage(stranger, body()), InvalidUsageError, 'nobody signs a record naming another provider')
  t.throws(() => verifyUsage({ ...r, body: { ...r.body, amount: '1.5' } }), InvalidUsageError, 'a float amount is malformed')
  t.throws(() => verifyUsage({ ...r, body: { ...r.body, extra: 1 } }), InvalidUsageError, 'unknown fields are refused')
  const a = answerUsage(consumer, r, { verdict: 'accepted', acceptedAmount: r.body.amount, acceptedReplicaMs: 60_000, at: T0 })
  t.equal(verifyAnswered(a).answer.verdict, 'accepted')
  t.throws(() => verifyAnswered({ ...a, answer: { ...a.answer!, acceptedAmount: '1' } }), InvalidSignatureError, 'an edited answer fails')
  const other = answerUsage(stranger, r, a.answer!)
  t.equal(other.answer!.by, stranger.did, 'an answer by another node than the consumer names its signer')
  t.equal(verifyAnswered(other).answer.by, stranger.did, 'and verifies only as that node\'s (whether it may answer is the provider\'s check)')
  t.throws(() => verifyAnswered({ ...other, answer: { ...other.answer!, by: undefined } }), InvalidSignatureError, 'it cannot pass as the consumer\'s answer')
  t.throws(() => verifyAnswered({ ...a, answer: { ...a.answer!, by: consumer.did } }), InvalidUsageError, '`by` naming the consumer itself is malformed')
  const greedy = answerUsage(consumer, r, { verdict: 'accepted', acceptedAmount: '999999999', acceptedReplicaMs: 60_000, at: T0 })
  t.throws(() => verifyAnswered(greedy), InvalidUsageError, 'an answer accepting more than claimed is refused')
})

t.test('the judgement: within tolerance accepted, inflated disputed down to what was observed', async (t) => {
  const seen = { start: T0, end: null }
  t.equal(observedMs(seen, T0 + 1000, T0 + 5000, T0 + 3000), 2000, 'judged up to now while running')
  t.same(judgeUsage({ body: body(), price: 360_000n, observation: seen, now: T0 + 60_000 }), { verdict: 'accepted', acceptedAmount: '6000', acceptedReplicaMs: 60_000 })
  // seen running 1.5 s late (reports travel): within 2 s + 5 %
  t.equal(judgeUsage({ body: body(), price: 360_000n, observation: { start: T0 + 1500, end: null }, now: T0 + 60_000 }).verdict, 'accepted')
  const inflated = judgeUsage({ body: body({ to: T0 + 3_600_000, replicaMs: 3_600_000 }), price: 360_000n, observation: { start: T0, end: T0 + 60_000 }, now: T0 + 3_600_000 })
  t.equal(inflated.verdict, 'disputed')
  t.equal(inflated.acceptedReplicaMs, 60_000)
  t.equal(inflated.acceptedAmount, '6000', 'paid the observed minute, not the hour')
  t.match(inflated.reason, /exceeds the 60000 ms observed/)
  const longer = judgeUsage({ body: body({ replicaMs: 90_000, amount: String(usageAmount(360_000n, 90_000)) }), price: 360_000n, observation: seen, now: T0 + 60_000 })
  t.equal(longer.verdict, 'disputed')
  t.equal(longer.acceptedReplicaMs, 60_000, 'no replica runs longer than the interval')
  const pricier = judgeUsage({ body: body({ pricePerHour: '720000', amount: '12000' }), price: 360_000n, observation: seen, now: T0 + 60_000 })
  t.equal(pricier.verdict, 'disputed')
  t.equal(pricier.acceptedAmount, '6000', 'priced at the contract, not at the record')
  const sum = judgeUsage({ body: body({ amount: '7000' }), price: 360_000n, observation: seen, now: T0 + 60_000 })
  t.equal(sum.verdict, 'disputed')
  t.equal(sum.acceptedAmount, '6000', 'a wrong sum is corrected')
  const capped = judgeUsage({ body: body(), price: 360_000n, observation: seen, now: T0 + 60_000, cap: 4000n })
  t.equal(capped.acceptedAmount, '4000', 'never more than the hold')
  t.equal(judgeUsage({ body: body(), price: 360_000n, observation: { start: null, end: null }, now: T0 + 60_000 }).acceptedAmount, '0', 'never seen running: nothing')
  // the attack on the tolerance: many short records of intervals in which the replica did not run (before its
  // start, after its end), each under the 2 s tolerance; none is paid anything
  const ran = { start: T0 + 100_000, end: T0 + 160_000 }
  for (const from of [T0, T0 + 2000, T0 + 50_000, T0 + 170_000, T0 - 86_400_000]) {
    const short = judgeUsage({ body: body({ from, to: from + 1900, replicaMs: 1900, amount: String(usageAmount(360_000n, 1900)) }), price: 360_000n, observation: ran, now: T0 + 200_000 })
    t.same([short.verdict, short.acceptedAmount], ['disputed', '0'], `an unobserved interval at ${from - T0} ms is paid nothing`)
  }
})

/** An escrow in memory that records what it was asked. */
class FakeEscrow implements Escrow {
  funds = 1_000_000n
  holds = new Map<string, bigint>()
  paid: Array<[string, bigint]> = []
  available(): bigint {
    return this.funds - [...this.holds.values()].reduce((s, x) => s + x, 0n)
  }
  async hold(contractId: string, window: number, amount: bigint): Promise<void> {
    const id = `${contractId}:${window}`
    if (this.holds.has(id)) return
    if (amount > this.available()) throw new InsufficientFundsError('no funds')
    this.holds.set(id, amount)
  }
  async settle(contractId: string, window: number, amount: bigint): Promise<'paid' | 'unpaid' | 'nothing'> {
    const id = `${contractId}:${window}`
    if (!this.holds.delete(id)) return 'unpaid'
    this.funds -= amount
    this.paid.push([id, amount])
    return amount === 0n ? 'nothing' : 'paid'
  }
  async release(contractId: string, window: number): Promise<void> {
    this.holds.delete(`${contractId}:${window}`)
  }
}

async function desk(o: { status?: 'active' | 'ended'; role?: 'replica' | 'standby' } = {}) {
  const contracts = new MemoryContractStore()
  const c: Contract = { terms: terms(o.role ? { role: o.role } : {}), consumerSig: 'x', providerSig: 'y' }
  await contracts.put({ contract: c, side: 'consumer', status: o.status ?? 'active', updatedAt: T0 })
  const store = new KvUsageStore(new MemoryKvStore())
  const escrow = new FakeEscrow()
  const clock = { now: T0 + 60_000 }
  const d = new UsageDesk({ key: consumer, contracts, store, escrow, now: () => clock.now, log: () => {} }, { windowMs: 120_000 })
  await store.observe({ contractId: 'c-1', deploymentId: 'd-1', running: T0 })
  await d.hold(c.terms, 0)
  return { d, escrow, store, clock, c }
}

t.test('the desk answers a record, pays it from its window and holds the next', async (t) => {
  const { d, escrow, store } = await desk()
  t.same([...escrow.holds], [['c-1:0', 12_000n]], 'window 0 held: 120 s at 0.36 NLC/h')
  const answered = await d.receive(signUsage(provider, body()), provider.did)
  t.equal(answered.answer?.verdict, 'accepted')
  t.equal(verifyAnswered(answered).answer.acceptedAmount, '6000')
  t.same(escrow.paid, [['c-1:0', 6000n]])
  t.same([...escrow.holds], [['c-1:1', 12_000n]], 'the next window is held')
  const kept = await store.get('c-1', 0, 'consumer')
  t.equal(kept?.status, 'accepted')
  t.equal(kept?.settled, 'paid')

  const again = await d.receive(signUsage(provider, body()), provider.did)
  t.same(again, answered, 'a replayed record gets the same answer')
  t.same(escrow.paid, [['c-1:0', 6000n]], 'and pays nothing again')
  await t.rejects(d.receive(signUsage(provider, body({ replicaMs: 1000, amount: '100' })), provider.did), UsageConflictError, 'the same seq with other content')
  await t.rejects(d.receive(signUsage(provider, body({ seq: 1, replicaMs: 30_000, amount: '3000', from: T0 + 30_000, to: T0 + 60_000 })), provider.did), UsageConflictError, 'an interval already paid, under another seq')
  const final = await d.receive(signUsage(provider, body({ seq: 1, from: T0 + 60_000, to: T0 + 90_000, replicaMs: 30_000, amount: '3000', final: true })), provider.did)
  t.equal(final.answer?.verdict, 'disputed', 'ran past what was observed up to now (60 s)')
  t.same([...escrow.holds], [], 'after the final record nothing is held')
})

t.test('a contract lost with its provider: the open window is released at once; a record that comes after all is paid the late way', async (t) => {
  const { d, escrow } = await desk()
  t.equal(await d.releaseLost('c-1'), 0, 'no record yet: window 0 is the open one')
  t.same([...escrow.holds], [], 'and it is released')
  const second = await desk()
  await second.d.receive(signUsage(provider, body()), provider.did)
  t.same([...second.escrow.holds.keys()], ['c-1:1'])
  t.equal(await second.d.releaseLost('c-1'), 1, 'after record 0 the open window is 1')
  t.same([...second.escrow.holds], [], 'released')
  second.clock.now = T0 + 90_000
  const late = await second.d.receive(signUsage(provider, body({ seq: 1, from: T0 + 60_000, to: T0 + 80_000, replicaMs: 20_000, amount: '2000' })), provider.did)
  t.equal(late.answer?.verdict, 'accepted', 'the cut-off provider\'s record is still answered')
  t.equal((await second.store.get('c-1', 1, 'consumer'))?.settled, 'unpaid', 'its hold is gone: the escrow pays it the late way (a real ledger pays when it can: spec/ledger.md)')
  const third = await desk()
  await third.d.receive(signUsage(provider, body({ final: true })), provider.did)
  t.equal(await third.d.releaseLost('c-1'), undefined, 'after a final record nothing is open')
})

t.test('the desk refuses what is not a record of this consumer with its sender', async (t) => {
  const { d, escrow } = await desk()
  const r = signUsage(provider, body())
  await t.rejects(d.receive(r, stranger.did), InvalidUsageError, 'relayed by another node')
  await t.rejects(d.receive(signUsage(provider, body({ consumer: stranger.did })), provider.did), InvalidUsageError, 'for a contract of another consumer')
  await t.rejects(d.receive(signUsage(provider, body({ contractId: 'c-unknown' })), provider.did), InvalidUsageError, 'for no contract of this node')
  await t.rejects(d.receive(signUsage(stranger, body({ provider: stranger.did })), stranger.did), InvalidUsageError, 'from a node that is not the contract provider')
  await t.rejects(d.receive({ ...r, providerSig: signUsage(provider, body({ seq: 5 })).providerSig }, provider.did), InvalidSignatureError, 'a forged signature')
  t.same(escrow.paid, [], 'nothing paid for any of them')
  const { d: sd } = await desk({ role: 'standby' })
  await t.rejects(sd.receive(signUsage(provider, body()), provider.did), InvalidUsageError, 'a standby reservation runs nothing')
})

t.test('escrow over a real ledger: holds, posts in part, voids, refuses without funds, replays', async (t) => {
  const tl = await openTestLedger(t)
  const escrow = new LedgerEscrow(() => tl.ledger)
  await tl.ledger.topup('fund', 10_000n)
  await escrow.hold('c-1', 0, 6000n, 150)
  await escrow.hold('c-1', 0, 6000n, 150) // a retry after a crash: a replay
  t.equal(escrow.available(), 4000n, 'held once')
  await t.rejects(escrow.hold('c-1', 1, 6000n, 150), InsufficientFundsError, 'no second window without the funds')
  t.equal(await escrow.settle('c-1', 0, 2500n), 'paid')
  t.equal(await escrow.settle('c-1', 0, 2500n), 'paid', 'a replayed post')
  const self = tl.ledger.balance('self:NLC')!
  t.same([self.posted, self.held, self.available], ['7500', '0', '7500'], 'paid 2,500, the rest released')
  t.equal(tl.ledger.balance('payable:NLC')!.posted, '2500', 'owed to providers (a credit balance)')
  await escrow.hold('c-2', 0, 1000n, 150)
  await escrow.release('c-2', 0)
  t.equal(tl.ledger.balance('self:NLC')!.held, '0', 'voided')
  t.equal(await escrow.settle('c-2', 0, 300n), 'paid', 'a hold gone: paid from the wallet directly')
  await escrow.hold('c-3', 0, 1000n, 1)
  tl.clock.now += 5000
  await tl.ledger.expireDue()
  t.equal(await escrow.settle('c-3', 0, 99_999n), 'unpaid', 'an expired hold and a wallet that cannot pay: unpaid')
  t.ok((await tl.ledger.verify()).ok)

  const earnings = new LedgerEarnings(() => tl.ledger, { nlrPerNlc: 3n, feeBps: 250 })
  await earnings.credit('c-1', 0, 333n)
  await earnings.credit('c-1', 0, 333n)
  t.equal(tl.ledger.balance('self:NLR')!.posted, '974', '333 µNLC at 3 NLR/NLC less 250 bps, once')
  t.equal(tl.ledger.balance('receivable:NLC')!.posted, '-333', 'owed by the consumer')
  await new LedgerEarnings(() => tl.ledger, { nlrPerNlc: 1n, feeBps: 250 }).credit('c-1', 1, 1n)
  t.equal(tl.ledger.balance('self:NLR')!.posted, '975', 'a record so small its fee would take it all is converted without one')
})

t.test('after a takeover: the standby answers records of the contracts it adopted, and only those; the provider credits only the orchestrator\'s answers', async (t) => {
  const { UsageMeter } = await import('../usage/meter.ts')
  const standby = NodeKey.generate()
  const contracts = new MemoryContractStore()
  const c: Contract = { terms: terms(), consumerSig: 'x', providerSig: 'y' }
  await contracts.put({ contract: c, side: 'provider', status: 'active', updatedAt: T0 })
  const escrow = new FakeEscrow()
  const adoptedBy = (who: string) => (consumerDid: string, deploymentId: string, contractId: string) => (who === standby.did && consumerDid === consumer.did && deploymentId === c.terms.deploymentId && contractId === c.terms.id ? c.terms : undefined)
  const standbyDesk = new UsageDesk({ key: standby, contracts: new MemoryContractStore(), store: new KvUsageStore(new MemoryKvStore()), escrow, now: () => T0 + 60_000, log: () => {}, adopted: adoptedBy(standby.did) }, { windowMs: 120_000 })
  standbyDesk.observe({ contractId: c.terms.id, deploymentId: c.terms.deploymentId, running: T0 })
  const answered = await standbyDesk.receive(signUsage(provider, body()), provider.did)
  t.equal(answered.answer?.by, standby.did, 'the standby answers, naming itself')
  t.equal(answered.answer?.verdict, 'accepted')
  t.ok(escrow.holds.has(`${c.terms.id}:1`), 'and holds the next window in its own wallet (the first is paid from it directly: no hold of its own covered it)')
  const strangerDesk = new UsageDesk({ key: stranger, contracts: new MemoryContractStore(), store: new KvUsageStore(new MemoryKvStore()), escrow: new FakeEscrow(), now: () => T0 + 60_000, log: () => {}, adopted: adoptedBy(stranger.did) })
  await t.rejects(strangerDesk.receive(signUsage(provider, body()), provider.did), InvalidUsageError, 'a node that took nothing over answers nothing')
  await t.rejects(standbyDesk.receive(signUsage(provider, body({ contractId: 'c-other' })), provider.did), InvalidUsageError, 'nor a contract it did not adopt')

  // the provider: an answer by a node that does not orchestrate the deployment is not credited
  const credited: number[] = []
  const store = new KvUsageStore(new MemoryKvStore())
  let orchestrator = consumer.did
  const meter = new UsageMeter({
    key: provider, contracts, store, now: () => T0 + 60_000,
    send: async (_to, record) => answerUsage(standby, JSON.parse(JSON.stringify(record)), { verdict: 'accepted', acceptedAmount: (record as { body: { amount: string } }).body.amount, acceptedReplicaMs: 60_000, at: T0 }),
    earnings: { credit: async (_c, seq) => void credited.push(seq) },
    orchestratorOf: async () => orchestrator,
    log: () => {},
  }, { intervalMs: 1_000_000, retryMs: 5, maxRetryMs: 5 })
  t.teardown(() => meter.stop())
  await meter.started(c.terms.id, T0)
  await meter.ended(c.terms.id, T0 + 60_000)
  await new Promise((r) => setTimeout(r, 60))
  t.same(credited, [], 'answered by the standby before any handover: not credited')
  t.match((await store.ofContract(c.terms.id, 'provider'))[0]?.note ?? '', /does not orchestrate/)
  orchestrator = standby.did // the handover reached the provider
  await eventually(async () => credited.length === 1)
  t.same(credited, [0], 'credited once the standby orchestrates the deployment')
})

t.test('the meter issues records at its interval and at the end, in order, retried until answered, credited once', async (t) => {
  const { UsageMeter } = await import('../usage/meter.ts')
  const contracts = new MemoryContractStore()
  const c: Contract = { terms: terms(), consumerSig: 'x', providerSig: 'y' }
  await contracts.put({ contract: c, side: 'provider', status: 'active', updatedAt: T0 })
  await contracts.put({ contract: c, side: 'consumer', status: 'active', updatedAt: T0 })
  const clock = { now: T0 }
  const escrow = new FakeEscrow()
  const consumerDesk = new UsageDesk({ key: consumer, contracts, store: new KvUsageStore(new MemoryKvStore()), escrow, now: () => clock.now, log: () => {} }, { windowMs: 120_000 })
  await consumerDesk.hold(c.terms, 0)
  consumerDesk.observe({ contractId: 'c-1', deploymentId: 'd-1', running: T0 })
  const credited: Array<[number, bigint]> = []
  let down = 2 // the consumer does not answer the first two sends
  let cpu = 0
  const store = new KvUsageStore(new MemoryKvStore())
  const meter = new UsageMeter({
    key: provider, contracts, store, now: () => clock.now,
    send: async (_to, record) => {
      if (down-- > 0) throw Object.assign(new Error('no answer'), { name: 'AskTimeoutError' })
      return consumerDesk.receive(JSON.parse(JSON.stringify(record)), provider.did)
    },
    earnings: { credit: async (_c, seq, amount) => void credited.push([seq, amount]) },
    measure: () => ({ cpuNanos: (cpu += 250_000_000), memoryBytes: 1000 }),
    log: () => {},
  }, { intervalMs: 40, retryMs: 10, maxRetryMs: 20 })
  t.teardown(() => meter.stop())
  await meter.started('c-1', T0)
  await meter.started('c-1', T0) // a repeated running report starts nothing twice
  // the provider's clock moves 30 s per record
  for (let i = 0; i < 2; i++) {
    clock.now += 30_000
    await new Promise((r) => setTimeout(r, 45))
  }
  clock.now += 10_000
  await meter.ended('c-1', clock.now)
  const all = await eventually(async () => {
    const l = await store.ofContract('c-1', 'provider')
    return l.length >= 3 && l.every((u) => u.settled !== undefined) && l
  })
  const seqs = all.map((u) => u.record.body.seq)
  t.same(seqs, seqs.map((_, i) => i), 'numbered in order')
  t.ok(all.at(-1)!.record.body.final, 'the last one is final')
  t.equal(all.reduce((s, u) => s + u.record.body.replicaMs, 0), clock.now - T0, 'the records cover the run exactly, without gaps or overlaps')
  t.ok(all.every((u) => u.status === 'accepted'), 'answered after the retries')
  t.ok((all[0]!.tries ?? 0) >= 3, `the first record was sent ${all[0]!.tries} times`)
  t.same(credited.map(([s]) => s), seqs, 'each credited once')
  t.same(credited.map(([, a]) => a), all.map((u) => BigInt(u.record.answer!.acceptedAmount)))
  t.equal(all[0]!.record.body.cpuMs, 250, 'cpu time as the difference of the counters')
  t.equal(all[0]!.record.body.memoryByteMs, String(1000 * all[0]!.record.body.replicaMs))
  t.equal(all[0]!.record.body.egressBytes, undefined, 'egress not measured: absent, not 0')
  t.same(escrow.paid.map(([, a]) => a), credited.map(([, a]) => a), 'what the consumer paid is what the provider credited')
})

async function eventually<T>(fn: () => Promise<T | false>, ms = 60_000): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > end) throw new Error('condition not met')
    await new Promise((r) => setTimeout(r, 10))
  }
}

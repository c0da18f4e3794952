// A third party tries to poison slot epochs through the provider's fence (in-process market: real
// signatures, contracts and providers). The same attack against real daemons: market-attacks.test.ts.
import t from 'tap'
import { NodeKey } from '../../identity/keys.ts'
import { InvalidTermsError, UnknownSlotError } from '../errors.ts'
import { MAX_EPOCH } from '../provider/provider.ts'
import { SimMarket, until } from './sim.ts'
import { workload } from './helpers.ts'

const svc = () => workload({ resources: { cpu: 0.5, memory: '256Mi' } })

t.test('only a slot\'s consumer moves its epoch: a stranger\'s fence is UnknownSlotError and changes nothing', async (t) => {
  const m = new SimMarket(3)
  t.teardown(() => m.close())
  const consumer = m.nodes[0]!
  const d = await consumer.orchestrator.deploy(svc())
  const v = await until(() => { const s = consumer.orchestrator.status(d.id); return s.phase === 'running' && s }, 5000, 'running')
  const rep = v.replicas[0]!
  const provider = m.byDid(rep.node!)!
  const stranger = (await NodeKey.generate()).did
  const recordsBefore = provider.contracts.epochRecords()

  // The attack of the report: the slot's name is public (bid topic); fence it to the top from elsewhere.
  for (const epoch of [rep.epoch + 1, MAX_EPOCH]) {
    await t.rejects(provider.provider.fence({ slot: rep.slot, epoch }, stranger), UnknownSlotError, `a stranger's fence to ${epoch}`)
  }
  // Another real node of the market, with contracts of its own, is a stranger to this slot too.
  const other = m.nodes.find((n) => n.did !== consumer.did && n.did !== provider.did)!
  await t.rejects(provider.provider.fence({ slot: rep.slot, epoch: rep.epoch + 1 }, other.did), UnknownSlotError)
  t.equal(provider.runner.running(), 1, 'the replica still runs')
  t.equal(provider.contracts.epochRecords(), recordsBefore, 'no epoch record was added')

  // Out-of-range epochs are refused whoever sends them (no slot can be bricked at 2^53-1).
  for (const epoch of [2 ** 53 - 1, MAX_EPOCH + 1, 0, -1, 1.5, Number.NaN]) {
    await t.rejects(provider.provider.fence({ slot: rep.slot, epoch }, consumer.did), InvalidTermsError, `epoch ${epoch}`)
  }
  for (const slot of ['', 'x'.repeat(257), 42 as unknown as string]) {
    await t.rejects(provider.provider.fence({ slot, epoch: 2 }, consumer.did), InvalidTermsError, 'a malformed slot')
  }

  // The consumer itself still fences and places: its own fence at a higher epoch stops its old copy.
  const r = await provider.provider.fence({ slot: rep.slot, epoch: rep.epoch + 1 }, consumer.did)
  t.same(r.stopped.length, 1, 'the consumer\'s fence stops the lower epoch')
})

t.test('fences for thousands of slots a node does not hold leave its store as it was', async (t) => {
  const m = new SimMarket(2)
  t.teardown(() => m.close())
  const victim = m.nodes[1]!
  const attacker = (await NodeKey.generate()).did
  const before = victim.contracts.epochRecords()
  let refused = 0
  for (let i = 0; i < 5000; i++) {
    await victim.provider.fence({ slot: `dep-${i}/0`, epoch: i + 1 }, attacker).catch((err: Error) => { if (err instanceof UnknownSlotError) refused++ })
  }
  t.equal(refused, 5000, 'every fence was answered with UnknownSlotError')
  t.equal(victim.contracts.epochRecords(), before, 'the store did not grow')
  t.same(await victim.contracts.list(), [], 'and holds no contract')
})

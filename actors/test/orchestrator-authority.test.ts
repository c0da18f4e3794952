// Who may act for a consumer's deployment on a provider, tried as an attacker would: a handover needs a
// capability chain rooted at the consumer that names the sender, above the orchestrator epoch held.
import t from 'tap'
import { issueCapability } from '../../identity/capabilities.ts'
import { NodeKey } from '../../identity/keys.ts'
import { HandedOverError, InvalidTermsError, NotStandbyError, StaleEpochError } from '../errors.ts'
import { ORCHESTRATE_ABILITY, OrchestratorAuthority } from '../provider/orchestrator-authority.ts'
import { MemoryContractStore } from './memory-contract-store.ts'

const consumer = NodeKey.generate()
const standby = NodeKey.generate()
const mallory = NodeKey.generate()
const token = (issuer: NodeKey, audience: string, can = ORCHESTRATE_ABILITY) => issueCapability(issuer, { audience, abilities: [{ can }], ttlMs: 60_000 })

t.test('before any handover only the consumer acts, and reports go to it', async (t) => {
  const a = new OrchestratorAuthority(new MemoryContractStore())
  t.equal(await a.acts(consumer.did, 'dep', consumer.did), true)
  t.equal(await a.acts(consumer.did, 'dep', standby.did), false)
  t.equal(await a.reportTo(consumer.did, 'dep'), consumer.did)
  await a.checkProposal(consumer.did, 'dep')
})

t.test('a handover with the consumer\'s capability moves the deployment to the standby, and only that deployment', async (t) => {
  const a = new OrchestratorAuthority(new MemoryContractStore())
  t.same(await a.handover({ consumer: consumer.did, deploymentId: 'dep', epoch: 2, token: await token(consumer, standby.did) }, standby.did), { epoch: 2 })
  t.equal(await a.acts(consumer.did, 'dep', standby.did), true)
  t.equal(await a.acts(consumer.did, 'dep', consumer.did), false, 'the consumer itself is fenced out')
  t.equal(await a.reportTo(consumer.did, 'dep'), standby.did)
  await t.rejects(a.checkProposal(consumer.did, 'dep'), HandedOverError)
  t.equal(await a.acts(consumer.did, 'other', consumer.did), true, 'another deployment of the consumer is untouched')
  // repeated by the holder: accepted (idempotent)
  t.same(await a.handover({ consumer: consumer.did, deploymentId: 'dep', epoch: 2, token: await token(consumer, standby.did) }, standby.did), { epoch: 2 })
})

t.test('as an attacker: no capability, someone else\'s, the wrong ability, or a stale epoch takes nothing over', async (t) => {
  const store = new MemoryContractStore()
  const a = new OrchestratorAuthority(store)
  // a token the consumer issued to the standby, presented by mallory
  await t.rejects(a.handover({ consumer: consumer.did, deploymentId: 'dep', epoch: 2, token: await token(consumer, standby.did) }, mallory.did), NotStandbyError)
  // mallory issues herself a token
  await t.rejects(a.handover({ consumer: consumer.did, deploymentId: 'dep', epoch: 2, token: await token(mallory, mallory.did) }, mallory.did), NotStandbyError)
  // the consumer's token for another ability
  await t.rejects(a.handover({ consumer: consumer.did, deploymentId: 'dep', epoch: 2, token: await token(consumer, mallory.did, '/noir/market') }, mallory.did), NotStandbyError)
  await t.rejects(a.handover({ consumer: consumer.did, deploymentId: 'dep', epoch: 2, token: 'not a token' }, mallory.did), NotStandbyError)
  for (const bad of [{}, { consumer: consumer.did, deploymentId: '', epoch: 2, token: 'x' }, { consumer: consumer.did, deploymentId: 'dep', epoch: 1, token: 'x' }, { consumer: consumer.did, deploymentId: 'dep', epoch: 2.5, token: 'x' }]) {
    await t.rejects(a.handover(bad as never, mallory.did), InvalidTermsError)
  }
  t.equal(await a.acts(consumer.did, 'dep', consumer.did), true, 'nothing was recorded')
  t.equal(store.epochRecords(), 0, 'no refused handover grows the store')
  // a second standby of the consumer cannot take it at the same epoch, only above it
  const other = NodeKey.generate()
  await a.handover({ consumer: consumer.did, deploymentId: 'dep', epoch: 2, token: await token(consumer, standby.did) }, standby.did)
  await t.rejects(a.handover({ consumer: consumer.did, deploymentId: 'dep', epoch: 2, token: await token(consumer, other.did) }, other.did), StaleEpochError)
  await a.handover({ consumer: consumer.did, deploymentId: 'dep', epoch: 3, token: await token(consumer, other.did) }, other.did)
  t.equal(await a.acts(consumer.did, 'dep', other.did), true)
  t.equal(await a.acts(consumer.did, 'dep', standby.did), false, 'the earlier standby is fenced out in turn')
  t.equal(await a.reportTo(consumer.did, 'dep'), other.did)
})

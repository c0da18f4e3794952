import t from 'tap'
import { DeploymentStateMachine } from '../deployment/machine.ts'

const svc = () => new DeploymentStateMachine({ id: 'd1', kind: 'service', desired: 2, at: 0 })

t.test('a service goes preparing -> bidding -> committing -> provisioning -> running', async (t) => {
  const m = svc()
  t.equal(m.phase, 'preparing')
  m.send({ type: 'BID', at: 1 })
  m.send({ type: 'BIDS_CLOSED', at: 2, bids: 3 })
  m.send({ type: 'COMMITTED', at: 3, contracts: 2 })
  t.equal(m.phase, 'provisioning')
  m.send({ type: 'REPLICA_RUNNING', at: 4, slot: 'd1/0' })
  t.equal(m.phase, 'provisioning', 'one of two is not yet running')
  m.send({ type: 'REPLICA_RUNNING', at: 5, slot: 'd1/1' })
  t.equal(m.phase, 'running')
  t.same(m.context.history.map((h) => h.phase), ['preparing', 'bidding', 'committing', 'provisioning', 'running'])
})

t.test('a lost replica degrades a running service and its replacement restores it', async (t) => {
  const m = svc()
  for (const e of [{ type: 'BID' }, { type: 'BIDS_CLOSED', bids: 2 }, { type: 'COMMITTED', contracts: 2 }, { type: 'REPLICA_RUNNING', slot: 'a' }, { type: 'REPLICA_RUNNING', slot: 'b' }] as const) m.send({ ...e, at: 1 } as never)
  m.send({ type: 'REPLICA_DOWN', at: 2, slot: 'a', reason: 'node lost' })
  t.equal(m.phase, 'degraded')
  t.equal(m.context.reason, 'node lost')
  m.send({ type: 'REPLICA_RUNNING', at: 3, slot: 'a' })
  t.equal(m.phase, 'running')
})

t.test('an infeasible request fails the deployment with the reason', async (t) => {
  const m = svc()
  m.send({ type: 'BID', at: 1 })
  m.send({ type: 'INFEASIBLE', at: 2, reason: 'no node meets memory' })
  t.equal(m.phase, 'failed')
  t.equal(m.context.reason, 'no node meets memory')
  t.ok(m.done)
})

t.test('a refused commit re-bids until the rounds run out', async (t) => {
  const m = new DeploymentStateMachine({ id: 'd', kind: 'service', desired: 1, maxCommitRounds: 2, at: 0 })
  m.send({ type: 'BID', at: 1 })
  m.send({ type: 'BIDS_CLOSED', at: 1, bids: 1 })
  m.send({ type: 'COMMIT_FAILED', at: 1, reason: 'reservation refused' })
  t.equal(m.phase, 'bidding')
  m.send({ type: 'BIDS_CLOSED', at: 1, bids: 1 })
  m.send({ type: 'COMMIT_FAILED', at: 1, reason: 'reservation refused' })
  t.equal(m.phase, 'failed')
})

t.test('a job completes after its completions and fails after its retries', async (t) => {
  const ok = new DeploymentStateMachine({ id: 'j', kind: 'job', desired: 1, completions: 1, retries: 2, at: 0 })
  for (const e of [{ type: 'BID' }, { type: 'BIDS_CLOSED', bids: 1 }, { type: 'COMMITTED', contracts: 1 }, { type: 'REPLICA_RUNNING', slot: 'j/0' }] as const) ok.send({ ...e, at: 1 } as never)
  ok.send({ type: 'REPLICA_FAILED', at: 2, slot: 'j/0', reason: 'exit 1' })
  t.equal(ok.phase, 'degraded', 'one failure, retries left')
  ok.send({ type: 'REPLICA_RUNNING', at: 3, slot: 'j/0' })
  ok.send({ type: 'REPLICA_SUCCEEDED', at: 4, slot: 'j/0' })
  t.equal(ok.phase, 'completed')

  const bad = new DeploymentStateMachine({ id: 'j', kind: 'job', desired: 1, retries: 1, at: 0 })
  for (const e of [{ type: 'BID' }, { type: 'BIDS_CLOSED', bids: 1 }, { type: 'COMMITTED', contracts: 1 }, { type: 'REPLICA_RUNNING', slot: 'j/0' }] as const) bad.send({ ...e, at: 1 } as never)
  bad.send({ type: 'REPLICA_FAILED', at: 2, slot: 'j/0', reason: 'exit 1' })
  bad.send({ type: 'REPLICA_RUNNING', at: 3, slot: 'j/0' })
  bad.send({ type: 'REPLICA_FAILED', at: 4, slot: 'j/0', reason: 'exit 1' })
  t.equal(bad.phase, 'failed')
  t.equal(bad.context.failures, 2)
})

t.test('stop ends any phase, and a final phase ignores further events', async (t) => {
  const m = svc()
  m.send({ type: 'BID', at: 1 })
  t.ok(m.send({ type: 'STOP', at: 2 }))
  t.equal(m.phase, 'stopped')
  t.notOk(m.send({ type: 'REPLICA_RUNNING', at: 3, slot: 'x' }), 'ignored')
  t.equal(m.phase, 'stopped')
})

t.test('events a phase does not take are refused without changing it', async (t) => {
  const m = svc()
  t.notOk(m.send({ type: 'COMMITTED', at: 1, contracts: 1 }))
  t.equal(m.phase, 'preparing')
})

t.test('a persisted snapshot restores the same phase and context', async (t) => {
  const m = svc()
  m.send({ type: 'BID', at: 1 })
  m.send({ type: 'BIDS_CLOSED', at: 2, bids: 2 })
  const snap = JSON.parse(JSON.stringify(m.persisted())) as unknown
  const r = new DeploymentStateMachine({ id: 'd1', kind: 'service', desired: 2, at: 0 }, snap)
  t.equal(r.phase, 'committing')
  t.same(r.context.history, m.context.history)
})

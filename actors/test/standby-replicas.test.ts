// What a standby orchestrator keeps, tried as an attacker would: only snapshots from the nodes it stands by
// for, carrying their capability naming it, of a well-formed deployment; anything else is refused and kept not.
import t from 'tap'
import { issueCapability } from '../../identity/capabilities.ts'
import { NodeKey } from '../../identity/keys.ts'
import { InvalidTermsError, NotStandbyError } from '../errors.ts'
import { ORCHESTRATE_ABILITY } from '../provider/orchestrator-authority.ts'
import { StandbyReplicas } from '../orchestrator/standby.ts'

const owner = NodeKey.generate()
const standby = NodeKey.generate()
const mallory = NodeKey.generate()
const token = (issuer: NodeKey, audience: string) => issueCapability(issuer, { audience, abilities: [{ can: ORCHESTRATE_ABILITY }], ttlMs: 60_000 })
const record = (id: string) => ({ v: 2, id, savedAt: 1, snapshot: { value: { live: { health: 'running', repair: 'idle' } }, context: { id, replicas: [] } } })

t.test('a standby keeps its owner node\'s snapshots and nothing else', async (t) => {
  const r = new StandbyReplicas({ self: standby.did, standbyFor: [owner.did] })
  await r.accept(owner.did, { record: record('web-1'), token: await token(owner, standby.did) })
  t.same(r.live(owner.did).map((b) => b.record.id), ['web-1'])
  // a stranger, even with a token of its own
  await t.rejects(r.accept(mallory.did, { record: record('evil'), token: await token(mallory, standby.did) }), NotStandbyError)
  // the owner's name without the owner's capability (a token mallory made, or one for another audience)
  await t.rejects(r.accept(owner.did, { record: record('evil'), token: await token(mallory, standby.did) }), NotStandbyError)
  await t.rejects(r.accept(owner.did, { record: record('evil'), token: await token(owner, mallory.did) }), NotStandbyError)
  // malformed: an id that is not an actor name (a path), a snapshot of another deployment, no replicas
  for (const bad of [{ ...record('../x'), id: '../x' }, { ...record('a/b'), id: 'a/b' }, { ...record('web-2'), snapshot: { context: { id: 'other', replicas: [] } } }, { v: 2, id: 'web-3', savedAt: 1, snapshot: { context: { id: 'web-3' } } }, null]) {
    await t.rejects(r.accept(owner.did, { record: bad, token: await token(owner, standby.did) }), InvalidTermsError)
  }
  t.same(r.live(owner.did).map((b) => b.record.id), ['web-1'], 'nothing refused was kept')
  t.same(r.live(mallory.did), [])
})

t.test('a create waits for its standby: replicated() resolves once the latest snapshot of it was confirmed, false when the standby does not answer', async (t) => {
  const { StandbyReplicator } = await import('../orchestrator/standby.ts')
  const sent: string[] = []
  let answer: (() => void) | undefined
  let failing = false
  const rep = new StandbyReplicator({
    standby: standby.did,
    send: async (body) => {
      sent.push(`${body.record.id}@${body.record.savedAt}`)
      if (failing) throw new Error('unreachable')
      await new Promise<void>((r) => (answer = r))
    },
    warn: () => {},
  })
  t.teardown(() => rep.stop())
  await rep.start(owner)
  t.equal(await rep.replicated('web-1', 50), true, 'nothing pending for it: already replicated')
  rep.put({ ...record('web-1'), savedAt: 1 } as never)
  let done: boolean | undefined
  const waiting = rep.replicated('web-1', 5_000).then((ok) => (done = ok))
  await new Promise((r) => setTimeout(r, 20))
  rep.put({ ...record('web-1'), savedAt: 2 } as never) // a newer snapshot while the first is on its way
  answer!()
  await new Promise((r) => setTimeout(r, 20))
  t.equal(done, undefined, 'the first confirmed is not enough: a newer snapshot of it is pending')
  answer!()
  await waiting
  t.equal(done, true, 'resolved once its latest snapshot was confirmed')
  t.same(sent, ['web-1@1', 'web-1@2'])

  failing = true
  rep.put({ ...record('web-2'), savedAt: 3 } as never)
  t.equal(await rep.replicated('web-2', 100), false, 'a standby that does not answer: false after the bound, the create goes on')
})

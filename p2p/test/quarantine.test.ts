// PeerQuarantine: a peer is denied for the time given, then allowed again; 0 quarantines nobody.
import t from 'tap'
import { peerIdFromDid } from '../../identity/did-key.ts'
import { NodeKey } from '../../identity/keys.ts'
import { PeerQuarantine } from '../quarantine.ts'

t.test('a quarantined peer is denied until its time is up; others are not', async (t) => {
  let now = 1_000
  const q = new PeerQuarantine(() => now)
  const bad = peerIdFromDid(NodeKey.generate().did)
  const good = peerIdFromDid(NodeKey.generate().did)
  q.add(bad, 5_000)
  t.ok(q.denies(bad))
  t.notOk(q.denies(good))
  now += 4_999
  t.ok(q.denies(bad), 'still denied just before the end')
  now += 1
  t.notOk(q.denies(bad), 'allowed once the time is up')
  t.equal(q.size, 0, 'the expired entry is gone')
  q.add(good, 0)
  t.notOk(q.denies(good), 'a quarantine of 0 ms denies nothing')
})

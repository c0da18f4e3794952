import t from 'tap'
import { TrustBook } from '../book.ts'
import { defaultTrustPolicy } from '../policy.ts'
import { judgeKnownAnswer, judgeRuns } from '../quorum.ts'

const book = () => new TrustBook({ policy: defaultTrustPolicy, judgeUptime: false, self: 'did:v' })

t.test('consecutive valid results raise trust, one wrong result resets it', async (t) => {
  const b = book()
  for (let i = 0; i < 8; i++) b.apply('n', 'valid', 'replication', i)
  const high = b.trust('n', 8)
  t.ok(high > 0.6, `8 valid results: ${high}`)
  b.apply('n', 'invalid', 'replication', 9)
  t.equal(b.trust('n', 9), 0)
  t.equal(b.view('n', 9)!.streak, 0)
  t.equal(b.view('n', 9)!.strikes, 1)
  t.notOk(b.isQuarantined('n'), 'one strike is not a quarantine')
})

t.test('past the strike threshold a node is quarantined, with the reason and the judge', async (t) => {
  const b = book()
  t.same(b.apply('n', 'invalid', 'known-answer', 1), [])
  const ev = b.apply('n', 'invalid', 'replication', 2)
  t.equal(ev.length, 1)
  t.equal(ev[0]!.kind, 'quarantined')
  t.ok(b.isQuarantined('n'))
  t.equal(b.view('n', 2)!.quarantine!.by, 'did:v')
  t.match(b.view('n', 2)!.quarantine!.reason, /2 strikes \(2 wrong/)
  t.equal(b.trust('n', 2), 0, 'a quarantined node has trust 0')
})

t.test('dropped runs strike half; runs returned forgive them; honest noise never quarantines', async (t) => {
  const b = book()
  b.apply('n', 'missed', 'replication', 1)
  b.apply('n', 'missed', 'replication', 2)
  t.equal(b.view('n', 2)!.strikes, 1)
  for (let i = 0; i < 100; i++) b.returned('n', 3)
  t.equal(b.view('n', 3)!.strikes, 0, 'two dropped runs forgiven by 100 returned')
  b.apply('n', 'missed', 'replication', 4)
  b.apply('n', 'missed', 'replication', 5)
  b.apply('n', 'missed', 'replication', 6)
  t.notOk(b.isQuarantined('n'))
  b.apply('n', 'missed', 'replication', 7)
  t.ok(b.isQuarantined('n'), 'four drops in a row: quarantined')
})

t.test('a quarantined node is readmitted on probation after passing validation tasks in a row', async (t) => {
  const b = book()
  b.apply('n', 'invalid', 'replication', 1)
  b.apply('n', 'invalid', 'replication', 2)
  t.ok(b.isQuarantined('n'))
  b.apply('n', 'valid', 'known-answer', 3)
  b.apply('n', 'invalid', 'known-answer', 4)
  b.apply('n', 'valid', 'known-answer', 5)
  b.apply('n', 'valid', 'replication', 5) // only validation tasks count while quarantined
  t.ok(b.isQuarantined('n'), 'a failed task restarts the count')
  b.apply('n', 'valid', 'known-answer', 6)
  const ev = b.apply('n', 'valid', 'known-answer', 7)
  t.same(ev.map((e) => e.kind), ['readmitted'])
  t.notOk(b.isQuarantined('n'))
  t.equal(b.view('n', 7)!.strikes, 1, 'on probation: one strike short')
  t.same(b.apply('n', 'invalid', 'replication', 8).map((e) => e.kind), ['quarantined'], 'one more wrong result and it is back')
})

t.test('runs agree: both valid; disagree: a third run on another owner decides; a tie strikes nobody', async (t) => {
  const a = { node: 'a', owner: 'oa', digest: 'x' }
  const s1 = judgeRuns([a, { node: 'b', owner: 'ob', digest: 'x' }], 3)
  t.equal(s1.kind, 'decided')
  t.same([...s1.verdicts], [['a', 'valid'], ['b', 'valid']])
  const s2 = judgeRuns([a, { node: 'b', owner: 'ob', digest: 'y' }], 3)
  t.equal(s2.kind, 'needs-run')
  if (s2.kind === 'needs-run') t.same([...s2.excludeOwners].sort(), ['oa', 'ob'])
  const s3 = judgeRuns([a, { node: 'b', owner: 'ob', digest: 'y' }, { node: 'c', owner: 'oc', digest: 'y' }], 3)
  t.equal(s3.kind, 'decided')
  t.same(Object.fromEntries(s3.verdicts), { a: 'invalid', b: 'valid', c: 'valid' })
  const s4 = judgeRuns([a, { node: 'b', owner: 'ob', digest: 'y' }, { node: 'c', owner: 'oc', digest: 'z' }], 3)
  t.equal(s4.kind, 'inconclusive')
  t.equal(s4.verdicts.size, 0)
  const same = judgeRuns([a, { node: 'a2', owner: 'oa', digest: 'x' }], 3)
  t.equal(same.kind, 'needs-run', 'two nodes of one owner agreeing is not a quorum')
  const dropped = judgeRuns([a, { node: 'b', owner: 'ob', digest: null }], 3)
  t.equal(dropped.kind, 'needs-run')
  t.equal(dropped.verdicts.get('b'), 'missed')
  t.equal(judgeKnownAnswer('d', 'd'), 'valid')
  t.equal(judgeKnownAnswer('d', 'e'), 'invalid')
  t.equal(judgeKnownAnswer('d', null), 'missed')
})

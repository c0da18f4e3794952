// The enrolment verdicts (trust/enrolment.ts) and what they do to a node's record (trust/book.ts).
import t from 'tap'
import { enrolmentWorkers, judgeEnrolment, parseEnrolment, refusedClaim, ENROL_MAX_WORKERS } from '../enrolment.ts'
import { TrustBook } from '../book.ts'
import { defaultTrustPolicy } from '../policy.ts'

t.test('the measure is read from the benchmark\'s own line only', async (t) => {
  t.same(parseEnrolment(['noise', 'enrolment single=100 total=380 workers=4'], 4), { single: 100, total: 380, workers: 4, efficiency: 0.95 })
  t.equal(parseEnrolment(['enrolment single=100 total=380 workers=8'], 4), undefined, 'a line for another number of workers is not it')
  t.equal(parseEnrolment(['enrolment single=0 total=0 workers=1'], 1), undefined, 'nothing counted: no measure')
  t.equal(parseEnrolment(['enrolment single=1e9 total=1 workers=1'], 1), undefined, 'digits only')
  t.equal(parseEnrolment([], 1), undefined)
})

t.test('workers follow the claim: whole cores, at least one, at most the cap', async (t) => {
  t.equal(enrolmentWorkers({ cpu: 0.5 }), 1)
  t.equal(enrolmentWorkers({ cpu: 3.9 }), 3)
  t.equal(enrolmentWorkers({ cpu: 1000 }), ENROL_MAX_WORKERS)
})

t.test('verdicts: cores that do not scale, and a claim that cannot be reserved, are inflated', async (t) => {
  const claimed = { cpu: 4, memoryBytes: 1 << 30 }
  t.equal(judgeEnrolment(claimed, { single: 100, total: 360, workers: 4, efficiency: 0.9 }, 1).verdict, 'passed')
  t.equal(judgeEnrolment(claimed, { single: 100, total: 120, workers: 4, efficiency: 0.3 }, 1).verdict, 'inflated')
  t.equal(judgeEnrolment({ cpu: 1, memoryBytes: 1 }, { single: 100, total: 40, workers: 1, efficiency: 0.4 }, 1).verdict, 'passed', 'one worker: nothing to scale, no verdict on noise')
  t.match(refusedClaim(claimed, 'InsufficientCapacityError: not enough cpu', 1), { verdict: 'inflated', measured: null })
})

t.test('in the book: inflated is a strike, passed is not; the record keeps the enrolment', async (t) => {
  const book = new TrustBook({ policy: { ...defaultTrustPolicy }, judgeUptime: false })
  const claimed = { cpu: 4, memoryBytes: 1 << 30 }
  t.same(book.enrolled('did:key:zHonest', judgeEnrolment(claimed, { single: 100, total: 390, workers: 4, efficiency: 0.975 }, 10)), [])
  const honest = book.view('did:key:zHonest', 10)!
  t.equal(honest.strikes, 0)
  t.equal(honest.enrolment?.verdict, 'passed')
  t.same(book.enrolled('did:key:zLiar', refusedClaim(claimed, 'no', 10)), [], 'one strike: not quarantined yet (policy: 2)')
  const liar = book.view('did:key:zLiar', 10)!
  t.equal(liar.strikes, defaultTrustPolicy.strikeInvalid)
  t.equal(liar.history.at(-1)?.by, 'enrolment')
  const events = book.enrolled('did:key:zLiar', refusedClaim(claimed, 'again', 11))
  t.equal(events[0]?.kind, 'quarantined', 'a second inflated enrolment quarantines it')
})

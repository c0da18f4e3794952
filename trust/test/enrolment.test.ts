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

t.test('an enrolment report is kept only when it is about this node, from a validator it trusts, and signed by it', async (t) => {
  const { NodeKey } = await import('../../identity/keys.ts')
  const { signEnrolmentReport, verifyEnrolmentReport } = await import('../enrolment-report.ts')
  const { InvalidTrustRecordError, TrustRecordSignatureError, UntrustedValidatorError } = await import('../errors.ts')
  const validator = NodeKey.generate()
  const attacker = NodeKey.generate()
  const self = NodeKey.generate().did
  const e = judgeEnrolment({ cpu: 2, memoryBytes: 2 ** 30 }, { single: 100, total: 190, workers: 2, efficiency: 0.95 }, 5)
  const trusts = (v: string) => v === validator.did
  const r = signEnrolmentReport(validator, self, e)
  t.same(verifyEnrolmentReport(r, self, trusts).enrolment.verdict, 'passed')
  t.throws(() => verifyEnrolmentReport(signEnrolmentReport(validator, NodeKey.generate().did, e), self, trusts), InvalidTrustRecordError, 'about another node')
  t.throws(() => verifyEnrolmentReport(signEnrolmentReport(attacker, self, e), self, trusts), UntrustedValidatorError, 'from a validator it does not trust')
  const forged = { body: { ...r.body, enrolment: { ...r.body.enrolment, verdict: 'inflated' } }, sig: r.sig }
  t.throws(() => verifyEnrolmentReport(forged, self, trusts), TrustRecordSignatureError, 'a verdict changed after signing')
  const impostor = { body: r.body, sig: signEnrolmentReport(attacker, self, e).sig }
  t.throws(() => verifyEnrolmentReport(impostor, self, trusts), TrustRecordSignatureError, 'signed by someone else in the validator\'s name')
  for (const bad of [null, {}, { body: { ...r.body, extra: 1 }, sig: r.sig }, { body: { ...r.body, enrolment: { ...r.body.enrolment, verdict: 'great' } }, sig: r.sig }]) {
    t.throws(() => verifyEnrolmentReport(bad, self, trusts), InvalidTrustRecordError, `malformed: ${JSON.stringify(bad)?.slice(0, 60)}`)
  }
})

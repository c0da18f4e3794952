// Attacker-style tests of quarantine records (spec/security.md "Worker trust"): forged, altered, replayed,
// untrusted, expired and malformed records are refused with a typed error before anything is applied.
import t from 'tap'
import { NodeKey } from '../../identity/keys.ts'
import { signTrustRecord, verifyTrustRecord, type SignedTrustRecord, type TrustRecordCheck } from '../record.ts'
import { ExpiredTrustRecordError, InvalidTrustRecordError, ReplayedTrustRecordError, TrustRecordSignatureError, UntrustedValidatorError } from '../errors.ts'
import { FaultInjectionRefusedError } from '../errors.ts'
import { testFaultsFrom } from '../faults.ts'

const validator = NodeKey.generate()
const stranger = NodeKey.generate()
const node = NodeKey.generate().did
const now = 1_800_000_000_000
const evidence = { strikes: 2, invalid: 2, missed: 0, judged: 3 }
const record = (key = validator, issuedAt = now, kind: 'quarantine' | 'readmission' = 'quarantine'): SignedTrustRecord =>
  signTrustRecord(key, { kind, node, issuedAt, reason: '2 wrong results', evidence })

function checker(applied = new Map<string, number>()): TrustRecordCheck {
  return { now, trusts: (v) => v === validator.did, lastApplied: (v, n) => applied.get(`${v} ${n}`) }
}

t.test('a record of a trusted validator verifies and names what it says', async (t) => {
  const b = verifyTrustRecord(record(), checker())
  t.equal(b.kind, 'quarantine')
  t.equal(b.node, node)
  t.equal(b.validator, validator.did)
})

t.test('a forged record (signed by someone else in the validator\'s name) is refused with TrustRecordSignatureError', async (t) => {
  const r = record(stranger)
  const forged = { ...r, body: { ...r.body, validator: validator.did } }
  t.throws(() => verifyTrustRecord(forged, checker()), TrustRecordSignatureError)
})

t.test('an altered record (reason or node changed after signing) is refused with TrustRecordSignatureError', async (t) => {
  const r = record()
  t.throws(() => verifyTrustRecord({ ...r, body: { ...r.body, node: NodeKey.generate().did } }, checker()), TrustRecordSignatureError)
  t.throws(() => verifyTrustRecord({ ...r, body: { ...r.body, kind: 'readmission' } }, checker()), TrustRecordSignatureError)
})

t.test('a replayed record, or an older one after a newer, is refused with ReplayedTrustRecordError', async (t) => {
  const applied = new Map<string, number>()
  const q = record(validator, now - 10_000)
  const b = verifyTrustRecord(q, checker(applied))
  applied.set(`${b.validator} ${b.node}`, b.issuedAt)
  t.throws(() => verifyTrustRecord(q, checker(applied)), ReplayedTrustRecordError, 'the same record again')
  const readmit = record(validator, now - 5000, 'readmission')
  verifyTrustRecord(readmit, checker(applied))
  applied.set(`${validator.did} ${node}`, now - 5000)
  t.throws(() => verifyTrustRecord(q, checker(applied)), ReplayedTrustRecordError, 'the old quarantine replayed after the readmission')
})

t.test('a genuine record of a validator this node does not trust is refused with UntrustedValidatorError', async (t) => {
  t.throws(() => verifyTrustRecord(record(stranger), checker()), UntrustedValidatorError)
})

t.test('expired, future and malformed records are refused with typed errors', async (t) => {
  t.throws(() => verifyTrustRecord(record(validator, now - 8 * 24 * 3600_000), checker()), ExpiredTrustRecordError)
  t.throws(() => verifyTrustRecord(record(validator, now + 3600_000), checker()), ExpiredTrustRecordError)
  t.throws(() => verifyTrustRecord({ body: { v: 2 }, sig: 'x' }, checker()), InvalidTrustRecordError)
  t.throws(() => verifyTrustRecord(null, checker()), InvalidTrustRecordError)
  const r = record()
  t.throws(() => verifyTrustRecord({ ...r, body: { ...r.body, extra: 1 } }, checker()), InvalidTrustRecordError)
})

t.test('the cheat option is refused without NOIR_TEST_FAULTS=1, and checked with it', async (t) => {
  t.equal(testFaultsFrom(undefined, {}), undefined)
  t.throws(() => testFaultsFrom({ wrongResults: 1 }, {}), FaultInjectionRefusedError)
  t.throws(() => testFaultsFrom({ wrongResults: 1 }, { NOIR_TEST_FAULTS: 'yes' }), FaultInjectionRefusedError)
  t.same(testFaultsFrom({ wrongResults: 1 }, { NOIR_TEST_FAULTS: '1' }), { wrongResults: 1, dropWork: 0, inflateCapacity: 1, shortMemory: 1 })
  t.throws(() => testFaultsFrom({ wrongResults: 2, lie: true }, { NOIR_TEST_FAULTS: '1' }), FaultInjectionRefusedError)
  t.equal(testFaultsFrom({ shortMemory: 4 }, { NOIR_TEST_FAULTS: '1' })?.shortMemory, 4)
  t.throws(() => testFaultsFrom({ shortMemory: 0.5 }, { NOIR_TEST_FAULTS: '1' }), FaultInjectionRefusedError)
})

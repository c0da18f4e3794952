// A validator's enrolment result, told to the node it measured (spec/trust.md "Enrolment"): the node learns
// what was claimed, what was measured and the verdict, signed by the validator so the node (and its owner's
// console) can show it as evidence. The signature covers
//   UTF-8("noir:enrolment-report:v1") || 0x00 || RFC 8785 canonical JSON of the body
// by the validator named in the body. A node keeps one per validator it takes trust records from.
import { signBody, verifyBody } from '../actors/contracts/signed.ts'
import { InvalidSignatureError } from '../actors/errors.ts'
import type { NodeKey } from '../identity/keys.ts'
import { isDidKey } from '../identity/did-key.ts'
import { ENROLMENT_FAILURES, type Enrolment, type EnrolmentFailure, type EnrolmentStore } from './enrolment.ts'
import { InvalidTrustRecordError, TrustRecordSignatureError, UntrustedValidatorError } from './errors.ts'

export const ENROLMENT_REPORT_TAG = 'noir:enrolment-report:v1'

export interface EnrolmentReportBody {
  v: 1
  node: string
  validator: string
  enrolment: Enrolment
}

export interface SignedEnrolmentReport {
  body: EnrolmentReportBody
  sig: string
}

export function signEnrolmentReport(key: NodeKey, node: string, enrolment: Enrolment): SignedEnrolmentReport {
  const body: EnrolmentReportBody = { v: 1, node, validator: key.did, enrolment: JSON.parse(JSON.stringify(enrolment)) as Enrolment }
  return { body, sig: signBody(key, ENROLMENT_REPORT_TAG, body) }
}

const num = (v: unknown, min = 0): boolean => typeof v === 'number' && Number.isFinite(v) && v >= min
const STORE_KEYS = new Set(['mib', 'written', 'read', 'intact', 'writeMiBps', 'readMiBps', 'direct', 'roomBytes', 'limitBytes'])
/** A memory or disk measure: absent (a report from before they were measured, or not measured) or well formed. */
const store = (v: unknown): boolean => {
  if (v === undefined) return true
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false
  const s = v as Partial<EnrolmentStore>
  return Object.keys(s).every((k) => STORE_KEYS.has(k)) && num(s.mib) && num(s.written) && num(s.read) && typeof s.intact === 'boolean'
    && num(s.writeMiBps) && num(s.readMiBps) && (s.direct === undefined || typeof s.direct === 'boolean')
    && (s.roomBytes === undefined || num(s.roomBytes)) && (s.limitBytes === undefined || num(s.limitBytes))
}
const failures = (v: unknown): boolean => v === undefined || (Array.isArray(v) && v.length <= ENROLMENT_FAILURES.length && v.every((f) => ENROLMENT_FAILURES.includes(f as EnrolmentFailure)))

/**
 * Checks a report handed to node `self`: its shape, that it is about `self`, from a validator `self` takes
 * records from, signed by it. The body; InvalidTrustRecordError, UntrustedValidatorError or
 * TrustRecordSignatureError otherwise.
 */
export function verifyEnrolmentReport(raw: unknown, self: string, trusts: (validator: string) => boolean): EnrolmentReportBody {
  const r = raw as Partial<SignedEnrolmentReport> | null
  const b = r?.body as Partial<EnrolmentReportBody> | undefined
  const e = b?.enrolment as Partial<Enrolment> | undefined
  const m = e?.measured
  const shaped = typeof r === 'object' && r !== null && typeof r.sig === 'string' && typeof b === 'object' && b !== null && b.v === 1
    && typeof b.node === 'string' && typeof b.validator === 'string' && isDidKey(b.validator) && typeof e === 'object' && e !== null
    && num(e.at) && (e.verdict === 'passed' || e.verdict === 'inflated') && typeof e.reason === 'string' && e.reason.length <= 500
    && typeof e.claimed === 'object' && e.claimed !== null && num(e.claimed.cpu) && num(e.claimed.memoryBytes)
    && (e.claimed.diskBytes === undefined || num(e.claimed.diskBytes)) && failures(e.failed)
    && (m === null || (typeof m === 'object' && m !== undefined && num(m.single) && num(m.total) && num(m.workers, 1) && num(m.efficiency) && store(m.memory) && store(m.disk)))
    && Object.keys(b).length === 4
  if (!shaped) throw new InvalidTrustRecordError('an enrolment report is { body: { v: 1, node, validator, enrolment: { at, claimed, measured, verdict, reason, failed? } }, sig }')
  if (b.node !== self) throw new InvalidTrustRecordError(`this report is about ${b.node}, not this node`)
  if (!trusts(b.validator!)) throw new UntrustedValidatorError(`${b.validator} is not a validator this node takes records from (config.json trust.validators)`)
  try {
    verifyBody(b.validator!, ENROLMENT_REPORT_TAG, b, r.sig, 'enrolment report')
  } catch (err) {
    if (err instanceof InvalidSignatureError) throw new TrustRecordSignatureError(`the report's signature does not verify for ${b.validator}`)
    throw err
  }
  return b as EnrolmentReportBody
}

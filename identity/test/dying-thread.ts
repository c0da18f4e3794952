// A signature thread that answers the first job of the ring and then dies (identity/test/signature-worker-verify.test.ts
// points a SignatureWorker at it): the first JOB_VERIFY is answered by the thread, those after it must be
// verified inline by the main thread, none lost and none answered twice.
import { workerData } from 'node:worker_threads'
import { verifyEd25519ForDid } from '../keys.ts'
import { CHECKED, OUTCOME_BAD_SIGNATURE, OUTCOME_PASSED, OUTCOME_SLOTS, READ_POS, WRITE_POS, pad4, recordHeaderBytes, type RingInit } from '../signature-ring.ts'

const init = workerData as RingInit
const control = new Int32Array(init.control)
const ring = new Uint8Array(init.ring)
const view = new DataView(init.ring)
const outcomes = new Uint8Array(init.outcomes)
// wait until three jobs are in the ring (the test writes them in one go), answer the first, die
const minBytes = 3 * 64
while (((Atomics.load(control, WRITE_POS) - Atomics.load(control, READ_POS)) | 0) < minBytes) Atomics.wait(control, WRITE_POS, Atomics.load(control, WRITE_POS), 50)
const total = view.getUint32(0, true)
const didLength = ring[5]!
const did = Buffer.from(init.ring, 6, didLength).toString('latin1')
const body = recordHeaderBytes(didLength)
const length = view.getUint32(body, true)
const ok = verifyEd25519ForDid(did, ring.subarray(body + 4, body + 4 + length), ring.subarray(body + 4 + pad4(length), body + 4 + pad4(length) + 64))
Atomics.store(outcomes, 0 & (OUTCOME_SLOTS - 1), ok ? OUTCOME_PASSED : OUTCOME_BAD_SIGNATURE)
Atomics.add(control, CHECKED, 1)
Atomics.store(control, READ_POS, total)
Atomics.notify(control, CHECKED)
throw new Error('this signature thread dies on purpose after one job')

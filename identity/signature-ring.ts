// The shared memory between SignatureWorker (main thread) and its thread (spec/envelope.md, "Concurrent
// signature checks"). postMessage costs 12-19 µs per message on these machines when the thread is idle, more
// than the check it carries, so jobs travel through a ring buffer in a SharedArrayBuffer instead and the
// thread sleeps in Atomics.wait. Seal signatures come back through a second, small ring; only failures
// (rare) travel by postMessage.
//
// Positions are byte counts since the start, kept modulo 2^32 in Int32 slots (compare with `(a - b) | 0`).
// Records are 4-byte aligned and never straddle the end of the ring: a record that does not fit is preceded
// by a WRAP marker and starts again at offset 0. Record = u32 length of the whole record | u8 job | u8 DID
// length | DID (ASCII) | padding to 4 | the job's fields (little-endian):
//   JOB_CHECK: u32 wire length | wire bytes | padding to 4                 (a self-signed envelope)
//   JOB_SEAL:  u32 count | 64-byte signature | count x (u32 length | payload | padding to 4)
//   JOB_SIGN:  u32 token | u32 count | count x (u32 length | payload | padding to 4)   (DID: the signer)
//   JOB_VERIFY: u32 message length | message | padding to 4 | 64-byte signature      (DID: the signer)
// A JOB_VERIFY's outcome (a detached signature over given bytes, as a signed bid's) travels in the outcomes
// array, indexed by the job's ticket modulo OUTCOME_SLOTS: the main thread zeroes the slot as it writes the
// record, the thread writes OUTCOME_* before CHECKED moves past the ticket. No postMessage, so a pipelined
// caller can collect outcomes without turning its event loop.

export const RING_BYTES = 8 * 1024 * 1024
export const WRAP = 0xffffffff

export const JOB_CHECK = 1
export const JOB_SEAL = 2
export const JOB_SIGN = 3
export const JOB_VERIFY = 4

/** Int32 slots of the control block. */
export const WRITE_POS = 0
export const READ_POS = 1
/** Records fully handled by the thread (its tickets are 0, 1, 2, ... in submission order). */
export const CHECKED = 2
/** Failures the thread has posted; bumped before CHECKED moves past a failed ticket. */
export const FAILURES_POSTED = 3
export const SLEEPING = 4
export const STOP = 5
/** Ed25519 verifications the thread has performed. */
export const SIGNATURE_CHECKS = 6
/** Seal signatures written to the results ring / read from it (record counts). */
export const RESULTS_WRITTEN = 7
export const RESULTS_READ = 8
/** The thread is in a long timed wait (LAZY_MS): wake it only for a job someone waits on. */
export const LAZY = 9
/** Signers whose public keys the thread should keep decoded (its did:key cache is sized for them). */
export const KEY_CACHE_SIGNERS = 10
/** The thread's own CPU time in µs, modulo 2^32 (published as it works; compare with `(a - b) | 0`). */
export const THREAD_CPU_US = 11
export const CONTROL_SLOTS = 12

/** Outcome slots of JOB_VERIFY (one byte per ticket, modulo); the backlog never exceeds it. */
export const OUTCOME_SLOTS = 65_536
export const OUTCOME_PENDING = 0
export const OUTCOME_PASSED = 1
export const OUTCOME_BAD_SIGNATURE = 2
export const OUTCOME_UNKNOWN_KEY = 3

/** The results ring: RESULT_SLOTS records of u32 token | 64-byte signature. */
export const RESULT_SLOTS = 4096
export const RESULT_BYTES = 68

export function pad4(n: number): number {
  return (n + 3) & ~3
}

/** Bytes the record header (length, job, DID) takes. */
export function recordHeaderBytes(didLength: number): number {
  return 4 + pad4(2 + didLength)
}

/** A failure the thread reports by postMessage. */
export interface RingFailure {
  ticket: number
  name: string
  message: string
}

/** What the main thread hands its thread at start. */
export interface RingInit {
  control: SharedArrayBuffer
  ring: SharedArrayBuffer
  results: SharedArrayBuffer
  /** OUTCOME_SLOTS bytes: the outcomes of JOB_VERIFY by ticket. */
  outcomes: SharedArrayBuffer
  batchCacheSize: number
  /** The seed of the key that signs seals (JOB_SIGN); absent when the worker only checks. */
  signerSeed?: Uint8Array
}

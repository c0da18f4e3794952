// The shared memory between SignatureWorker (main thread) and its thread (spec/envelope.md, "Concurrent
// signature checks"). postMessage costs 12-19 µs per message on these machines when the thread is idle, more
// than the check it carries, so envelopes travel through a ring buffer in a SharedArrayBuffer instead and
// the thread sleeps in Atomics.wait. Only failures (rare) travel by postMessage.
//
// Positions are byte counts since the start, kept modulo 2^32 in Int32 slots (compare with `(a - b) | 0`).
// Records are 4-byte aligned and never straddle the end of the ring: a record that does not fit is preceded
// by a WRAP marker and starts again at offset 0. Record = u32 length of the whole record | u8 DID length |
// DID (ASCII) | padding to 4 | u32 wire length | wire bytes | padding to 4.

export const RING_BYTES = 8 * 1024 * 1024
export const WRAP = 0xffffffff

/** Int32 slots of the control block. */
export const WRITE_POS = 0
export const READ_POS = 1
/** Records fully checked by the thread (its tickets are 0, 1, 2, ... in submission order). */
export const CHECKED = 2
/** Failures the thread has posted; bumped before CHECKED moves past a failed ticket. */
export const FAILURES_POSTED = 3
export const SLEEPING = 4
export const STOP = 5
/** Ed25519 verifications the thread has performed. */
export const SIGNATURE_CHECKS = 6
export const CONTROL_SLOTS = 8

export function pad4(n: number): number {
  return (n + 3) & ~3
}

/** Bytes one record takes in the ring. */
export function recordBytes(didLength: number, wireLength: number): number {
  return 4 + pad4(1 + didLength) + 4 + pad4(wireLength)
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
  batchCacheSize: number
}

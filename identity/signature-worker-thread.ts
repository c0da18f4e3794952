// The signature worker's thread (identity/signature-worker.ts owns it). It reads envelopes from the shared
// ring (identity/signature-ring.ts), checks each signature with a SignatureChecker (which remembers verified
// batch roots, so a Merkle batch costs one Ed25519 verification), publishes how far it got, and posts the
// failures. It sleeps in Atomics.wait while the ring is empty.
import { parentPort, workerData } from 'node:worker_threads'
import { decodeWireHeader } from './envelope-wire.ts'
import { IdentityError } from './errors.ts'
import { SignatureChecker } from './signature-checker.ts'
import { CHECKED, FAILURES_POSTED, READ_POS, SIGNATURE_CHECKS, SLEEPING, STOP, WRAP, WRITE_POS, pad4, type RingFailure, type RingInit } from './signature-ring.ts'

const port = parentPort
if (port === null) throw new Error('signature-worker-thread.ts runs only as a worker thread')
const init = workerData as RingInit
const control = new Int32Array(init.control)
const ring = new Uint8Array(init.ring)
const view = new DataView(init.ring)
const mask = ring.byteLength - 1
const checker = new SignatureChecker(init.batchCacheSize)

function checkOne(at: number): number {
  const total = view.getUint32(at, true)
  const didLength = ring[at + 4]!
  const did = Buffer.from(init.ring, at + 5, didLength).toString('latin1')
  const wireAt = at + 4 + pad4(1 + didLength)
  const wireLength = view.getUint32(wireAt, true)
  // a view: the main thread reuses this part of the ring only after READ_POS moves past it, and the checker
  // copies whatever it keeps
  const wire = ring.subarray(wireAt + 4, wireAt + 4 + wireLength)
  try {
    checker.check(did, decodeWireHeader(wire), '')
  } catch (err) {
    const e = err instanceof IdentityError ? err : new IdentityError(err instanceof Error ? err.message : String(err))
    const failure: RingFailure = { ticket: Atomics.load(control, CHECKED), name: e.name, message: e.message }
    port!.postMessage(failure)
    Atomics.add(control, FAILURES_POSTED, 1)
  }
  return total
}

// While envelopes keep coming the thread polls the ring every POLL_MS on its own, so the main thread need not
// wake it (a futex wake per turn cost the receiver ~9% of its time); after IDLE_MS without work it sleeps
// until woken (SLEEPING tells the main thread to wake it).
const POLL_MS = 1
const IDLE_MS = 100
let lastWork = performance.now()
for (;;) {
  const write = Atomics.load(control, WRITE_POS)
  let read = Atomics.load(control, READ_POS)
  if (read === write) {
    if (Atomics.load(control, STOP) !== 0) break
    if (performance.now() - lastWork < IDLE_MS) {
      Atomics.wait(control, WRITE_POS, write, POLL_MS)
      continue
    }
    Atomics.store(control, SLEEPING, 1)
    if (Atomics.load(control, WRITE_POS) === write) Atomics.wait(control, WRITE_POS, write, 200)
    Atomics.store(control, SLEEPING, 0)
    continue
  }
  lastWork = performance.now()
  while (((write - read) | 0) > 0) {
    const at = read & mask
    if (view.getUint32(at, true) === WRAP) {
      read = (read + (ring.byteLength - at)) | 0
      continue
    }
    read = (read + checkOne(at)) | 0
    Atomics.store(control, SIGNATURE_CHECKS, checker.signatureChecks)
    Atomics.add(control, CHECKED, 1)
    Atomics.store(control, READ_POS, read)
  }
}

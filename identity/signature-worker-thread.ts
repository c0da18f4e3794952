// The signature worker's thread (identity/signature-worker.ts owns it). It reads jobs from the shared ring
// (identity/signature-ring.ts): checks self-signed envelopes with a SignatureChecker (which remembers verified
// batch roots, so a Merkle batch costs one Ed25519 verification), checks batch seals of sealed streams, and
// signs seals with the node's key, writing the signatures to the results ring. It publishes how far it got
// and posts failures. It also verifies detached signatures over given bytes (JOB_VERIFY: a signed bid picked
// by placement), writing each outcome to the outcomes array. It sleeps in Atomics.wait while the ring is empty.
import { parentPort, workerData } from 'node:worker_threads'
import { decodeWireHeader } from './envelope-wire.ts'
import { BadSignatureError, IdentityError } from './errors.ts'
import { NodeKey, sizePublicKeyCacheFor, verifyEd25519ForDid } from './keys.ts'
import { signSeal, verifySeal } from './sealed-stream.ts'
import { SignatureChecker } from './signature-checker.ts'
import {
  CHECKED,
  FAILURES_POSTED,
  JOB_CHECK,
  LAZY,
  JOB_SEAL,
  JOB_SIGN,
  JOB_VERIFY,
  KEY_CACHE_SIGNERS,
  OUTCOME_BAD_SIGNATURE,
  OUTCOME_PASSED,
  OUTCOME_SLOTS,
  OUTCOME_UNKNOWN_KEY,
  READ_POS,
  RESULT_BYTES,
  RESULT_SLOTS,
  RESULTS_READ,
  RESULTS_WRITTEN,
  SIGNATURE_CHECKS,
  SLEEPING,
  STOP,
  THREAD_CPU_US,
  WRAP,
  WRITE_POS,
  pad4,
  recordHeaderBytes,
  type RingFailure,
  type RingInit,
} from './signature-ring.ts'

const port = parentPort
if (port === null) throw new Error('signature-worker-thread.ts runs only as a worker thread')
const init = workerData as RingInit
const control = new Int32Array(init.control)
const ring = new Uint8Array(init.ring)
const view = new DataView(init.ring)
const results = new Uint8Array(init.results)
const resultsView = new DataView(init.results)
const mask = ring.byteLength - 1
const checker = new SignatureChecker(init.batchCacheSize)
const signer = init.signerSeed ? NodeKey.fromSeed(init.signerSeed) : undefined
const outcomes = new Uint8Array(init.outcomes)
let sealChecks = 0
let verifyChecks = 0
/** The signer count the key cache was last sized for. */
let keyCacheSigners = 0

/** JOB_VERIFY: one detached Ed25519 signature over `message` by `did`; its outcome goes to the ticket's slot. */
function verifyDetached(did: string, body: number): void {
  const wanted = Atomics.load(control, KEY_CACHE_SIGNERS)
  if (wanted !== keyCacheSigners) {
    keyCacheSigners = wanted
    sizePublicKeyCacheFor(wanted)
  }
  const length = view.getUint32(body, true)
  const message = ring.subarray(body + 4, body + 4 + length)
  const signature = ring.subarray(body + 4 + pad4(length), body + 4 + pad4(length) + 64)
  let outcome = OUTCOME_BAD_SIGNATURE
  try {
    verifyChecks++
    if (verifyEd25519ForDid(did, message, signature)) outcome = OUTCOME_PASSED
  } catch {
    outcome = OUTCOME_UNKNOWN_KEY // a DID that does not resolve to a key
  }
  Atomics.store(outcomes, Atomics.load(control, CHECKED) & (OUTCOME_SLOTS - 1), outcome)
}

/** count x (u32 length | bytes | pad4) starting at `at`, as views into the ring. */
function readPayloads(at: number, count: number): Uint8Array[] {
  const out: Uint8Array[] = []
  for (let k = 0; k < count; k++) {
    const n = view.getUint32(at, true)
    out.push(ring.subarray(at + 4, at + 4 + n))
    at += 4 + pad4(n)
  }
  return out
}

function writeResult(token: number, signature: Uint8Array): void {
  // the main thread reads results when it sends; wait (never drop) while the results ring is full
  while (((Atomics.load(control, RESULTS_WRITTEN) - Atomics.load(control, RESULTS_READ)) | 0) >= RESULT_SLOTS) {
    if (Atomics.load(control, STOP) !== 0) return
    Atomics.wait(control, RESULTS_READ, Atomics.load(control, RESULTS_READ), 1)
  }
  const slot = Atomics.load(control, RESULTS_WRITTEN) & (RESULT_SLOTS - 1)
  resultsView.setUint32(slot * RESULT_BYTES, token, true)
  results.set(signature, slot * RESULT_BYTES + 4)
  Atomics.add(control, RESULTS_WRITTEN, 1)
}

function handle(at: number): number {
  const total = view.getUint32(at, true)
  const job = ring[at + 4]!
  const didLength = ring[at + 5]!
  const did = Buffer.from(init.ring, at + 6, didLength).toString('latin1')
  const body = at + recordHeaderBytes(didLength)
  // views into the ring: the main thread reuses this part only after READ_POS moves past it, and the
  // checker copies whatever it keeps
  try {
    if (job === JOB_CHECK) {
      const wireLength = view.getUint32(body, true)
      checker.check(did, decodeWireHeader(ring.subarray(body + 4, body + 4 + wireLength)), '')
    } else if (job === JOB_SEAL) {
      const count = view.getUint32(body, true)
      const signature = ring.subarray(body + 4, body + 68)
      sealChecks++
      if (!verifySeal(did, readPayloads(body + 68, count), signature)) throw new BadSignatureError('seal does not verify')
    } else if (job === JOB_SIGN) {
      const token = view.getUint32(body, true)
      const count = view.getUint32(body + 4, true)
      if (signer === undefined) throw new IdentityError('this signature worker has no signing key')
      writeResult(token, signSeal(signer, readPayloads(body + 8, count)))
    } else if (job === JOB_VERIFY) {
      verifyDetached(did, body)
    }
  } catch (err) {
    const e = err instanceof IdentityError ? err : new IdentityError(err instanceof Error ? err.message : String(err))
    const failure: RingFailure = { ticket: Atomics.load(control, CHECKED), name: e.name, message: e.message }
    port!.postMessage(failure)
    Atomics.add(control, FAILURES_POSTED, 1)
  }
  return total
}

// The thread sleeps in three steps once the ring is empty, so that the main thread rarely has to wake it:
// - a 1 ms poll right after work (a busy receiver checking envelope after envelope keeps finding some);
// - then up to LAZY_ROUNDS waits of LAZY_MS (LAZY set): checks nobody waits on (the members were delivered
//   already) and seals to sign pile up and are done together; the main thread wakes it early only when
//   someone drains or seals pile up (spec/envelope.md);
// - then, still nothing, it sleeps until woken (SLEEPING: the main thread wakes it for any job).
// A wake-up costs the main thread a futex call and, on a busy 2-core machine, its core: the woken thread
// preempts the thread that woke it, which then waits out the thread's turn (~1.4 ms per wake-up measured on a
// sender of signed tells, 10% of its time; and the slowest asks were those that met a seal). A timed wait
// costs the thread ~40 µs of CPU here (a notified one ~8): LAZY_ROUNDS x LAZY_MS spans the default seal
// window a few times over, so steady traffic never needs a wake-up, and an idle thread stops waking itself
// after 100 ms.
const POLL_MS = 1
/** The thread's CPU time is published every this many jobs and whenever the ring runs dry. */
const CPU_EVERY = 16
const publishCpu = (): void => {
  const u = process.threadCpuUsage()
  Atomics.store(control, THREAD_CPU_US, (u.user + u.system) | 0)
}
let sinceCpu = 0
const LAZY_MS = 20
const LAZY_ROUNDS = 5
/** 1: just worked (poll next); 2: lazy waits next (lazyLeft of them); 0: sleep until woken. */
let phase = 0
let lazyLeft = 0
for (;;) {
  const write = Atomics.load(control, WRITE_POS)
  let read = Atomics.load(control, READ_POS)
  if (read === write) {
    if (sinceCpu > 0) {
      sinceCpu = 0
      publishCpu()
    }
    if (Atomics.load(control, STOP) !== 0) break
    if (phase === 1) {
      phase = 2
      lazyLeft = LAZY_ROUNDS
      Atomics.wait(control, WRITE_POS, write, POLL_MS)
      continue
    }
    if (phase === 2) {
      if (--lazyLeft === 0) phase = 0
      Atomics.store(control, LAZY, 1)
      if (Atomics.load(control, WRITE_POS) === write && Atomics.load(control, STOP) === 0) Atomics.wait(control, WRITE_POS, write, LAZY_MS)
      Atomics.store(control, LAZY, 0)
      continue
    }
    Atomics.store(control, SLEEPING, 1)
    if (Atomics.load(control, WRITE_POS) === write && Atomics.load(control, STOP) === 0) Atomics.wait(control, WRITE_POS, write)
    Atomics.store(control, SLEEPING, 0)
    continue
  }
  phase = 1
  while (((write - read) | 0) > 0) {
    const at = read & mask
    if (view.getUint32(at, true) === WRAP) {
      read = (read + (ring.byteLength - at)) | 0
      continue
    }
    read = (read + handle(at)) | 0
    Atomics.store(control, SIGNATURE_CHECKS, checker.signatureChecks + sealChecks + verifyChecks)
    Atomics.add(control, CHECKED, 1)
    Atomics.store(control, READ_POS, read)
    // a caller may block on CHECKED for its outcomes (SignatureWorker.awaitOutcomes); cheap when nobody does
    Atomics.notify(control, CHECKED)
    if (++sinceCpu >= CPU_EVERY) {
      sinceCpu = 0
      publishCpu()
    }
  }
}

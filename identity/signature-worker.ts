// Envelope signatures checked on a second core (spec/envelope.md, "Concurrent signature checks"). A receiver
// whose transport already authenticated the sender (a Noise session bound to the sender's did:key) hands each
// envelope here and goes on; the worker thread checks the signature and reports a failure a moment later.
// Envelopes reach the thread through a shared ring buffer (identity/signature-ring.ts), not postMessage.
//
// Deny by default still holds where it matters: when no thread runs (it could not start, crashed, or was
// stopped) or the ring is full, `submit` checks inline and throws, so the caller refuses the envelope before
// acting on it. Envelopes handed to a thread that dies are checked inline, so no failure goes unreported.
import { Worker } from 'node:worker_threads'
import type { WireHeader } from './envelope-wire.ts'
import { BadSignatureError, IdentityError, UnknownKeyError } from './errors.ts'
import { SignatureChecker } from './signature-checker.ts'
import {
  CHECKED,
  CONTROL_SLOTS,
  FAILURES_POSTED,
  READ_POS,
  RING_BYTES,
  SIGNATURE_CHECKS,
  SLEEPING,
  STOP,
  WRAP,
  WRITE_POS,
  pad4,
  recordBytes,
  type RingFailure,
  type RingInit,
} from './signature-ring.ts'

export interface SignatureWorkerOptions<C> {
  /** Called once per envelope whose signature failed, with what was submitted for it. */
  onFailure: (context: C, error: IdentityError) => void
  /** Envelopes that may wait for the thread; beyond that `submit` checks inline. Default 65,536. */
  maxBacklog?: number
  /** Verified batch roots remembered (on each side). Default 4096. */
  batchCacheSize?: number
}

/** An envelope handed to the thread, kept until the thread has checked it. */
interface Submitted<C> {
  did: string
  id: string
  /** Views into the caller's bytes: used only if the thread dies before checking it. */
  header: WireHeader
  context: C
}

const POLL_MS = 1

export class SignatureWorker<C> {
  readonly #onFailure: (context: C, error: IdentityError) => void
  readonly #maxBacklog: number
  readonly #batchCacheSize: number
  readonly #inline: SignatureChecker
  #worker: Worker | undefined
  #state: 'idle' | 'worker' | 'inline' | 'stopped' = 'idle'
  #control: Int32Array | undefined
  #ring: Buffer | undefined
  #view: DataView | undefined
  /** Envelopes submitted to the thread and not known to be checked; #queue[#head] has ticket #headTicket. */
  #queue: (Submitted<C> | undefined)[] = []
  #head = 0
  #headTicket = 0
  #failuresReceived = 0
  /** Ticket of the last failure reported from the thread (so an inline re-check does not report it twice). */
  #reportedThrough: number | undefined
  #drainWaiters: (() => void)[] = []
  #pollTimer: NodeJS.Timeout | undefined
  #wakeScheduled = false

  constructor(opts: SignatureWorkerOptions<C>) {
    this.#onFailure = opts.onFailure
    this.#maxBacklog = opts.maxBacklog ?? 65_536
    this.#batchCacheSize = opts.batchCacheSize ?? 4096
    this.#inline = new SignatureChecker(this.#batchCacheSize)
  }

  /** 'worker' while a thread checks signatures, 'inline' after it failed, 'idle' before the first submit. */
  get mode(): 'idle' | 'worker' | 'inline' | 'stopped' {
    return this.#state
  }

  /** Envelopes submitted and not yet known to be checked. */
  get backlog(): number {
    this.#reap()
    return this.#queue.length - this.#head
  }

  /** Ed25519 verifications performed so far, here and in the thread. */
  get signatureChecks(): number {
    return this.#inline.signatureChecks + (this.#control ? Atomics.load(this.#control, SIGNATURE_CHECKS) : 0)
  }

  /**
   * Queues the signature check of one envelope (`bytes` its wire encoding, `header` decoded from it, `did` the
   * sender, `id` its envelope id for error messages). When the check runs inline (no thread, a full ring or
   * backlog) a failure throws here; otherwise it reaches `onFailure(context, error)` later.
   */
  submit(did: string, header: WireHeader, bytes: Uint8Array, id: string, context: C): void {
    if (this.#state === 'idle') this.#startWorker()
    if (this.#state !== 'worker' || !this.#write(did, bytes)) {
      this.#inline.check(did, header, id)
      return
    }
    this.#queue.push({ did, id, header, context })
    if (this.#queue.length - this.#head > 1024) this.#reap()
  }

  /** Resolves once every envelope submitted so far has been checked (and any failure reported). */
  drained(): Promise<void> {
    this.#reap()
    if (this.#head === this.#queue.length) return Promise.resolve()
    return new Promise((resolve) => {
      this.#drainWaiters.push(resolve)
      this.#poll()
    })
  }

  /** Stops the thread. Envelopes it had not checked are checked inline first, so every failure is reported. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped') return
    const worker = this.#worker
    this.#retire()
    this.#state = 'stopped'
    this.#checkRestInline()
    if (worker) await worker.terminate()
  }

  // ---- the ring ----------------------------------------------------------------------------------------------

  /** Writes one record; false when it does not fit (ring or backlog full), and the caller checks inline. */
  #write(did: string, bytes: Uint8Array): boolean {
    const control = this.#control!
    const ring = this.#ring!
    const view = this.#view!
    if (this.#queue.length - this.#head >= this.#maxBacklog) {
      this.#reap()
      if (this.#queue.length - this.#head >= this.#maxBacklog) return false
    }
    const size = recordBytes(did.length, bytes.byteLength)
    const write = control[WRITE_POS]!
    const read = Atomics.load(control, READ_POS)
    const at = write & (RING_BYTES - 1)
    const tail = RING_BYTES - at
    const need = size <= tail ? size : tail + size
    if (did.length > 255 || ((write - read) | 0) + need > RING_BYTES) return false
    let pos = write
    let off = at
    if (size > tail) {
      view.setUint32(off, WRAP, true)
      pos = (pos + tail) | 0
      off = 0
    }
    view.setUint32(off, size, true)
    ring[off + 4] = did.length
    ring.write(did, off + 5)
    const wireAt = off + 4 + pad4(1 + did.length)
    view.setUint32(wireAt, bytes.byteLength, true)
    ring.set(bytes, wireAt + 4)
    Atomics.store(control, WRITE_POS, (pos + size) | 0)
    // one wake-up per turn, not per envelope (a futex wake is a system call)
    if (!this.#wakeScheduled) {
      this.#wakeScheduled = true
      queueMicrotask(this.#wake)
    }
    return true
  }

  #wake = (): void => {
    this.#wakeScheduled = false
    const control = this.#control
    if (control !== undefined && Atomics.load(control, SLEEPING) !== 0) Atomics.notify(control, WRITE_POS)
  }

  /** Forgets the envelopes the thread has checked (once every failure it posted has arrived). */
  #reap(): void {
    const control = this.#control
    if (control === undefined || this.#state !== 'worker') return
    if (Atomics.load(control, FAILURES_POSTED) !== this.#failuresReceived) return
    const checked = Atomics.load(control, CHECKED)
    let n = (checked - this.#headTicket) | 0
    if (n <= 0) return
    n = Math.min(n, this.#queue.length - this.#head)
    for (let k = 0; k < n; k++) this.#queue[this.#head + k] = undefined
    this.#head += n
    this.#headTicket = (this.#headTicket + n) | 0
    if (this.#head === this.#queue.length) {
      this.#queue = []
      this.#head = 0
    } else if (this.#head > 4096 && this.#head * 2 > this.#queue.length) {
      this.#queue = this.#queue.slice(this.#head)
      this.#head = 0
    }
    if (this.#head === this.#queue.length) this.#wakeDrainWaiters()
  }

  #poll(): void {
    if (this.#pollTimer !== undefined) return
    const tick = (): void => {
      this.#pollTimer = undefined
      this.#reap()
      if (this.#drainWaiters.length > 0) this.#pollTimer = setTimeout(tick, POLL_MS)
    }
    this.#pollTimer = setTimeout(tick, POLL_MS)
  }

  #wakeDrainWaiters(): void {
    if (this.#drainWaiters.length === 0) return
    const waiters = this.#drainWaiters
    this.#drainWaiters = []
    for (const w of waiters) w()
  }

  // ---- the thread ----------------------------------------------------------------------------------------------

  #startWorker(): void {
    const init: RingInit = {
      control: new SharedArrayBuffer(CONTROL_SLOTS * 4),
      ring: new SharedArrayBuffer(RING_BYTES),
      batchCacheSize: this.#batchCacheSize,
    }
    let worker: Worker
    try {
      worker = new Worker(new URL('./signature-worker-thread.ts', import.meta.url), { workerData: init })
    } catch {
      this.#fallBack()
      return
    }
    this.#control = new Int32Array(init.control)
    this.#ring = Buffer.from(init.ring)
    this.#view = new DataView(init.ring)
    worker.unref()
    worker.on('message', (failure: RingFailure) => {
      if (this.#worker === worker) this.#onThreadFailure(failure)
    })
    // the thread failed or ended: what it had not checked is checked here, inline from now on
    const lost = (): void => {
      if (this.#worker === worker) this.#fallBack()
    }
    worker.on('error', lost)
    worker.on('exit', lost)
    this.#worker = worker
    this.#state = 'worker'
  }

  #onThreadFailure(f: RingFailure): void {
    this.#failuresReceived++
    const it = this.#queue[this.#head + ((f.ticket - this.#headTicket) | 0)]
    if (it !== undefined) {
      this.#reportedThrough = f.ticket
      const error = f.name === 'BadSignatureError'
        ? new BadSignatureError(`signature of envelope ${it.id} does not verify with ${it.did}`)
        : f.name === 'UnknownKeyError' ? new UnknownKeyError(f.message) : Object.assign(new IdentityError(f.message), { name: f.name })
      this.#report(it, error)
    }
    this.#reap()
  }

  #report(it: Submitted<C>, error: IdentityError): void {
    try {
      this.#onFailure(it.context, error)
    } catch {
      // the callback's own failure must not stop the reports after it
    }
  }

  /** The thread failed: everything it had not checked is checked here, and so is everything after. */
  #fallBack(): void {
    if (this.#state === 'inline' || this.#state === 'stopped') return
    const worker = this.#worker
    this.#retire()
    this.#state = 'inline'
    void worker?.terminate()
    this.#checkRestInline()
  }

  /** Detaches from the thread: tells it to stop and ignores whatever it still posts. */
  #retire(): void {
    if (this.#control) {
      Atomics.store(this.#control, STOP, 1)
      Atomics.notify(this.#control, WRITE_POS)
    }
    this.#worker = undefined
    clearTimeout(this.#pollTimer)
    this.#pollTimer = undefined
  }

  /**
   * Checks inline every envelope not known to be checked by the thread. A failure the thread posted that has
   * not arrived is found again here (failures already received were for envelopes before these).
   */
  #checkRestInline(): void {
    const control = this.#control
    let start = this.#head
    if (control !== undefined && Atomics.load(control, FAILURES_POSTED) === this.#failuresReceived) {
      start += Math.max(0, Math.min((Atomics.load(control, CHECKED) - this.#headTicket) | 0, this.#queue.length - this.#head))
    }
    const firstTicket = (this.#headTicket + (start - this.#head)) | 0
    const rest = this.#queue.slice(start)
    this.#queue = []
    this.#head = 0
    for (let k = 0; k < rest.length; k++) {
      const it = rest[k]
      if (it === undefined) continue
      if (this.#reportedThrough !== undefined && ((firstTicket + k - this.#reportedThrough) | 0) <= 0) continue
      try {
        this.#inline.check(it.did, it.header, it.id)
      } catch (err) {
        this.#report(it, err instanceof IdentityError ? err : new IdentityError(String(err)))
      }
    }
    this.#wakeDrainWaiters()
  }
}

// Envelope signatures checked, and seals signed, on a second core (spec/envelope.md, "Concurrent signature
// checks"). A receiver whose transport already authenticated the sender (a Noise session bound to the
// sender's did:key) hands each envelope, or each batch seal of a sealed stream, here and goes on; the worker
// thread checks the signature and reports a failure a moment later. A sender hands the payloads of a sealed
// batch here and gets the seal signature back when it next sends (or within `sealPollMs`). Jobs reach the
// thread through a shared ring buffer (identity/signature-ring.ts), not postMessage.
//
// Deny by default still holds where it matters: when no thread runs (it could not start, crashed, or was
// stopped) or the ring is full, `submit` checks inline and throws, so the caller refuses the envelope before
// acting on it. Envelopes handed to a thread that dies are checked inline, so no failure goes unreported.
//
// `verifyDetached` hands over a detached signature over given bytes (a signed bid picked by placement,
// spec/orchestration.md "Bids verified on the signature thread"); its outcome comes back through shared
// memory and reaches the caller's callback when collected (`poll`, `awaitOutcomes`, or the poll timer). The
// same rule holds: no thread, a full ring: verified inline before `verifyDetached` returns; a thread that dies
// with jobs in flight: those it had not answered are verified inline.
import { Worker } from 'node:worker_threads'
import type { WireHeader } from './envelope-wire.ts'
import { BadSignatureError, IdentityError, InvalidDidError, UnknownKeyError } from './errors.ts'
import { verifyEd25519ForDid, type NodeKey } from './keys.ts'
import { signSeal, verifySeal } from './sealed-stream.ts'
import { SignatureChecker } from './signature-checker.ts'
import {
  CHECKED,
  CONTROL_SLOTS,
  FAILURES_POSTED,
  JOB_CHECK,
  JOB_SEAL,
  JOB_SIGN,
  JOB_VERIFY,
  KEY_CACHE_SIGNERS,
  OUTCOME_BAD_SIGNATURE,
  OUTCOME_PASSED,
  OUTCOME_PENDING,
  OUTCOME_SLOTS,
  READ_POS,
  RESULT_BYTES,
  RESULT_SLOTS,
  RESULTS_READ,
  RESULTS_WRITTEN,
  RING_BYTES,
  SIGNATURE_CHECKS,
  LAZY,
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

export interface SignatureWorkerOptions<C> {
  /** Called once per envelope whose signature failed, with what was submitted for it. */
  onFailure: (context: C, error: IdentityError) => void
  /**
   * Called once per job submitted with `notify` whose check passed on the thread (a job checked inline is
   * answered by `submit`'s return instead). A caller that holds a message until its signature is known uses it.
   */
  onPassed?: (context: C) => void
  /** Envelopes that may wait for the thread; beyond that `submit` checks inline. Default 65,536. */
  maxBacklog?: number
  /** Verified batch roots remembered (on each side). Default 4096. */
  batchCacheSize?: number
  /** The key that signs seals (`seal`); without it `seal` is refused. */
  signer?: NodeKey
  /** How often signed seals are collected when nothing else collects them. Default 2 ms. */
  sealPollMs?: number
  /**
   * Called once if the thread fails (could not start, crashed, exited): from then on everything is done
   * inline, which is safe but slower, and an operator should hear of it.
   */
  onThreadLost?: (reason: Error) => void
  /** The module run as the thread. Default: signature-worker-thread.ts. Tests use another to make it fail. */
  threadModule?: URL
  /**
   * Seals that may wait on the thread; beyond that `seal` signs inline (which also slows the sender down),
   * so a starved thread cannot let seals lag without bound. Default 64: half of them waiting wakes a lazily
   * waiting thread at once, and at 64 a stream of 100k signed tells/s in batches of 256 fills half in ~80 ms
   * (the kernel's sealed batches hold up to 1024: ~330 ms), well past the thread's 20 ms lazy wait (at 16 it
   * needed a wake-up every ~20 ms, each costing the sender ~1 ms of its core).
   */
  maxPendingSeals?: number
  /**
   * When this many detached verifications (`verifyDetached`) already wait on the thread, the next one is
   * verified inline: this thread takes a share of the work while the second core is behind, rather than let
   * it bound a pipelined caller. Default: never (everything goes to the thread while the ring has room).
   */
  inlineVerifyOver?: number
  /**
   * Of the detached verifications the thread could take, this fraction (0..1) is verified inline anyway,
   * spread evenly (every 1/share-th one): a caller whose own work per job is lighter than the thread's
   * (a busy orchestrator handing it a placement's picks) balances the two cores with it, where
   * `inlineVerifyOver` only helps once a queue has built up (work handed over in bursts builds one every
   * burst, though the thread catches up before the next). Default 0.
   */
  inlineShare?: number
}

/** A check handed to the thread, kept until the thread has done it (undefined for a signing job). */
type Submitted<C> =
  | {
      job: 'check'
      did: string
      id: string
      /** Views into the caller's bytes: used only if the thread dies before checking it. */
      header: WireHeader
      context: C
      /** The caller waits for the outcome: `onPassed` is called when it passes. */
      notify: boolean
      /** Its failure was reported (so it is not reported as passed). */
      failed?: boolean
    }
  | { job: 'seal'; did: string; id: string; payloads: readonly Uint8Array[]; signature: Uint8Array; context: C; notify: boolean; failed?: boolean }
  | Verifying

/** A detached signature handed to the thread (`verifyDetached`): answered through `done`, exactly once. */
interface Verifying {
  job: 'verify'
  did: string
  /** Names what is verified in error messages ("bid <id>"). */
  what: string
  /** The caller's bytes, kept (not copied) until answered: used only if the thread dies before answering. */
  message: Uint8Array
  signature: Uint8Array
  done: DetachedVerdict
  notify: true
  failed?: boolean
}

/** The verdict on a detached signature: undefined when it verifies, else why not (BadSignatureError, UnknownKeyError). */
export type DetachedVerdict = (error: IdentityError | undefined) => void

/** Where a submitted check went: done inline (it passed; a failure throws) or queued for the thread. */
export type CheckRoute = 'checked' | 'queued'

/** A seal being signed on the thread. */
interface Signing {
  payloads: readonly Uint8Array[]
  done: (signature: Uint8Array) => void
}

const POLL_MS = 1

export class SignatureWorker<C> {
  readonly #onFailure: (context: C, error: IdentityError) => void
  readonly #onPassed: ((context: C) => void) | undefined
  /** Queued jobs whose caller waits for the outcome (they keep the poll running). */
  #notifying = 0
  readonly #maxBacklog: number
  readonly #batchCacheSize: number
  readonly #inline: SignatureChecker
  readonly #signer: NodeKey | undefined
  readonly #sealPollMs: number
  readonly #maxPendingSeals: number
  readonly #onThreadLost: ((reason: Error) => void) | undefined
  readonly #inlineVerifyOver: number
  readonly #inlineShare: number
  /** Accumulates `inlineShare` per detached verification; at 1 the next is verified inline. */
  #inlineCredit = 0
  /** Detached verifications queued on the thread and not yet answered. */
  #verifying = 0
  readonly #threadModule: URL
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
  #urgent = false
  #results: Buffer | undefined
  #outcomes: Uint8Array | undefined
  /** What the thread's key cache should hold (KEY_CACHE_SIGNERS), kept for a thread started later. */
  #keyCacheSigners = 0
  /** Seals on the thread by token, in token order (Map keeps insertion order). */
  readonly #signing = new Map<number, Signing>()
  #nextToken = 0
  #sealTimer: NodeJS.Timeout | undefined
  #inlineVerifications = 0

  constructor(opts: SignatureWorkerOptions<C>) {
    this.#onFailure = opts.onFailure
    this.#onPassed = opts.onPassed
    // the outcomes of detached verifications are kept by ticket modulo OUTCOME_SLOTS: never more in flight
    this.#maxBacklog = Math.min(opts.maxBacklog ?? 65_536, OUTCOME_SLOTS)
    this.#batchCacheSize = opts.batchCacheSize ?? 4096
    this.#inline = new SignatureChecker(this.#batchCacheSize)
    this.#signer = opts.signer
    this.#sealPollMs = opts.sealPollMs ?? 2
    this.#maxPendingSeals = opts.maxPendingSeals ?? 64
    this.#onThreadLost = opts.onThreadLost
    this.#inlineVerifyOver = opts.inlineVerifyOver ?? Infinity
    const share = opts.inlineShare ?? 0
    if (!(share >= 0 && share <= 1)) throw new RangeError(`inlineShare must be within 0..1 (got ${String(share)})`)
    this.#inlineShare = share
    this.#threadModule = opts.threadModule ?? new URL(import.meta.url.endsWith('.js') ? './signature-worker-thread.js' : './signature-worker-thread.ts', import.meta.url) // built or source: spec/packaging.md
  }

  /**
   * Starts the thread now rather than at the first job (it takes a moment to load; jobs handed over meanwhile
   * wait in the ring). Idempotent.
   */
  start(): void {
    if (this.#state === 'idle') this.#startWorker()
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

  /**
   * The thread's own CPU time in µs, modulo 2^32 (compare two readings with `(b - a) | 0`); published every
   * few jobs and when it runs out of work. 0 without a thread. For measurements (bench/placement.bench.ts).
   */
  get threadCpuMicros(): number {
    return this.#control ? Atomics.load(this.#control, THREAD_CPU_US) : 0
  }

  /** Ed25519 verifications performed so far, here and in the thread. */
  get signatureChecks(): number {
    return this.#inline.signatureChecks + this.#inlineVerifications + (this.#control ? Atomics.load(this.#control, SIGNATURE_CHECKS) : 0)
  }

  /**
   * Queues the signature check of one envelope (`bytes` its wire encoding, `header` decoded from it, `did` the
   * sender, `id` its envelope id for error messages). When the check runs inline (no thread, a full ring or
   * backlog) a failure throws here and a pass returns 'checked'; otherwise ('queued') a failure reaches
   * `onFailure(context, error)` later, and with `notify` a pass reaches `onPassed(context)` (the thread is
   * woken at once for it).
   */
  submit(did: string, header: WireHeader, bytes: Uint8Array, id: string, context: C, notify = false): CheckRoute {
    if (this.#state === 'idle') this.#startWorker()
    if (this.#state !== 'worker' || !this.#write(JOB_CHECK, did, 4 + pad4(bytes.byteLength), (at) => this.#putBytes(at, bytes))) {
      this.#inline.check(did, header, id)
      return 'checked'
    }
    this.#enqueue({ job: 'check', did, id, header, context, notify })
    if (notify) this.#waitFor()
    return 'queued'
  }

  /**
   * Queues the check of a sealed batch: `signature` must seal exactly `payloads` for `did` (`id` names the
   * batch's first envelope in error messages). Like `submit`: inline, throwing BadSignatureError, when the
   * thread cannot take it ('checked' when it passed there); otherwise ('queued') a failure reaches
   * `onFailure(context, error)` later, and with `notify` a pass reaches `onPassed(context)`.
   */
  submitSeal(did: string, payloads: readonly Uint8Array[], signature: Uint8Array, id: string, context: C, notify = false): CheckRoute {
    if (this.#state === 'idle') this.#startWorker()
    const size = 4 + 64 + payloadsBytes(payloads)
    const fits = this.#state === 'worker' && this.#write(JOB_SEAL, did, size, (at) => {
      this.#view!.setUint32(at, payloads.length, true)
      this.#ring!.set(signature, at + 4)
      this.#putPayloads(at + 68, payloads)
    })
    if (!fits) {
      this.#checkSealInline(did, payloads, signature, id)
      return 'checked'
    }
    this.#enqueue({ job: 'seal', did, id, payloads, signature: Uint8Array.prototype.slice.call(signature), context, notify })
    if (notify) this.#waitFor()
    return 'queued'
  }

  /**
   * Verifies `signature` (64 bytes) as `did`'s Ed25519 signature over `message` on the thread; `done(error)`
   * runs once, on this thread, with undefined when it verifies, else a BadSignatureError (or UnknownKeyError
   * for a DID that names no key). 'queued': `done` runs later, when the outcome is collected (`poll`,
   * `awaitOutcomes`, or within ~1 ms by the poll timer). `message` and `signature` are kept, not copied, until
   * the answer: the caller must not change them meanwhile. 'checked': no thread runs, the ring is full (or
   * `inlineVerifyOver` verifications wait on the thread), so it
   * was verified inline and `done` has run before this returns. `what` names it in error messages.
   * `urgent` (default): a thread waiting lazily is woken for it at once. A pipelined caller that keeps it busy
   * passes false and saves this thread the wake-ups (a futex call each): a sleeping thread is still woken, a
   * lazily waiting one comes round within its LAZY_MS, and `awaitOutcomes` wakes it when the caller must wait.
   */
  verifyDetached(did: string, message: Uint8Array, signature: Uint8Array, what: string, done: DetachedVerdict, urgent = true): CheckRoute {
    if (this.#state === 'idle') this.#startWorker()
    const fits = signature.byteLength === 64 && this.#state === 'worker' && this.#verifying < this.#inlineVerifyOver && !this.#shareInline() && this.#write(JOB_VERIFY, did, 4 + pad4(message.byteLength) + 64, (at) => {
      // the slot of this job's ticket is cleared before the thread can see the job
      Atomics.store(this.#outcomes!, (this.#headTicket + this.#queue.length - this.#head) & (OUTCOME_SLOTS - 1), OUTCOME_PENDING)
      this.#putBytes(at, message)
      this.#ring!.set(signature, at + 4 + pad4(message.byteLength))
    })
    if (!fits) {
      const error = this.#verifyInline(did, message, signature, what)
      this.#answer(done, error)
      return 'checked'
    }
    this.#enqueue({ job: 'verify', did, what, message, signature, done, notify: true })
    this.#notifying++
    this.#verifying++
    if (urgent) this.#wakeUrgently()
    this.#poll()
    return 'queued'
  }

  /** `inlineShare`: true for every 1/share-th detached verification (verified inline). */
  #shareInline(): boolean {
    if (this.#inlineShare === 0) return false
    this.#inlineCredit += this.#inlineShare
    if (this.#inlineCredit < 1) return false
    this.#inlineCredit -= 1
    return true
  }

  /**
   * Wakes the thread now if it sleeps or waits lazily (one futex call; nothing when it is working): for a
   * caller that handed over a batch of non-urgent jobs (`verifyDetached(..., urgent = false)`) and wants them
   * started at once rather than within the thread's lazy wait, without a wake-up per job.
   */
  flush(): void {
    if (this.#state !== 'worker') return
    this.#urgent = true
    this.#wake()
  }

  /**
   * Collects what the thread has finished: `verifyDetached` verdicts (and `onPassed`) are handed out now. For a
   * caller that pipelines work and cannot wait for the poll timer.
   */
  poll(): void {
    this.#reap()
  }

  /**
   * Blocks this thread until the thread answers at least one more job, or `timeoutMs` passed, then collects
   * (as `poll`). Returns at once when nothing is queued. For a pipelined caller that has too much in flight:
   * it gives the second core its turn instead of spinning. Verdicts are collected only once every envelope
   * failure the thread posted has arrived (by postMessage): a caller sharing this worker with envelope checks
   * must also let its event loop turn, or a posted failure holds the verdicts after it back.
   */
  awaitOutcomes(timeoutMs: number): void {
    const control = this.#control
    if (control !== undefined && this.#state === 'worker' && this.#head < this.#queue.length) {
      const checked = Atomics.load(control, CHECKED)
      if (((checked - this.#headTicket) | 0) <= 0) {
        this.#urgent = true
        this.#wake()
        Atomics.wait(control, CHECKED, checked, timeoutMs)
      }
    }
    this.#reap()
  }

  /**
   * Sizes the thread's did:key public-key cache for `activeSigners` signers (identity/keys.ts
   * sizePublicKeyCacheFor, on the thread): the orchestrator verifies bids from anywhere in its capacity index.
   */
  sizeKeyCacheFor(activeSigners: number): void {
    this.#keyCacheSigners = Math.max(0, Math.floor(activeSigners))
    if (this.#control) Atomics.store(this.#control, KEY_CACHE_SIGNERS, this.#keyCacheSigners)
  }

  #verifyInline(did: string, message: Uint8Array, signature: Uint8Array, what: string): IdentityError | undefined {
    this.#inlineVerifications++
    try {
      if (verifyEd25519ForDid(did, message, signature)) return undefined
    } catch (err) {
      return new UnknownKeyError(`cannot resolve the signer's key of ${what}: ${err instanceof Error ? err.message : String(err)}`)
    }
    return new BadSignatureError(`signature of ${what} does not verify with ${did}`)
  }

  #verdict(it: Verifying, outcome: number): IdentityError | undefined {
    if (outcome === OUTCOME_PASSED) return undefined
    if (outcome === OUTCOME_BAD_SIGNATURE) return new BadSignatureError(`signature of ${it.what} does not verify with ${it.did}`)
    if (outcome === OUTCOME_PENDING) return this.#verifyInline(it.did, it.message, it.signature, it.what)
    return new UnknownKeyError(`cannot resolve the signer's key of ${it.what}: ${it.did}`)
  }

  #answer(done: DetachedVerdict, error: IdentityError | undefined): void {
    try {
      done(error)
    } catch {
      // the callback's own failure must not stop the answers after it
    }
  }

  /** A job someone waits on was queued: the thread is woken for it and its outcome is polled for. */
  #waitFor(): void {
    this.#notifying++
    this.#wakeUrgently()
    this.#poll()
  }

  /** Jobs queued with `notify` whose outcome is not known yet. */
  get awaited(): number {
    return this.#notifying
  }

  /**
   * Signs the seal of `payloads` (1..65,536 of them) with the signer. `done(signature)` runs later, on this
   * thread, when the seal is collected (by `collectSeals`, or within `sealPollMs`), in the order seals were
   * asked for; or at once (signed inline) when no thread runs, the ring is full or `maxPendingSeals` wait.
   * `urgent`: someone waits on this seal (an ask's receiver may hold it until then): the thread is woken
   * for it at once rather than coming round within LAZY_MS. (Signing it here instead cost every ask ~60 µs
   * of this thread, measured, though most asks need no seal to be answered.)
   */
  seal(payloads: readonly Uint8Array[], done: (signature: Uint8Array) => void, urgent = false): void {
    const signer = this.#signer
    if (signer === undefined) throw new IdentityError('this signature worker has no signing key')
    if (this.#state === 'idle') this.#startWorker()
    if (this.#signing.size >= this.#maxPendingSeals) this.collectSeals()
    const token = this.#nextToken
    const onThread = this.#state === 'worker' && this.#signing.size < this.#maxPendingSeals && this.#write(JOB_SIGN, '', 8 + payloadsBytes(payloads), (at) => {
      this.#view!.setUint32(at, token, true)
      this.#view!.setUint32(at + 4, payloads.length, true)
      this.#putPayloads(at + 8, payloads)
    })
    if (!onThread) {
      // no thread, a full ring, or a thread that is behind (starved, or slow): seals keep their order, so those
      // it signed are handed back, those it has not are signed here (its late results are ignored), then this one
      this.collectSeals()
      this.#signPendingInline()
      this.#signInline({ payloads, done })
      return
    }
    // a thread waiting lazily signs it within LAZY_MS (waking it would cost this thread its core for the
    // thread's turn); only when seals pile up is it woken at once
    if (urgent || this.#signing.size + 1 >= this.#maxPendingSeals / 2) this.#wakeUrgently()
    this.#nextToken = (token + 1) >>> 0
    this.#signing.set(token, { payloads, done })
    this.#queue.push(undefined)
    this.#armSealTimer()
  }

  /** Seals asked for and not yet handed back. */
  get sealsPending(): number {
    return this.#signing.size
  }

  /** Hands back every seal the thread has signed (in order). Cheap when there is none: call it before sending. */
  collectSeals(): void {
    const control = this.#control
    if (control === undefined || this.#signing.size === 0) return
    const written = Atomics.load(control, RESULTS_WRITTEN)
    let read = control[RESULTS_READ]!
    if (read === written) return
    const results = this.#results!
    while (read !== written) {
      const at = (read & (RESULT_SLOTS - 1)) * RESULT_BYTES
      const token = results.readUInt32LE(at)
      const signature = Uint8Array.prototype.slice.call(results.subarray(at + 4, at + 68))
      read = (read + 1) | 0
      Atomics.store(control, RESULTS_READ, read)
      const s = this.#signing.get(token)
      if (s === undefined) continue
      this.#signing.delete(token)
      this.#hand(s, signature)
    }
    if (this.#signing.size === 0) this.#clearSealTimer()
  }

  /** Resolves once every envelope submitted so far has been checked (and any failure reported). */
  drained(): Promise<void> {
    this.#reap()
    if (this.#head === this.#queue.length) return Promise.resolve()
    return new Promise((resolve) => {
      this.#drainWaiters.push(resolve)
      this.#wakeUrgently()
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
    if (this.#signer) this.#signRestInline()
    if (worker) await worker.terminate()
  }

  /**
   * Queues a job and forgets those the thread has checked (two atomic loads when there are none). A job keeps
   * views of what it checks (a seal job, its whole batch and the received chunks under it) until forgotten;
   * forgetting only past 1024 queued jobs kept seconds of traffic alive, promoted to the old space.
   */
  #enqueue(it: Submitted<C>): void {
    this.#queue.push(it)
    this.#reap()
  }

  #hand(s: Signing, signature: Uint8Array): void {
    try {
      s.done(signature)
    } catch {
      // the callback's own failure must not stop the seals after it
    }
  }

  #signInline(s: Signing): void {
    this.#hand(s, signSeal(this.#signer!, s.payloads))
  }

  #checkSealInline(did: string, payloads: readonly Uint8Array[], signature: Uint8Array, id: string): void {
    let ok: boolean
    try {
      this.#inlineVerifications++
      ok = verifySeal(did, payloads, signature)
    } catch (err) {
      if (err instanceof InvalidDidError) throw new UnknownKeyError(`cannot resolve the sender's key: ${err.message}`)
      throw err
    }
    if (!ok) throw new BadSignatureError(`seal of the batch of envelope ${id} (${payloads.length} envelopes) does not verify with ${did}`)
  }

  #armSealTimer(): void {
    if (this.#sealTimer !== undefined) return
    const tick = (): void => {
      this.#sealTimer = undefined
      this.collectSeals()
      if (this.#signing.size > 0) this.#armSealTimer()
    }
    this.#sealTimer = setTimeout(tick, this.#sealPollMs)
  }

  #clearSealTimer(): void {
    clearTimeout(this.#sealTimer)
    this.#sealTimer = undefined
  }

  // ---- the ring ----------------------------------------------------------------------------------------------

  #putBytes(at: number, bytes: Uint8Array): void {
    this.#view!.setUint32(at, bytes.byteLength, true)
    this.#ring!.set(bytes, at + 4)
  }

  #putPayloads(at: number, payloads: readonly Uint8Array[]): void {
    for (const p of payloads) {
      this.#putBytes(at, p)
      at += 4 + pad4(p.byteLength)
    }
  }

  /**
   * Writes one record (`job`, `did`, then `bodyBytes` written by `fill` at the offset it is given); false
   * when it does not fit (ring or backlog full), and the caller works inline.
   */
  #write(job: number, did: string, bodyBytes: number, fill: (at: number) => void): boolean {
    const control = this.#control!
    const ring = this.#ring!
    const view = this.#view!
    if (this.#queue.length - this.#head >= this.#maxBacklog) {
      this.#reap()
      if (this.#queue.length - this.#head >= this.#maxBacklog) return false
    }
    const size = recordHeaderBytes(did.length) + bodyBytes
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
    ring[off + 4] = job
    ring[off + 5] = did.length
    ring.write(did, off + 6, 'latin1')
    fill(off + recordHeaderBytes(did.length))
    Atomics.store(control, WRITE_POS, (pos + size) | 0)
    this.#scheduleWake()
    return true
  }

  /** One wake-up check per turn, not per job (a futex wake is a system call). */
  #scheduleWake(): void {
    if (!this.#wakeScheduled) {
      this.#wakeScheduled = true
      queueMicrotask(this.#wake)
    }
  }

  /**
   * Wakes the thread when it sleeps, or when it waits lazily (LAZY) and something waits on it: a drain, or
   * half of maxPendingSeals seals to sign. Checks of delivered envelopes and the odd seal never wake a lazily
   * waiting thread (spec/envelope.md): it comes round within LAZY_MS.
   */
  #wake = (): void => {
    this.#wakeScheduled = false
    const urgent = this.#urgent
    this.#urgent = false
    const control = this.#control
    if (control === undefined) return
    if (Atomics.load(control, SLEEPING) !== 0 || (urgent && Atomics.load(control, LAZY) !== 0)) Atomics.notify(control, WRITE_POS)
  }

  /** Marks this turn's writes as waited on: the thread is woken even from a lazy wait. */
  #wakeUrgently(): void {
    this.#urgent = true
    this.#scheduleWake()
  }

  /** Forgets the envelopes the thread has checked (once every failure it posted has arrived). */
  #reap(): void {
    const control = this.#control
    if (control === undefined || this.#state !== 'worker') return
    // CHECKED before FAILURES_POSTED: the thread bumps FAILURES_POSTED before CHECKED moves past a failed
    // job, so every failure among the jobs counted here is counted there too (read the other way round, a
    // failure posted between the two reads was forgotten with its job and then dropped on arrival)
    const checked = Atomics.load(control, CHECKED)
    if (Atomics.load(control, FAILURES_POSTED) !== this.#failuresReceived) return
    let n = (checked - this.#headTicket) | 0
    if (n <= 0) return
    n = Math.min(n, this.#queue.length - this.#head)
    let passed: Submitted<C>[] | undefined
    let verdicts: [Verifying, IdentityError | undefined][] | undefined
    for (let k = 0; k < n; k++) {
      const it = this.#queue[this.#head + k]
      if (it?.job === 'verify') {
        this.#notifying--
        this.#verifying--
        ;(verdicts ??= []).push([it, this.#verdict(it, Atomics.load(this.#outcomes!, (this.#headTicket + k) & (OUTCOME_SLOTS - 1)))])
      } else if (it?.notify === true) {
        this.#notifying--
        if (it.failed !== true) (passed ??= []).push(it)
      }
      this.#queue[this.#head + k] = undefined
    }
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
    if (passed !== undefined) for (const it of passed) this.#pass(it)
    if (verdicts !== undefined) for (const [it, error] of verdicts) this.#answer(it.done, error)
  }

  #pass(it: Submitted<C>): void {
    if (it.job === 'verify') return // answered through its own callback
    try {
      this.#onPassed?.(it.context)
    } catch {
      // the callback's own failure must not stop the passes after it
    }
  }

  #poll(): void {
    if (this.#pollTimer !== undefined) return
    const tick = (): void => {
      this.#pollTimer = undefined
      this.#reap()
      if (this.#drainWaiters.length > 0 || this.#notifying > 0) this.#pollTimer = setTimeout(tick, POLL_MS)
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
      results: new SharedArrayBuffer(RESULT_SLOTS * RESULT_BYTES),
      outcomes: new SharedArrayBuffer(OUTCOME_SLOTS),
      batchCacheSize: this.#batchCacheSize,
    }
    if (this.#signer) init.signerSeed = this.#signer.exportSeed()
    let worker: Worker
    try {
      worker = new Worker(this.#threadModule, { workerData: init })
    } catch (err) {
      this.#fallBack(new IdentityError(`the signature thread could not start: ${err instanceof Error ? err.message : String(err)}`))
      return
    }
    this.#control = new Int32Array(init.control)
    this.#ring = Buffer.from(init.ring)
    this.#view = new DataView(init.ring)
    this.#results = Buffer.from(init.results)
    this.#outcomes = new Uint8Array(init.outcomes)
    Atomics.store(this.#control, KEY_CACHE_SIGNERS, this.#keyCacheSigners)
    worker.unref()
    worker.on('message', (failure: RingFailure) => {
      if (this.#worker === worker) this.#onThreadFailure(failure)
    })
    // the thread failed or ended: what it had not checked is checked here, inline from now on
    worker.on('error', (err: Error) => {
      if (this.#worker === worker) this.#fallBack(new IdentityError(`the signature thread failed: ${err.message}`))
    })
    worker.on('exit', (code: number) => {
      if (this.#worker === worker) this.#fallBack(new IdentityError(`the signature thread exited (code ${code})`))
    })
    this.#worker = worker
    this.#state = 'worker'
  }

  #onThreadFailure(f: RingFailure): void {
    this.#failuresReceived++
    const it = this.#queue[this.#head + ((f.ticket - this.#headTicket) | 0)]
    // a detached verification never posts (its outcome slot, left pending, makes it verified inline)
    if (it !== undefined && it.job !== 'verify') {
      this.#reportedThrough = f.ticket
      const what = it.job === 'seal' ? `seal of the batch of envelope ${it.id} (${it.payloads.length} envelopes)` : `signature of envelope ${it.id}`
      const error = f.name === 'BadSignatureError'
        ? new BadSignatureError(`${what} does not verify with ${it.did}`)
        : f.name === 'UnknownKeyError' ? new UnknownKeyError(f.message) : Object.assign(new IdentityError(f.message), { name: f.name })
      this.#report(it, error)
    } else if (this.#signing.size > 0) {
      // a signing job failed on the thread (it never should): seals must not be lost, so from here on the
      // thread is not trusted with anything and everything pending is done inline
      this.#fallBack(new IdentityError(`a signing job failed on the signature thread: ${f.name}: ${f.message}`))
      return
    }
    this.#reap()
  }

  #report(it: Exclude<Submitted<C>, Verifying>, error: IdentityError): void {
    it.failed = true
    try {
      this.#onFailure(it.context, error)
    } catch {
      // the callback's own failure must not stop the reports after it
    }
  }

  /** The thread failed: everything it had not done is done here, and so is everything after. */
  #fallBack(reason: Error): void {
    if (this.#state === 'inline' || this.#state === 'stopped') return
    const worker = this.#worker
    this.#retire()
    this.#state = 'inline'
    void worker?.terminate()
    this.#checkRestInline()
    this.#signRestInline()
    try {
      this.#onThreadLost?.(reason)
    } catch {
      // the callback's own failure changes nothing here
    }
  }

  /** Seals the thread signed are handed back; the rest are signed here, in order. */
  #signRestInline(): void {
    this.collectSeals()
    this.#signPendingInline()
  }

  #signPendingInline(): void {
    this.#clearSealTimer()
    const rest = [...this.#signing.values()]
    this.#signing.clear()
    for (const s of rest) this.#signInline(s)
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
    if (control !== undefined) {
      // CHECKED first, as in #reap: a failure among the jobs it counts is then counted in FAILURES_POSTED
      const checked = Atomics.load(control, CHECKED)
      if (Atomics.load(control, FAILURES_POSTED) === this.#failuresReceived) {
        start += Math.max(0, Math.min((checked - this.#headTicket) | 0, this.#queue.length - this.#head))
      }
    }
    const firstTicket = (this.#headTicket + (start - this.#head)) | 0
    // the thread checked these: those waited on that did not fail passed
    const done = this.#queue.slice(this.#head, start)
    const rest = this.#queue.slice(start)
    this.#queue = []
    this.#head = 0
    this.#notifying = 0
    this.#verifying = 0
    const outcomes = this.#outcomes
    // a detached verification: the thread's outcome when it wrote one, else verified here
    const verdict = (it: Verifying, ticket: number): IdentityError | undefined =>
      this.#verdict(it, outcomes === undefined ? OUTCOME_PENDING : Atomics.load(outcomes, ticket & (OUTCOME_SLOTS - 1)))
    for (let k = 0; k < done.length; k++) {
      const it = done[k]
      if (it?.job === 'verify') this.#answer(it.done, verdict(it, (this.#headTicket + k) | 0))
      else if (it?.notify === true && it.failed !== true) this.#pass(it)
    }
    for (let k = 0; k < rest.length; k++) {
      const it = rest[k]
      if (it === undefined) continue
      if (it.job === 'verify') {
        this.#answer(it.done, verdict(it, (firstTicket + k) | 0))
        continue
      }
      if (this.#reportedThrough !== undefined && ((firstTicket + k - this.#reportedThrough) | 0) <= 0) {
        // the thread got this far: its failures here were reported, the rest passed
        if (it.notify && it.failed !== true) this.#pass(it)
        continue
      }
      try {
        if (it.job === 'check') this.#inline.check(it.did, it.header, it.id)
        else this.#checkSealInline(it.did, it.payloads, it.signature, it.id)
      } catch (err) {
        this.#report(it, err instanceof IdentityError ? err : new IdentityError(String(err)))
        continue
      }
      if (it.notify) this.#pass(it)
    }
    this.#wakeDrainWaiters()
  }
}

/** Ring bytes of count x (u32 length | payload | pad4). */
function payloadsBytes(payloads: readonly Uint8Array[]): number {
  let n = 0
  for (const p of payloads) n += 4 + pad4(p.byteLength)
  return n
}

// Detached signatures verified on the signature thread (identity/signature-worker.ts verifyDetached; spec/
// orchestration.md, "Bids verified on the signature thread"): a good signature passes, a bad one and an unknown
// signer are refused with typed errors, every job is answered exactly once, on the thread or inline (no
// thread, after stop, a thread that dies with jobs in flight).
import t from 'tap'
import { NodeKey } from '../keys.ts'
import { BadSignatureError, IdentityError, UnknownKeyError } from '../errors.ts'
import { SignatureWorker, type DetachedVerdict } from '../signature-worker.ts'

const alice = NodeKey.generate()
const bob = NodeKey.generate()
const enc = new TextEncoder()

function signed(key: NodeKey, text: string): { message: Uint8Array; signature: Uint8Array } {
  const message = enc.encode(text)
  return { message, signature: key.sign(message) }
}

/** A verdict collector: `verdicts[i]` is job i's answer (undefined: passed), `answered[i]` how often it came. */
function collector(n: number): { verdicts: (IdentityError | undefined)[]; answered: number[]; done: (i: number) => DetachedVerdict } {
  const verdicts: (IdentityError | undefined)[] = []
  const answered = new Array<number>(n).fill(0)
  return { verdicts, answered, done: (i) => (err) => {
    verdicts[i] = err
    answered[i]!++
  } }
}

async function settle(w: SignatureWorker<unknown>, answered: number[]): Promise<void> {
  const end = Date.now() + 20_000
  while (answered.some((a) => a === 0) && Date.now() < end) {
    w.awaitOutcomes(5)
    await new Promise((r) => setTimeout(r, 1))
  }
}

t.test('on the thread: a good signature passes, a forged one and a wrong signer are refused, each answered once', async (t) => {
  const w = new SignatureWorker<unknown>({ onFailure: () => t.fail('no envelope failure expected') })
  t.teardown(() => w.stop())
  w.start()
  const good = signed(alice, 'bid 1')
  const forged = { message: enc.encode('bid 1, price 0.01'), signature: good.signature }
  const c = collector(4)
  const routes = [
    w.verifyDetached(alice.did, good.message, good.signature, 'bid 0', c.done(0)),
    w.verifyDetached(alice.did, forged.message, forged.signature, 'bid 1', c.done(1)),
    w.verifyDetached(bob.did, good.message, good.signature, 'bid 2', c.done(2)),
    w.verifyDetached('did:key:zNotAKey', good.message, good.signature, 'bid 3', c.done(3)),
  ]
  t.same(routes, ['queued', 'queued', 'queued', 'queued'], 'a running thread takes them')
  t.same(c.answered, [0, 0, 0, 0], 'nothing answered before the thread did it')
  await settle(w, c.answered)
  t.same(c.answered, [1, 1, 1, 1], 'each answered exactly once')
  t.equal(c.verdicts[0], undefined, 'the good signature passes')
  t.type(c.verdicts[1], BadSignatureError, 'a signature over other bytes is refused')
  t.match(c.verdicts[1]!.message, /bid 1/)
  t.type(c.verdicts[2], BadSignatureError, 'a signature by another key is refused')
  t.type(c.verdicts[3], UnknownKeyError, 'a signer that names no key is refused')
  t.equal(w.awaited, 0)
  t.ok(w.signatureChecks >= 3, 'the thread counted its verifications')
})

t.test('inlineVerifyOver: past that many waiting on the thread, this thread verifies inline; stop answers the rest', async (t) => {
  const w = new SignatureWorker<unknown>({ onFailure: () => {}, inlineVerifyOver: 2, threadModule: new URL('./idle-thread.ts', import.meta.url) })
  w.start()
  const c = collector(5)
  const routes = [0, 1, 2, 3, 4].map((i) => {
    const s = signed(alice, `bid ${i}`)
    if (i === 3) s.message[0]! ^= 1
    return w.verifyDetached(alice.did, s.message, s.signature, `bid ${i}`, c.done(i))
  })
  t.same(routes, ['queued', 'queued', 'checked', 'checked', 'checked'], 'two wait on the (idle) thread, the rest are verified here')
  t.same(c.answered, [0, 0, 1, 1, 1])
  t.equal(c.verdicts[2], undefined)
  t.type(c.verdicts[3], BadSignatureError, 'a bad one verified inline is refused')
  await w.stop()
  t.same(c.answered, [1, 1, 1, 1, 1], 'stop answers those the thread never took, inline')
  t.equal(c.verdicts[0], undefined)
  t.equal(c.verdicts[1], undefined)
})

t.test('without a thread (after stop) a detached signature is verified inline before verifyDetached returns', async (t) => {
  const w = new SignatureWorker<unknown>({ onFailure: () => {} })
  await w.stop()
  const s = signed(alice, 'inline')
  const c = collector(2)
  t.equal(w.verifyDetached(alice.did, s.message, s.signature, 'bid a', c.done(0)), 'checked')
  t.equal(w.verifyDetached(bob.did, s.message, s.signature, 'bid b', c.done(1)), 'checked')
  t.same(c.answered, [1, 1], 'answered before returning')
  t.equal(c.verdicts[0], undefined)
  t.type(c.verdicts[1], BadSignatureError)
})

t.test('a 63-byte signature is refused inline (never handed to the thread)', async (t) => {
  const w = new SignatureWorker<unknown>({ onFailure: () => {} })
  t.teardown(() => w.stop())
  w.start()
  const s = signed(alice, 'short')
  const c = collector(1)
  t.equal(w.verifyDetached(alice.did, s.message, s.signature.subarray(0, 63), 'bid', c.done(0)), 'checked')
  t.type(c.verdicts[0], BadSignatureError)
})

t.test('stop with jobs in flight: every job is answered, the bad ones refused', async (t) => {
  const w = new SignatureWorker<unknown>({ onFailure: () => {} })
  w.start()
  const n = 200
  const c = collector(n)
  for (let i = 0; i < n; i++) {
    const s = signed(alice, `bid ${i}`)
    if (i % 7 === 3) s.message[0]! ^= 1
    w.verifyDetached(alice.did, s.message, s.signature, `bid ${i}`, c.done(i))
  }
  await w.stop()
  t.same(c.answered, new Array(n).fill(1), 'each answered exactly once, on the thread or inline')
  for (let i = 0; i < n; i++) {
    if (i % 7 === 3) t.type(c.verdicts[i], BadSignatureError, `bid ${i} refused`)
    else if (c.verdicts[i] !== undefined) t.fail(`bid ${i} should pass: ${c.verdicts[i]!.message}`)
  }
})

t.test('a thread that dies with jobs in flight: the one it answered keeps its verdict, the rest are verified inline', async (t) => {
  const lost: Error[] = []
  const w = new SignatureWorker<unknown>({
    onFailure: () => {},
    onThreadLost: (reason) => lost.push(reason),
    threadModule: new URL('./dying-thread.ts', import.meta.url),
  })
  t.teardown(() => w.stop())
  w.start()
  const c = collector(4)
  const bad = signed(alice, 'bid 0')
  bad.message[0]! ^= 1
  const jobs = [bad, signed(alice, 'bid 1'), { ...signed(alice, 'bid 2'), signature: signed(bob, 'bid 2').signature }, signed(alice, 'bid 3')]
  jobs.forEach((j, i) => w.verifyDetached(alice.did, j.message, j.signature, `bid ${i}`, c.done(i)))
  const end = Date.now() + 20_000
  while ((lost.length === 0 || c.answered.some((a) => a === 0)) && Date.now() < end) await new Promise((r) => setTimeout(r, 5))
  t.equal(lost.length, 1, 'the loss is reported once')
  t.equal(w.mode, 'inline')
  t.same(c.answered, [1, 1, 1, 1], 'every job answered exactly once')
  t.type(c.verdicts[0], BadSignatureError, 'the thread refused the first (its outcome kept)')
  t.equal(c.verdicts[1], undefined)
  t.type(c.verdicts[2], BadSignatureError, 'a job the thread never reached is verified inline and refused')
  t.equal(c.verdicts[3], undefined)
  t.equal(w.signatureChecks, 3, 'three verified inline: the one the thread answered was not verified again')
  const after = signed(bob, 'after')
  const c2 = collector(1)
  t.equal(w.verifyDetached(alice.did, after.message, after.signature, 'after', c2.done(0)), 'checked', 'from then on inline')
  t.type(c2.verdicts[0], BadSignatureError)
})

t.test('inlineShare: that share of the jobs is verified inline, spread evenly; a forged signature is refused either way', async (t) => {
  t.throws(() => new SignatureWorker<unknown>({ onFailure: () => {}, inlineShare: 1.5 }), RangeError, 'a share past 1 is refused')
  t.throws(() => new SignatureWorker<unknown>({ onFailure: () => {}, inlineShare: Number.NaN }), RangeError)
  const w = new SignatureWorker<unknown>({ onFailure: () => t.fail('no envelope failure expected'), inlineShare: 0.5 })
  t.teardown(() => w.stop())
  w.start()
  const n = 8
  const c = collector(n)
  const routes: string[] = []
  for (let i = 0; i < n; i++) {
    const s = signed(alice, `bid ${i}`)
    // jobs 0, 1 (one of each route) and 6, 7 are forged
    if (i < 2 || i >= 6) s.message[0]! ^= 1
    routes.push(w.verifyDetached(alice.did, s.message, s.signature, `bid ${i}`, c.done(i), false))
  }
  t.same(routes, ['queued', 'checked', 'queued', 'checked', 'queued', 'checked', 'queued', 'checked'], 'every second one verified here')
  t.same(c.answered.filter((_, i) => routes[i] === 'queued'), [0, 0, 0, 0], 'nothing handed to the thread answered before it did it')
  w.flush()
  await settle(w, c.answered)
  t.same(c.answered, new Array(n).fill(1), 'each answered exactly once')
  for (const i of [0, 1, 6, 7]) t.type(c.verdicts[i], BadSignatureError, `forged bid ${i} refused (${routes[i]})`)
  for (const i of [2, 3, 4, 5]) t.equal(c.verdicts[i], undefined, `bid ${i} passes (${routes[i]})`)
})

t.test('flush: wakes the thread for jobs handed over without waking it; a no-op with no thread', async (t) => {
  const w = new SignatureWorker<unknown>({ onFailure: () => {} })
  t.teardown(() => w.stop())
  w.flush() // idle: nothing to wake, nothing started
  t.equal(w.mode, 'idle')
  w.start()
  const c = collector(3)
  const jobs = [signed(alice, 'a'), signed(alice, 'b'), { ...signed(alice, 'c'), signature: signed(bob, 'c').signature }]
  jobs.forEach((j, i) => w.verifyDetached(alice.did, j.message, j.signature, `bid ${i}`, c.done(i), false))
  w.flush()
  await settle(w, c.answered)
  t.same(c.answered, [1, 1, 1])
  t.same(c.verdicts.map((v) => v?.name), [undefined, undefined, 'BadSignatureError'])
  await w.stop()
  w.flush() // stopped: a no-op
  t.equal(w.mode, 'stopped')
})

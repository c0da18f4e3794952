// The signature worker checks envelope signatures on its own thread (spec/envelope.md, "Concurrent signature
// checks"): good envelopes produce no failure, each bad one exactly one failure with its context, in order;
// without a thread (a full backlog, after stop) the check runs inline and throws; the ring wraps correctly.
// Seals of sealed streams are signed and checked there too, in order, and never lost at stop.
import t from 'tap'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { NodeKey } from '../keys.ts'
import { prepareEnvelope, signEnvelope, signEnvelopeBatch, type SignedEnvelope } from '../envelope.ts'
import { signSeal } from '../sealed-stream.ts'
import { decodeWireHeader } from '../envelope-wire.ts'
import { BadSignatureError, IdentityError } from '../errors.ts'
import { SignatureWorker } from '../signature-worker.ts'
import { RING_BYTES } from '../signature-ring.ts'

const alice = NodeKey.generate()
const bob = NodeKey.generate()

function batch(n: number, body = 'x'): SignedEnvelope[] {
  return signEnvelopeBatch(alice, Array.from({ length: n }, (_, i) => ({ from: alice.did, to: `${bob.did}/sink`, behavior: '/t/hit', body: `${body}${i}` })))
}

function tamper(s: SignedEnvelope): Uint8Array {
  const b = Uint8Array.from(s.bytes)
  b[b.length - 3]! ^= 0x01 // inside the payload: its leaf hash (or single signature) no longer matches
  return b
}

function worker(opts: { maxBacklog?: number } = {}): { w: SignatureWorker<string>; failures: [string, IdentityError][] } {
  const failures: [string, IdentityError][] = []
  const w = new SignatureWorker<string>({ onFailure: (ctx, err) => failures.push([ctx, err]), ...opts })
  t.teardown(() => w.stop())
  return { w, failures }
}

function submit(w: SignatureWorker<string>, bytes: Uint8Array, id: string, ctx: string, did = alice.did): void {
  w.submit(did, decodeWireHeader(bytes), bytes, id, ctx)
}

t.test('good single and batch envelopes are checked on the thread with one Ed25519 check per batch', async (t) => {
  const { w, failures } = worker()
  const single = signEnvelope(alice, { from: alice.did, to: `${bob.did}/sink`, behavior: '/t/hit', body: 1 })
  submit(w, single.bytes, single.envelope.id, 'single')
  for (const s of batch(300)) submit(w, s.bytes, s.envelope.id, s.envelope.id)
  t.equal(w.mode, 'worker', 'a thread was started on the first submit')
  await w.drained()
  t.equal(failures.length, 0, 'no failure for correctly signed envelopes')
  t.equal(w.backlog, 0)
  t.equal(w.signatureChecks, 2, 'one verification for the single envelope, one for the whole batch')
})

t.test('each bad envelope is reported once, with its context, in submission order; good ones around it are not', async (t) => {
  const { w, failures } = worker()
  const envs = batch(64)
  const bad = new Set([5, 40])
  envs.forEach((s, i) => submit(w, bad.has(i) ? tamper(s) : s.bytes, s.envelope.id, `#${i}`))
  const wrongKey = signEnvelope(bob, { from: bob.did, to: `${alice.did}/x`, behavior: '/t/hit', body: 1 })
  submit(w, wrongKey.bytes, wrongKey.envelope.id, 'claims alice', alice.did)
  await w.drained()
  t.same(failures.map(([ctx]) => ctx), ['#5', '#40', 'claims alice'])
  for (const [, err] of failures) t.type(err, BadSignatureError)
  t.match(failures[0]![1].message, envs[5]!.envelope.id, 'the error names the envelope')
})

t.test('a full backlog checks inline: a bad envelope throws at submit, a good one passes', async (t) => {
  const { w, failures } = worker({ maxBacklog: 0 })
  const [good, other] = batch(2)
  t.doesNotThrow(() => submit(w, good!.bytes, good!.envelope.id, 'good'))
  t.throws(() => submit(w, tamper(other!), other!.envelope.id, 'bad'), BadSignatureError)
  await w.drained()
  t.equal(failures.length, 0, 'an inline failure is thrown, not reported again')
})

t.test('stop() checks what the thread had not, so no failure is lost; after stop checks are inline', async (t) => {
  const { w, failures } = worker()
  const envs = batch(2000)
  envs.forEach((s, i) => submit(w, i === 1999 ? tamper(s) : s.bytes, s.envelope.id, `#${i}`))
  await w.stop()
  t.same(failures.map(([ctx]) => ctx), ['#1999'], 'the last, bad envelope is reported exactly once')
  t.equal(w.mode, 'stopped')
  const late = batch(1)[0]!
  t.throws(() => submit(w, tamper(late), late.envelope.id, 'late'), BadSignatureError, 'after stop the check is inline')
})

t.test('the ring wraps around many times without losing or misplacing an envelope', async (t) => {
  const { w, failures } = worker()
  const perRound = 2000
  const bytesPerRound = batch(1)[0]!.bytes.length * perRound
  const rounds = Math.ceil((3 * RING_BYTES) / bytesPerRound)
  const expected: string[] = []
  for (let r = 0; r < rounds; r++) {
    const envs = batch(256, `r${r}-`)
    for (let k = 0; k < perRound; k++) {
      const s = envs[k % envs.length]!
      const isBad = k === 777
      if (isBad) expected.push(`${r}:${k}`)
      submit(w, isBad ? tamper(s) : s.bytes, s.envelope.id, `${r}:${k}`)
    }
    await w.drained()
  }
  t.same(failures.map(([ctx]) => ctx), expected, `one failure per round over ${rounds} rounds (${Math.round((rounds * bytesPerRound) / RING_BYTES)}x the ring)`)
})

// ---- sealed streams: seals signed and checked on the thread -----------------------------------------------------

function payloads(n: number, tag = 'p'): Uint8Array[] {
  return Array.from({ length: n }, (_, i) => prepareEnvelope(alice, { from: alice.did, to: `${bob.did}/sink`, behavior: '/t/hit', body: `${tag}${i}` }).payload)
}

t.test('seals signed on the thread come back in order and equal the inline signature', async (t) => {
  const failures: [string, IdentityError][] = []
  const w = new SignatureWorker<string>({ onFailure: (ctx, err) => failures.push([ctx, err]), signer: alice, sealPollMs: 1 })
  t.teardown(() => w.stop())
  const batches = Array.from({ length: 20 }, (_, k) => payloads(1 + (k * 7) % 40, `b${k}-`))
  const got: [number, Uint8Array][] = []
  batches.forEach((ps, k) => w.seal(ps, (sig) => got.push([k, sig])))
  t.equal(w.mode, 'worker')
  t.ok(w.sealsPending > 0, 'seals are pending on the thread, not signed inline')
  const end = Date.now() + 10_000
  while (got.length < batches.length && Date.now() < end) await new Promise((r) => setTimeout(r, 2))
  t.same(got.map(([k]) => k), batches.map((_, k) => k), 'every seal is handed back once, in the order asked')
  for (const [k, sig] of got) t.same(sig, signSeal(alice, batches[k]!), `seal ${k} is the key's deterministic Ed25519 signature`)
  t.same(failures, [])
})

t.test('a seal check on the thread reports a forged or mismatched seal with its context; a good one is silent', async (t) => {
  const { w, failures } = worker()
  const ps = payloads(33)
  w.submitSeal(alice.did, ps, signSeal(alice, ps), 'id-good', 'good')
  w.submitSeal(alice.did, ps, signSeal(bob, ps), 'id-forged', 'forged')
  w.submitSeal(alice.did, ps.slice(1), signSeal(alice, ps), 'id-short', 'one member missing')
  w.submitSeal(alice.did, [...ps].reverse(), signSeal(alice, ps), 'id-order', 'reordered')
  await w.drained()
  t.same(failures.map(([ctx]) => ctx), ['forged', 'one member missing', 'reordered'])
  for (const [, err] of failures) t.type(err, BadSignatureError)
  t.match(failures[0]![1].message, /seal of the batch of envelope id-forged \(33 envelopes\)/)
})

t.test('a seal job lets go of its batch once the thread has checked it (not after 1024 more jobs)', async (t) => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const { w, failures } = worker()
  const until = async (ok: () => boolean): Promise<void> => {
    const end = Date.now() + 10_000
    while (!ok() && Date.now() < end) await new Promise((r) => setTimeout(r, 2))
  }
  let held: Uint8Array[] | undefined = payloads(64, 'held-')
  const refs = held.map((p) => new WeakRef(p))
  w.submitSeal(alice.did, held, signSeal(alice, held), 'held', 'held')
  held = undefined
  await until(() => w.signatureChecks >= 1)
  const second = payloads(2, 'second-')
  w.submitSeal(alice.did, second, signSeal(alice, second), 'second', 'second')
  // the second check done means the first job is counted as checked (the thread does them in order)
  await until(() => w.signatureChecks >= 2)
  // the next submission forgets what the thread has checked (backlog and drained() would too: not called here)
  const third = payloads(2, 'third-')
  w.submitSeal(alice.did, third, signSeal(alice, third), 'third', 'third')
  await new Promise((r) => setImmediate(r))
  gc()
  t.equal(refs.filter((r) => r.deref() !== undefined).length, 0, 'no payload of the checked batch is still reachable')
  await w.drained()
  t.same(failures, [])
})

t.test('stop() signs the seals still pending inline and checks pending seals inline; nothing is lost', async (t) => {
  const failures: [string, IdentityError][] = []
  const w = new SignatureWorker<string>({ onFailure: (ctx, err) => failures.push([ctx, err]), signer: alice, sealPollMs: 1000 })
  const got: Uint8Array[] = []
  const ps = payloads(200)
  for (let k = 0; k < 50; k++) w.seal(ps, (sig) => got.push(sig))
  w.submitSeal(alice.did, ps, signSeal(bob, ps), 'x', 'forged at stop')
  await w.stop()
  t.equal(got.length, 50, 'every seal asked for was handed back')
  const want = signSeal(alice, ps)
  t.ok(got.every((s) => Buffer.compare(Buffer.from(s), Buffer.from(want)) === 0))
  t.same(failures.map(([ctx]) => ctx), ['forged at stop'])
  const after: Uint8Array[] = []
  w.seal(ps, (sig) => after.push(sig))
  t.equal(after.length, 1, 'after stop a seal is signed inline, at once')
  t.throws(() => w.submitSeal(alice.did, ps, signSeal(bob, ps), 'y', 'inline'), BadSignatureError, 'after stop a forged seal throws at submit')
})

t.test('a worker without a signer refuses to seal', async (t) => {
  const { w } = worker()
  t.throws(() => w.seal(payloads(1), () => {}), IdentityError)
})

t.test('beyond maxPendingSeals the pending seals and the new one are signed inline, in order: seals never lag without bound', async (t) => {
  const w = new SignatureWorker<string>({ onFailure: () => {}, signer: alice, sealPollMs: 1000, maxPendingSeals: 2 })
  t.teardown(() => w.stop())
  const order: number[] = []
  const ps = payloads(3)
  for (let k = 0; k < 7; k++) {
    w.seal(ps, () => order.push(k))
    t.ok(w.sealsPending <= 2, `at most 2 wait on the thread (${w.sealsPending} after seal ${k})`)
  }
  const end = Date.now() + 10_000
  while (order.length < 7 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 5))
    w.collectSeals()
  }
  t.same(order, [0, 1, 2, 3, 4, 5, 6], 'every seal handed back once, in the order asked')
})

t.test('a thread that fails is reported once (onThreadLost); what it held is done inline, nothing is lost', async (t) => {
  const failures: [string, IdentityError][] = []
  const lost: Error[] = []
  const w = new SignatureWorker<string>({
    onFailure: (ctx, err) => failures.push([ctx, err]),
    onThreadLost: (reason) => lost.push(reason),
    signer: alice,
    threadModule: new URL('./failing-thread.ts', import.meta.url),
  })
  t.teardown(() => w.stop())
  w.start()
  const envs = batch(8)
  envs.forEach((s, i) => submit(w, i === 3 ? tamper(s) : s.bytes, s.envelope.id, `#${i}`))
  const ps = payloads(5)
  const seals: Uint8Array[] = []
  w.seal(ps, (sig) => seals.push(sig))
  const end = Date.now() + 10_000
  while (lost.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5))
  t.equal(lost.length, 1, 'reported once')
  t.match(lost[0]!.message, /signature thread (failed|exited)/)
  t.equal(w.mode, 'inline')
  t.same(failures.map(([ctx]) => ctx), ['#3'], 'the bad envelope it held was checked inline and reported')
  t.equal(seals.length, 1, 'the seal it held was signed inline')
  t.same(Buffer.from(seals[0]!).toString('hex'), Buffer.from(signSeal(alice, ps)).toString('hex'))
  const bad = tamper(envs[5]!)
  t.throws(() => submit(w, bad, envs[5]!.envelope.id, 'after'), BadSignatureError, 'from then on checks run inline')
})

t.test('a seal too large for the ring is signed inline after the seals still on the thread, in order', async (t) => {
  const w = new SignatureWorker<string>({ onFailure: () => {}, signer: alice, sealPollMs: 1000 })
  t.teardown(() => w.stop())
  const order: string[] = []
  const small = payloads(3)
  w.seal(small, () => order.push('small'))
  t.equal(w.sealsPending, 1, 'the small seal waits on the thread')
  const huge = Array.from({ length: 9 }, () => new Uint8Array(1024 * 1024).fill(7)) // 9 MiB: more than the ring
  let hugeSig: Uint8Array | undefined
  w.seal(huge, (sig) => {
    order.push('huge')
    hugeSig = sig
  })
  t.same(order, ['small', 'huge'], 'both handed back at once, the earlier first')
  t.equal(w.sealsPending, 0)
  t.same(Buffer.from(hugeSig!).toString('hex'), Buffer.from(signSeal(alice, huge)).toString('hex'))
})

t.test('onPassed: a job submitted with notify is reported once when it passes, never when it fails; jobs without notify are not reported', async (t) => {
  const passed: string[] = []
  const failures: string[] = []
  const w = new SignatureWorker<string>({ onFailure: (ctx) => failures.push(ctx), onPassed: (ctx) => passed.push(ctx) })
  t.teardown(() => w.stop())
  w.start()
  const envs = batch(40)
  const routes = envs.map((s, i) => w.submit(alice.did, decodeWireHeader(i === 7 ? tamper(s) : s.bytes), i === 7 ? tamper(s) : s.bytes, s.envelope.id, `#${i}`, i % 2 === 1))
  t.ok(routes.every((r) => r === 'queued'), 'a running thread takes them')
  t.ok(w.awaited > 0, 'the notified jobs are awaited')
  const payloads = [prepareEnvelope(alice, { from: alice.did, to: `${bob.did}/x`, behavior: '/t/hit', body: 1 }).payload]
  w.submitSeal(alice.did, payloads, signSeal(alice, payloads), 'seal-ok', 'seal-ok', true)
  w.submitSeal(alice.did, payloads, signSeal(bob, payloads), 'seal-bad', 'seal-bad', true)
  const end = Date.now() + 10_000
  while (w.awaited > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 2))
  t.equal(w.awaited, 0, 'every awaited job came back without anyone calling drained()')
  t.same(passed, [...envs.map((_, i) => i).filter((i) => i % 2 === 1 && i !== 7).map((i) => `#${i}`), 'seal-ok'], 'the odd ones (notify) that passed, in order, and the good seal')
  t.same(failures, ['#7', 'seal-bad'], 'the bad envelope and the bad seal failed, and were not reported as passed')
})

t.test('onPassed: after the thread is stopped a check runs inline and submit says so (checked), or throws', async (t) => {
  const passed: string[] = []
  const w = new SignatureWorker<string>({ onFailure: () => {}, onPassed: (ctx) => passed.push(ctx) })
  await w.stop()
  const s = signEnvelope(alice, { from: alice.did, to: `${bob.did}/sink`, behavior: '/t/hit', body: 1 })
  t.equal(w.submit(alice.did, decodeWireHeader(s.bytes), s.bytes, s.envelope.id, 'inline', true), 'checked')
  t.throws(() => w.submit(alice.did, decodeWireHeader(tamper(s)), tamper(s), s.envelope.id, 'bad', true), BadSignatureError)
  t.same(passed, [], 'an inline result is returned, not reported')
})

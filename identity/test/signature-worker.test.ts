// The signature worker checks envelope signatures on its own thread (spec/envelope.md, "Concurrent signature
// checks"): good envelopes produce no failure, each bad one exactly one failure with its context, in order;
// without a thread (a full backlog, after stop) the check runs inline and throws; the ring wraps correctly.
import t from 'tap'
import { NodeKey } from '../keys.ts'
import { signEnvelope, signEnvelopeBatch, type SignedEnvelope } from '../envelope.ts'
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

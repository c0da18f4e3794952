// The artifact store on a real disk: bytes are kept only under the digest they hash to, checked again on
// each use, bounded with least-recently-used eviction that spares pinned and busy artifacts.
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync, chmodSync, readdirSync, utimesSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ArtifactStore } from '../store.ts'
import { digestOf } from '../digest.ts'
import { ArtifactDigestMismatchError, ArtifactNotFoundError, ArtifactTooLargeError, InvalidArtifactDigestError } from '../errors.ts'

const dir = mkdtempSync(join(tmpdir(), 'noir-store-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
let n = 0
const fresh = (maxBytes?: number): ArtifactStore => new ArtifactStore({ dir: join(dir, `s${n++}`), ...(maxBytes ? { maxBytes } : {}) })
const bytes = (size: number, fill: number): Buffer => Buffer.alloc(size, fill)

t.test('a file put in is found by the sha256 of its bytes and read back verified', async (t) => {
  const s = fresh()
  const src = join(dir, 'src.bin')
  writeFileSync(src, bytes(3_000_000, 7))
  const { digest, bytes: size } = await s.putFile(src)
  t.equal(digest, digestOf(bytes(3_000_000, 7)))
  t.equal(size, 3_000_000)
  t.ok(s.has(digest))
  const path = await s.verifiedPath(digest)
  t.match(path, /blobs\/[0-9a-f]{64}$/)
})

t.test('bytes that do not hash to the digest asked for are refused and not kept', async (t) => {
  const s = fresh()
  const want = digestOf(bytes(100, 1))
  const r = await s.receive(want)
  await r.write(bytes(100, 2))
  await t.rejects(r.finish(), ArtifactDigestMismatchError)
  t.notOk(s.has(want), 'nothing is kept under the digest')
  t.same(readdirSync(join(s.dir, 'tmp')), [], 'and nothing is left in tmp')
})

t.test('an artifact changed on disk is refused at its next use and removed', async (t) => {
  const s = fresh()
  const d = await s.putBytes(bytes(1000, 3))
  const file = join(s.dir, 'blobs', d.slice(7))
  chmodSync(file, 0o600)
  writeFileSync(file, bytes(1000, 4))
  await t.rejects(s.verifiedPath(d), ArtifactDigestMismatchError)
  t.notOk(s.has(d))
  await t.rejects(s.verifiedPath(d), ArtifactNotFoundError)
})

t.test('a receiver stops at the byte past its limit with ArtifactTooLargeError', async (t) => {
  const s = fresh()
  const r = await s.receive(digestOf(bytes(10, 0)), { limit: 1000 })
  await r.write(bytes(600, 0))
  await t.rejects(r.write(bytes(600, 0)), ArtifactTooLargeError)
  await t.rejects(s.receive(digestOf(bytes(10, 0)), { limit: 1000, expectedBytes: 5000 }), ArtifactTooLargeError, 'an announced size over the limit is refused before a byte is taken')
})

t.test('the bound evicts least recently used artifacts first, never pinned ones', async (t) => {
  const s = fresh(10_000)
  const a = await s.putBytes(bytes(4000, 1))
  const b = await s.putBytes(bytes(4000, 2))
  s.pin(a)
  // a is the oldest, but pinned; b goes
  const old = new Date(Date.now() - 60_000)
  utimesSync(join(s.dir, 'blobs', a.slice(7)), old, old)
  const c = await s.putBytes(bytes(4000, 3))
  t.ok(s.has(a), 'the pinned artifact stays')
  t.notOk(s.has(b), 'the unpinned least recently used one is evicted')
  t.ok(s.has(c))
  t.ok(s.usedBytes() <= 10_000)
  await t.rejects(s.putBytes(bytes(7000, 4)), ArtifactTooLargeError, 'what cannot fit beside pinned artifacts is refused')
  await t.rejects(s.putBytes(bytes(20_000, 5)), ArtifactTooLargeError, 'more than the whole bound is refused')
})

t.test('a digest that is not sha256 and 64 hex digits never reaches the disk', async (t) => {
  const s = fresh()
  for (const bad of ['sha256:../../etc/passwd', '../blobs/x', 'sha256:' + 'A'.repeat(64), 'md5:abc', '']) {
    t.throws(() => s.has(bad), InvalidArtifactDigestError, JSON.stringify(bad))
    await t.rejects(s.verifiedPath(bad), InvalidArtifactDigestError)
  }
})

t.test('a large artifact is hashed by a worker reading the file back, with the same verdicts', async (t) => {
  const s = new ArtifactStore({ dir: join(dir, `worker${n++}`), hashOffThreadFrom: 1 << 20 })
  const good = randomFill(10 * 1024 * 1024)
  const d = digestOf(good)
  const r = await s.receive(d, { expectedBytes: good.length })
  for (let i = 0; i < good.length; i += 65536) await r.write(good.subarray(i, i + 65536))
  await r.finish()
  t.ok(r.kept && s.has(d), 'matching bytes are kept')
  const bad = Buffer.from(good)
  bad[5_000_000] = bad[5_000_000]! ^ 1
  const r2 = await s.receive(digestOf(Buffer.from('other')), { expectedBytes: bad.length })
  await r2.write(bad)
  await t.rejects(r2.finish(), ArtifactDigestMismatchError, 'one flipped bit is refused')
})

function randomFill(n: number): Buffer {
  const b = Buffer.alloc(n)
  for (let i = 0; i < n; i += 4) b.writeUInt32LE((i * 2654435761) >>> 0, i)
  return b
}

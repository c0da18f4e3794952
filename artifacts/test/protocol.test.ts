// /noir/artifact/1.0.0 between real libp2p hosts over TCP: a fetch keeps only bytes that hash to the digest;
// a holder that lies about the bytes, their number or their size is refused with a typed error and nothing is
// kept; a refusal reaches the fetcher as its typed error; a provenance record goes only to its consumer.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import type { Libp2p, Stream } from '@libp2p/interface'
import { NodeKey } from '../../identity/keys.ts'
import { Mesh } from '../../p2p/mesh.ts'
import { ArtifactStore } from '../store.ts'
import { ARTIFACT_PROTOCOL, fetchArtifact, fetchProvenance, serveArtifacts } from '../protocol.ts'
import { digestOf } from '../digest.ts'
import { ArtifactDigestMismatchError, ArtifactNotFoundError, ArtifactProtocolError, ArtifactTooLargeError } from '../errors.ts'

const dir = mkdtempSync(join(tmpdir(), 'noir-proto-'))
const meshOpts = { mdns: false, natTraversal: false, pingIntervalMs: 0 }
const keys = { a: NodeKey.generate(), b: NodeKey.generate(), c: NodeKey.generate() }
const a = await Mesh.create({ key: keys.a, ...meshOpts })
await a.start()
const b = await Mesh.create({ key: keys.b, ...meshOpts, bootstrap: a.multiaddrs() })
await b.start()
const liar = await Mesh.create({ key: keys.c, ...meshOpts, bootstrap: a.multiaddrs() })
await liar.start()
t.teardown(async () => {
  await liar.stop()
  await b.stop()
  await a.stop()
  rmSync(dir, { recursive: true, force: true })
})
const host = (m: Mesh): Libp2p => m.host as unknown as Libp2p
const storeA = new ArtifactStore({ dir: join(dir, 'a') })
const unserve = await serveArtifacts(host(a), storeA, {
  provenance: async (id, peer) => {
    if (peer.toString() !== b.peerId) throw new ArtifactNotFoundError(`no record of ${id} for you`)
    return Buffer.from(JSON.stringify({ contractId: id }))
  },
})
t.teardown(unserve)

let n = 0
const storeB = (): ArtifactStore => new ArtifactStore({ dir: join(dir, `b${n++}`) })

t.test('a fetched artifact arrives whole and is kept under its digest', async (t) => {
  const bytes = randomBytes(5 * 1024 * 1024 + 123)
  const digest = await storeA.putBytes(bytes)
  const s = storeB()
  const got = await fetchArtifact(host(b), host(a).peerId, digest, s)
  t.equal(got.bytes, bytes.length)
  t.ok(s.has(digest))
  t.ok((await s.verifiedPath(digest)).endsWith(digest.slice(7)))
})

t.test('the holder\'s refusal arrives as a typed error', async (t) => {
  await t.rejects(fetchArtifact(host(b), host(a).peerId, digestOf(Buffer.from('nobody has this')), storeB()), ArtifactNotFoundError)
})

/** Serves one lying answer on the liar's host. */
async function lie(answer: (stream: Stream) => Promise<void>): Promise<void> {
  await host(liar).unhandle(ARTIFACT_PROTOCOL).catch(() => undefined)
  await host(liar).handle(ARTIFACT_PROTOCOL, (stream) => void answer(stream).catch(() => undefined))
}
const line = (v: unknown): Uint8Array => Buffer.from(JSON.stringify(v) + '\n')

t.test('bytes that do not match the digest are refused, and nothing is kept', async (t) => {
  const wanted = Buffer.from('the real module')
  await lie(async (s) => {
    const tampered = Buffer.from('the evil module')
    s.send(line({ ok: true, bytes: tampered.length }))
    s.send(tampered)
    await s.close()
  })
  const s = storeB()
  await t.rejects(fetchArtifact(host(b), host(liar).peerId, digestOf(wanted), s), ArtifactDigestMismatchError)
  t.notOk(s.has(digestOf(wanted)))
})

t.test('more bytes than announced, or fewer, is a protocol error', async (t) => {
  const wanted = Buffer.from('x'.repeat(100))
  await lie(async (s) => {
    s.send(line({ ok: true, bytes: 10 }))
    s.send(wanted)
    await s.close()
  })
  await t.rejects(fetchArtifact(host(b), host(liar).peerId, digestOf(wanted), storeB()), ArtifactProtocolError)
  await lie(async (s) => {
    s.send(line({ ok: true, bytes: 1000 }))
    s.send(wanted)
    await s.close()
  })
  await t.rejects(fetchArtifact(host(b), host(liar).peerId, digestOf(wanted), storeB()), ArtifactProtocolError)
})

t.test('an announced size over the limit is refused before any byte is taken', async (t) => {
  await lie(async (s) => {
    s.send(line({ ok: true, bytes: 2 ** 40 }))
    await s.close()
  })
  await t.rejects(fetchArtifact(host(b), host(liar).peerId, digestOf(Buffer.from('big')), storeB(), { limit: 1 << 20 }), ArtifactTooLargeError)
})

t.test('a header that never ends, or is not JSON, is a protocol error', async (t) => {
  await lie(async (s) => {
    s.send(Buffer.alloc(10_000, 0x41))
    await s.close()
  })
  await t.rejects(fetchArtifact(host(b), host(liar).peerId, digestOf(Buffer.from('y')), storeB()), ArtifactProtocolError)
  await lie(async (s) => {
    s.send(Buffer.from('not json\n'))
    await s.close()
  })
  await t.rejects(fetchArtifact(host(b), host(liar).peerId, digestOf(Buffer.from('y')), storeB()), ArtifactProtocolError)
})

t.test('a provenance record goes to its consumer only', async (t) => {
  t.same(await fetchProvenance(host(b), host(a).peerId, 'contract-1'), { contractId: 'contract-1' })
  await t.rejects(fetchProvenance(host(liar), host(a).peerId, 'contract-1'), ArtifactNotFoundError)
})

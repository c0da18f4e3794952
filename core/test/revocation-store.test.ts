// Revocations kept in a KvStore (core/revocation-store.ts): across a reopen of the level store, with records
// written before it (JSON text in a utf8 database) still read, and the expired ones dropped at open.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { CapabilityVerifier, createRevocation, issueCapability, NodeKey, RevokedCapabilityError, tokenHash } from '../../identity/index.ts'
import { KvRevocationStore } from '../revocation-store.ts'
import { LevelKvStore } from '../level-kv-store.ts'
import { MemoryKvStore } from '../kv-store.ts'

const root = NodeKey.generate()
const alice = NodeKey.generate()
const HOUR = 3_600_000

t.test('the level revocation store keeps revocations across reopen and the verifier honours them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-rev-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const token = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir' }], ttlMs: HOUR })
  const kv1 = await LevelKvStore.open(join(dir, 'rev'))
  const s1 = await KvRevocationStore.open(kv1)
  await s1.add(createRevocation(root, token))
  await kv1.close()
  const kv2 = await LevelKvStore.open(join(dir, 'rev'))
  t.teardown(() => kv2.close())
  const s2 = await KvRevocationStore.open(kv2)
  t.equal(s2.isRevoked(tokenHash(token)), true)
  t.same(s2.revokersOf(tokenHash(token)), [root.did])
  t.equal((await s2.list()).length, 1)
  await t.rejects(new CapabilityVerifier({ trustedRoots: [root.did], revocations: s2 }).verify(token), RevokedCapabilityError)
})

t.test('records written before the KvStore (JSON text in a utf8 database) still load, the expired ones are dropped', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-rev-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const live = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir' }], ttlMs: HOUR })
  const old = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/old' }], ttlMs: HOUR })
  const r1 = createRevocation(root, live)
  const r2 = createRevocation(root, old)
  // as the level revocation store wrote them before
  const before = new Level<string, string>(dir, { valueEncoding: 'utf8' })
  await before.put(`${r1.token}!${r1.issuer}`, JSON.stringify({ ...r1, expiresAt: Date.now() + HOUR }))
  await before.put(`${r2.token}!${r2.issuer}`, JSON.stringify({ ...r2, expiresAt: Date.now() - 1 }))
  await before.close()
  const kv = await LevelKvStore.open(dir)
  t.teardown(() => kv.close())
  const s = await KvRevocationStore.open(kv)
  t.equal(s.isRevoked(r1.token), true)
  t.equal(s.isRevoked(r2.token), false, 'its token expired')
  t.equal(await kv.get(`${r2.token}!${r2.issuer}`), undefined, 'and its record is gone')
})

t.test('a revocation of a token that expires is pruned once it has', async (t) => {
  const token = await issueCapability(root, { audience: alice.did, abilities: [{ can: '/noir' }], ttlMs: HOUR })
  const kv = new MemoryKvStore()
  const s = await KvRevocationStore.open(kv)
  const r = createRevocation(root, token)
  await s.add(r, { expiresAt: 1000 })
  t.equal(s.size, 1)
  t.equal(await s.prune(999), 0)
  t.equal(await s.prune(1000), 1)
  t.equal(s.size, 0)
  t.same(await s.list(), [])
})

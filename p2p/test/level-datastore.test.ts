// The level-backed libp2p datastore: the operations libp2p's peer store and kad-dht use.
import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Level } from 'level'
import { Key } from 'interface-datastore'
import { LevelDatastore } from '../level-datastore.ts'

t.test('put/get/has/delete, a missing key is NotFoundError, queries by prefix with filters, order and limit', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-ds-'))
  const db = new Level<string, Uint8Array>(dir, { valueEncoding: 'view' })
  t.teardown(async () => {
    await db.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const ds = new LevelDatastore(db.sublevel<string, Uint8Array>('libp2p', { valueEncoding: 'view' }))
  await ds.put(new Key('/peers/b'), Uint8Array.of(2))
  await ds.put(new Key('/peers/a'), Uint8Array.of(1))
  await ds.put(new Key('/peersx/c'), Uint8Array.of(9))
  await ds.put(new Key('/other/z'), Uint8Array.of(3))
  t.same([...(await ds.get(new Key('/peers/a')))], [1])
  t.equal(await ds.has(new Key('/peers/b')), true)
  await t.rejects(ds.get(new Key('/peers/none')), { name: 'NotFoundError' })
  const all: string[] = []
  for await (const p of ds.query({ prefix: '/peers/' })) all.push(`${p.key.toString()}=${p.value[0]}`)
  t.same(all, ['/peers/a=1', '/peers/b=2'], 'prefix query, in key order')
  const filtered: string[] = []
  for await (const p of ds.query({ prefix: '/', filters: [(p) => p.value[0]! < 5], orders: [(a, b) => (a.value[0]! > b.value[0]! ? -1 : 1)], limit: 2 })) filtered.push(p.key.toString())
  t.same(filtered, ['/other/z', '/peers/b'], 'filters, orders and limit apply')
  const b = ds.batch()
  b.delete(new Key('/peers/a'))
  b.put(new Key('/peers/d'), Uint8Array.of(4))
  await b.commit()
  const keys: string[] = []
  for await (const k of ds.queryKeys({ prefix: '/peers/' })) keys.push(k.toString())
  t.same(keys, ['/peers/b', '/peers/d'], 'a batch applies puts and deletes')
  await ds.delete(new Key('/peers/b'))
  t.equal(await ds.has(new Key('/peers/b')), false)
})

// The owner's catalog, attacked as a customer would: names that are paths, names of files that exist
// elsewhere, a link planted where an entry lives, an entry changed after the owner added it.
import t, { type Test } from 'tap'
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Catalog, catalogNeeds } from '../catalog/catalog.ts'
import { CatalogEntryCorruptError, CatalogEntryNotFoundError, InvalidCatalogEntryError } from '../errors.ts'

function home(t: Test): string {
  const d = mkdtempSync(join(tmpdir(), 'noir-catalog-'))
  t.teardown(() => rmSync(d, { recursive: true, force: true }))
  return d
}

t.test('an entry the owner added resolves to a private copy whose digest is checked', async (t) => {
  const h = home(t)
  const src = join(h, 'm.wasm')
  writeFileSync(src, 'module bytes')
  const c = new Catalog(h)
  const e = c.add('wasm', 'hello', src)
  t.equal(e.bytes, 12)
  writeFileSync(src, 'changed later') // the owner's original may change: the catalog holds its own copy
  const p = await c.resolve('wasm', 'hello')
  t.equal(readFileSync(p, 'utf8'), 'module bytes')
  t.equal(statSync(p).mode & 0o777, 0o600, 'the copy is 0600')
  t.equal(statSync(c.dir).mode & 0o777, 0o700, 'the catalog folder is 0700')
  t.same(c.list().map((x) => `${x.kind}/${x.name}`), ['wasm/hello'])
  t.ok(c.has('wasm', 'hello'))
  t.notOk(c.has('actor', 'hello'), 'kinds are apart')
  t.equal(c.remove('wasm', 'hello'), true)
  await t.rejects(c.resolve('wasm', 'hello'), CatalogEntryNotFoundError)
})

t.test('a name that is a path, or names a file that exists, is the same CatalogEntryNotFoundError (no oracle)', async (t) => {
  const h = home(t)
  writeFileSync(join(h, 'keystore.json'), 'secret')
  const c = new Catalog(h)
  c.add('wasm', 'real', join(h, 'keystore.json'))
  const messages = new Set<string>()
  for (const name of ['../keystore.json', '../../keystore.json', '/etc/passwd', './x', 'a/b', '%2e%2e%2fkeystore.json', '..', '.', 'catalog.json', 'REAL', 'real/../real', '', 'x'.repeat(65), 'nonexistent']) {
    const err = await c.resolve('wasm', name).then(() => undefined, (e: unknown) => e)
    t.ok(err instanceof CatalogEntryNotFoundError, `'${name}' is CatalogEntryNotFoundError`)
    messages.add((err as Error).message.replace(`'${name.slice(0, 64)}'`, "'NAME'"))
  }
  t.equal(messages.size, 1, 'every refusal reads the same, whatever exists on the disk')
  await t.rejects(c.resolve('actor', 'real'), CatalogEntryNotFoundError, 'an entry of another kind is not served')
})

t.test('a link planted where an entry lives is not followed; a changed entry is refused', async (t) => {
  const h = home(t)
  const src = join(h, 'bundle.js')
  writeFileSync(src, 'export default 1')
  writeFileSync(join(h, 'secret'), 'x'.repeat(16)) // same size as the entry
  const c = new Catalog(h)
  c.add('actor', 'counter', src)
  const entry = await c.resolve('actor', 'counter')
  unlinkSync(entry)
  symlinkSync(join(h, 'secret'), entry)
  await t.rejects(c.resolve('actor', 'counter'), CatalogEntryCorruptError, 'the link is not followed (O_NOFOLLOW)')
  unlinkSync(entry)
  writeFileSync(entry, 'export default 2')
  await t.rejects(c.resolve('actor', 'counter'), CatalogEntryCorruptError, 'same size, other bytes: the digest refuses it')
  c.add('actor', 'counter', src) // the owner adds it again: a fresh copy replaces whatever was there
  t.equal(readFileSync(await c.resolve('actor', 'counter'), 'utf8'), 'export default 1')
})

t.test('the owner\'s add refuses bad kinds, names and files with InvalidCatalogEntryError', async (t) => {
  const h = home(t)
  const src = join(h, 'f')
  writeFileSync(src, 'x')
  const c = new Catalog(h)
  t.throws(() => c.add('docker', 'x', src), InvalidCatalogEntryError)
  for (const name of ['../x', 'a/b', '.x', 'X', '']) t.throws(() => c.add('wasm', name, src), InvalidCatalogEntryError, `name '${name}'`)
  t.throws(() => c.add('wasm', 'x', join(h, 'missing')), InvalidCatalogEntryError)
  writeFileSync(join(h, 'empty'), '')
  t.throws(() => c.add('wasm', 'x', join(h, 'empty')), InvalidCatalogEntryError)
  chmodSync(h, 0o700)
})

t.test('catalogNeeds lists the entries a runtime names', async (t) => {
  t.same(catalogNeeds({ type: 'container' }), [])
  t.same(catalogNeeds({ type: 'wasm', module: 'm' }), [['wasm', 'm']])
  t.same(catalogNeeds({ type: 'microvm', kernel: 'k', rootfs: 'r' }), [['kernel', 'k'], ['rootfs', 'r']])
  t.same(catalogNeeds({ type: 'actor', bundle: 'b' }), [['actor', 'b']])
})

// Archives (bundles, outputs) against an attacker: paths that escape, links, devices, duplicates and
// oversize contents are refused; packing never follows a link out of the folder; packing is deterministic.
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync, mkdirSync, symlinkSync, readFileSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { unpackArchive, walkFolder, writeArchive, checkRelativePath } from '../archive.ts'
import { bundleEntries, bundleEntryPath, importSpecifiers } from '../bundle.ts'
import { digestOf } from '../digest.ts'
import { UnsafeArchiveError, ArtifactSourceError } from '../errors.ts'

const dir = mkdtempSync(join(tmpdir(), 'noir-archive-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
let n = 0
const tmp = (): string => join(dir, `f${n++}`)

/** A hand-made ustar header (the attacker writes whatever it likes). */
function rawEntry(name: string, type: string, data = Buffer.alloc(0), linkname = ''): Buffer {
  const h = Buffer.alloc(512)
  h.write(name, 0, 100)
  h.write('0000644\0', 100)
  h.write('0000000\0', 108)
  h.write('0000000\0', 116)
  h.write(data.length.toString(8).padStart(11, '0') + '\0', 124)
  h.write('00000000000\0', 136)
  h.write('        ', 148)
  h.write(type, 156)
  h.write(linkname, 157, 100)
  h.write('ustar\0', 257)
  h.write('00', 263)
  let sum = 0
  for (const b of h) sum += b
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148)
  const pad = Buffer.alloc((512 - (data.length % 512)) % 512)
  return Buffer.concat([h, data, pad])
}
const archive = (...entries: Buffer[]): string => {
  const f = tmp()
  writeFileSync(f, Buffer.concat([...entries, Buffer.alloc(1024)]))
  return f
}

t.test('entries that could leave the target are refused', async (t) => {
  const cases: [string, Buffer][] = [
    ['absolute path', rawEntry('/etc/cron.d/x', '0', Buffer.from('x'))],
    ['dot-dot', rawEntry('a/../../escape', '0', Buffer.from('x'))],
    ['symlink', rawEntry('link', '2', Buffer.alloc(0), '/etc/passwd')],
    ['hard link', rawEntry('hard', '1', Buffer.alloc(0), '/etc/passwd')],
    ['device', rawEntry('dev', '3')],
    ['fifo', rawEntry('fifo', '6')],
    ['backslash', rawEntry('a\\..\\b', '0', Buffer.from('x'))],
  ]
  for (const [what, e] of cases) {
    const target = tmp()
    await t.rejects(unpackArchive(archive(e), target), UnsafeArchiveError, what)
  }
  t.notOk(existsSync('/escape'))
})

t.test('a second entry of the same path, or more bytes than allowed, is refused', async (t) => {
  await t.rejects(unpackArchive(archive(rawEntry('a', '0', Buffer.from('1')), rawEntry('a', '0', Buffer.from('2'))), tmp()), UnsafeArchiveError)
  await t.rejects(unpackArchive(archive(rawEntry('big', '0', Buffer.alloc(5000))), tmp(), { maxBytes: 4096 }), UnsafeArchiveError)
  const bad = rawEntry('x', '0', Buffer.from('abc'))
  bad[0] = 'y'.charCodeAt(0) // checksum no longer matches
  await t.rejects(unpackArchive(archive(bad), tmp()), UnsafeArchiveError)
})

t.test('packing a folder skips links (a workload cannot carry off a node file) and is deterministic', async (t) => {
  const src = tmp()
  mkdirSync(join(src, 'sub'), { recursive: true })
  writeFileSync(join(src, 'sub', 'b.txt'), 'b')
  writeFileSync(join(src, 'a.txt'), 'a')
  symlinkSync('/etc/hostname', join(src, 'leak'))
  t.throws(() => walkFolder(src), UnsafeArchiveError, 'a link is refused by default')
  const { entries, skipped } = walkFolder(src, { skipLinks: true })
  t.same(skipped, ['leak'])
  const [one, two] = [tmp(), tmp()]
  await writeArchive(one, entries)
  await writeArchive(two, [...entries].reverse())
  t.equal(digestOf(readFileSync(one)), digestOf(readFileSync(two)), 'same files, same digest')
  const out = tmp()
  t.same((await unpackArchive(one, out)).sort(), ['a.txt', 'sub/b.txt'])
  t.equal(readFileSync(join(out, 'sub', 'b.txt'), 'utf8'), 'b')
  t.notOk(existsSync(join(out, 'leak')))
})

t.test('checkRelativePath accepts plain relative paths only', async (t) => {
  t.equal(checkRelativePath('a/b/c.ts'), 'a/b/c.ts')
  for (const p of ['', '/a', '../a', 'a/./b', 'a//b', 'a/\0b']) t.throws(() => checkRelativePath(p), UnsafeArchiveError, JSON.stringify(p))
})

t.test('an actor bundle packs its relative imports, rewrites runtime imports, and refuses imports outside its folder', async (t) => {
  const root = tmp()
  mkdirSync(join(root, 'core'), { recursive: true })
  writeFileSync(join(root, 'core', 'index.ts'), 'export const x = 1\n')
  const app = join(root, 'apps', 'counter')
  mkdirSync(join(app, 'lib'), { recursive: true })
  writeFileSync(join(app, 'main.ts'), "import { x } from '../../core/index.ts'\nimport { y } from './lib/y.ts'\nimport { assign } from 'xstate'\nexport default x + y\n")
  writeFileSync(join(app, 'lib', 'y.ts'), "export { z as y } from './z.ts'\n")
  writeFileSync(join(app, 'lib', 'z.ts'), 'export const z = 2\n')
  const entries = bundleEntries(join(app, 'main.ts'), { runtimeRoot: root })
  const files = entries.filter((e) => e.type === 'file').map((e) => e.path).sort()
  t.same(files, ['lib/y.ts', 'lib/z.ts', 'main.ts', 'noir-bundle.json'])
  const main = Buffer.from(entries.find((e) => e.path === 'main.ts')!.data).toString('utf8')
  t.same(importSpecifiers(main), ['noir:runtime/core/index.ts', './lib/y.ts', 'xstate'], 'the runtime import is rewritten; others are kept')
  const f = tmp()
  await writeArchive(f, entries)
  const out = tmp()
  await unpackArchive(f, out)
  t.equal(bundleEntryPath(out), join(out, 'main.ts'))

  writeFileSync(join(app, 'lib', 'z.ts'), "export { secret as z } from '../../secret.ts'\n")
  writeFileSync(join(root, 'apps', 'secret.ts'), 'export const secret = 3\n')
  t.throws(() => bundleEntries(join(app, 'main.ts'), { runtimeRoot: root }), ArtifactSourceError, 'an import that leaves the bundle folder is refused')
})

import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { bundleEntries } from '../bundle.ts'
import { ArtifactSourceError } from '../errors.ts'

t.test('an actor of another project imports the installed SDK as noirledger/sdk (spec/packaging.md)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-bundle-test-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'a.ts'), "import { defineActor } from 'noirledger/sdk'\nimport { setup } from 'xstate'\nimport { helper } from './b.ts'\nexport { defineActor, setup, helper }\n")
  writeFileSync(join(dir, 'b.ts'), "export { InvalidMessageError } from \"noirledger/sdk\"\nexport const helper = 1\n")
  const files = new Map(bundleEntries(join(dir, 'a.ts')).filter((e) => e.type === 'file').map((e) => [e.path, Buffer.from(e.data).toString('utf8')]))
  t.match(files.get('a.ts'), /from 'noir:runtime\/core\/index\.ts'/, 'the SDK import resolves to the runtime the provider runs')
  t.match(files.get('a.ts'), /from 'xstate'/, 'other bare imports are left to the runtime packages')
  t.match(files.get('b.ts'), /from "noir:runtime\/core\/index\.ts"/, 'in every file of the bundle, with its quotes')
  t.notOk([...files.values()].some((s) => s.includes("'noirledger/")), 'no package specifier is left')

  writeFileSync(join(dir, 'c.ts'), "import { x } from 'noirledger/internal/thing'\nexport { x }\n")
  t.match(Buffer.from(bundleEntries(join(dir, 'c.ts')).find((e) => e.path === 'c.ts')!.data).toString('utf8'), /'noirledger\/internal\/thing'/, 'only the exported SDK is mapped; anything else stays bare and fails to resolve on the provider')
  t.throws(() => bundleEntries(join(dir, 'missing.ts')), ArtifactSourceError)
})

// The local mesh launcher behind `noir demo` (cli/local-mesh.ts): real `noir node start` processes with temp
// homes, keys under a passphrase made for the run, and nothing left behind. And the demo is product code:
// nothing `noir` imports comes from test code.
import t from 'tap'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Keystore } from '../../identity/keystore.ts'
import { LocalMesh } from '../local-mesh.ts'
import { TEST_PASSPHRASE } from '../../scripts/testing/daemons.ts'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')

t.test('a local mesh runs real daemons under a passphrase of its own and leaves no process or home behind', async (t) => {
  const mesh = new LocalMesh()
  t.teardown(() => mesh.cleanup())
  const [a, b] = await mesh.startMany(2)
  const peers = await a!.api.get<{ peers: { did?: string }[] }>('/v1/peers')
  t.ok(Array.isArray(peers.peers), 'its local API answers')
  t.not(a!.pid, process.pid)
  await t.rejects(Keystore.load(a!.home, TEST_PASSPHRASE), 'the key is not under the fixed test passphrase')

  const { containersRemoved } = await mesh.shutdown()
  t.equal(containersRemoved, 0)
  for (const n of [a!, b!]) {
    t.equal(n.running, false, `daemon ${n.pid} stopped`)
    t.equal(existsSync(n.home), false, `its home ${n.home} is removed`)
  }
})

t.test('the noir command imports no test code (the demo runs on product code only)', async (t) => {
  const importRe = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g
  const seen = new Set<string>()
  const offenders: string[] = []
  const visit = (file: string): void => {
    if (seen.has(file)) return
    seen.add(file)
    const rel = relative(root, file)
    if (rel.split('/').includes('test') || rel.startsWith('scripts/')) offenders.push(rel)
    for (const m of readFileSync(file, 'utf8').matchAll(importRe)) {
      const spec = m[1] ?? m[2]
      if (spec?.startsWith('.') && spec.endsWith('.ts')) visit(resolve(dirname(file), spec))
    }
  }
  visit(join(root, 'cli/main.ts'))
  t.ok(seen.has(join(root, 'cli/commands/demo.ts')), 'the walk reaches the demo command')
  t.same(offenders, [], 'no file under a test folder or scripts/')
})

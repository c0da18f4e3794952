// Dependencies point one way: cli -> client -> gateway -> appliance -> settlement -> trust -> actors -> artifacts -> p2p -> ledger -> core -> identity (spec/architecture.md).
// Non-test source in a layer may import only its own layer and the layers below it.
import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const layers = ['identity', 'core', 'ledger', 'p2p', 'artifacts', 'actors', 'trust', 'settlement', 'appliance', 'gateway', 'client', 'cli'] as const

function sourceFiles(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) {
      if (name === 'test' || name === 'node_modules' || name === 'fixtures') continue
      out.push(...sourceFiles(p))
    } else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) out.push(p)
  }
  return out
}

const importRe = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g

t.test('no layer imports a layer above it', async (t) => {
  const violations: string[] = []
  for (const [rank, layer] of layers.entries()) {
    let files: string[] = []
    try { files = sourceFiles(join(root, layer)) } catch { continue }
    for (const file of files) {
      const text = readFileSync(file, 'utf8')
      for (const m of text.matchAll(importRe)) {
        const spec = m[1] ?? m[2]
        if (!spec || !spec.startsWith('.')) continue
        const target = relative(root, resolve(dirname(file), spec)).split('/')[0]
        const targetRank = layers.indexOf(target as (typeof layers)[number])
        if (targetRank > rank) violations.push(`${relative(root, file)} imports ${spec} (${layer} -> ${target})`)
      }
    }
  }
  t.same(violations, [], 'every import points down the layers')
})

// One private-member style across the code base: ECMAScript private names (`#x`), never TypeScript's
// `private` modifier (spec/architecture.md). A constructor cannot be `#`: `private constructor` stays.
import t from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
const folders = ['identity', 'core', 'ledger', 'p2p', 'actors', 'settlement', 'appliance', 'cli', 'examples', 'bench', 'scripts', 'fuzz', 'chaos']

function tsFiles(dir: string): string[] {
  const out: string[] = []
  for (const name of readdirSync(dir)) {
    const p = join(dir, name)
    if (statSync(p).isDirectory()) {
      if (name === 'node_modules' || name === 'fixtures') continue
      out.push(...tsFiles(p))
    } else if (name.endsWith('.ts')) out.push(p)
  }
  return out
}

t.test('no class member is declared with the private modifier: private names (#x) instead', async (t) => {
  const found: string[] = []
  for (const folder of folders) {
    let files: string[] = []
    try { files = tsFiles(join(root, folder)) } catch { continue }
    for (const file of files) {
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        if (/^\s*(?:(?:static|readonly|async|override)\s+)*private\s+(?!constructor\b)/.test(line)) found.push(`${relative(root, file)}:${i + 1}: ${line.trim()}`)
      })
    }
  }
  t.same(found, [], 'every private member is a private name')
})

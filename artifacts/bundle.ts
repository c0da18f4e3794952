// SDK actor bundles as artifacts (spec/artifacts.md "Actor bundles"): the entry file and the files it imports
// by relative path, packed as one archive with a small manifest, `noir-bundle.json` `{ "v": 1, "entry" }`.
// Imports of the SDK's own code (the runtime's `core/` and `identity/`) are not packed: their specifiers are
// rewritten to `noir:runtime/<path>`, which the provider's sandbox resolves to its own copy. Bare specifiers
// (`xstate`) and `node:` built-ins are left as they are and resolve from the provider's runtime.
import { existsSync, readFileSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { ArtifactSourceError, UnsafeArchiveError } from './errors.ts'
import { checkRelativePath, type ArchiveEntry } from './archive.ts'

export const BUNDLE_MANIFEST = 'noir-bundle.json'
export const RUNTIME_SCHEME = 'noir:runtime/'
/** The runtime's folders a bundle imports from the provider, never packs. */
export const RUNTIME_FOLDERS = ['core', 'identity'] as const
const MAX_BUNDLE_FILES = 500
/**
 * The installed package's SDK entry points (package.json `exports`, spec/packaging.md): an actor written in
 * another project imports `noirledger/sdk`, which the provider resolves to its own runtime, like any
 * runtime import.
 */
const PACKAGE_SDK: Readonly<Record<string, string>> = { 'noirledger/sdk': 'core/index.ts' }

const repoRoot = fileURLToPath(new URL('../', import.meta.url))

const importRe = /((?:^|[\n;])\s*(?:import|export)\s[^'"]*?from\s+|(?:^|[\n;])\s*import\s+|import\(\s*)(['"])([^'"\n]+)\2/g

/** Every module specifier a source text names (static imports and exports, side-effect imports, literal dynamic imports). */
export function importSpecifiers(text: string): string[] {
  return [...text.matchAll(importRe)].map((m) => m[3]!)
}

const isRelative = (s: string): boolean => s.startsWith('./') || s.startsWith('../')

/** The runtime path (`core/index.ts`) an absolute file is, or undefined when it is not the runtime's code. */
function runtimePath(abs: string, root: string): string | undefined {
  const rel = relative(root, abs)
  if (rel.startsWith('..') || rel === '') return undefined
  const top = rel.split(sep)[0]
  return (RUNTIME_FOLDERS as readonly string[]).includes(top!) ? rel.split(sep).join('/') : undefined
}

/**
 * The archive entries of the bundle whose entry file is `entry`: the entry and every file reached by
 * relative imports, all inside the entry's folder (an import that leaves it, other than into the runtime,
 * is ArtifactSourceError), with runtime imports rewritten.
 */
export function bundleEntries(entry: string, o: { runtimeRoot?: string } = {}): (ArchiveEntry & { data: Uint8Array })[] {
  const root = o.runtimeRoot ?? repoRoot
  const main = resolve(entry)
  if (!existsSync(main) || !statSync(main).isFile()) throw new ArtifactSourceError(`actor bundle '${entry}': no such file`)
  const base = dirname(main)
  const out = new Map<string, ArchiveEntry & { data: Uint8Array }>()
  const queue = [main]
  while (queue.length > 0) {
    const file = queue.shift()!
    const rel = relative(base, file).split(sep).join('/')
    if (out.has(rel)) continue
    if (out.size >= MAX_BUNDLE_FILES) throw new ArtifactSourceError(`actor bundle '${entry}' imports more than ${MAX_BUNDLE_FILES} files`)
    let text = readFileSync(file, 'utf8')
    text = text.replace(importRe, (whole, lead: string, q: string, spec: string) => {
      const sdk = PACKAGE_SDK[spec]
      if (sdk !== undefined) return `${lead}${q}${RUNTIME_SCHEME}${sdk}${q}`
      if (!isRelative(spec)) return whole
      const target = resolve(dirname(file), spec)
      const rt = runtimePath(target, root)
      if (rt !== undefined) return `${lead}${q}${RUNTIME_SCHEME}${rt}${q}`
      const inside = relative(base, target)
      if (inside.startsWith('..') || inside === '') throw new ArtifactSourceError(`${relative(process.cwd(), file)} imports '${spec}', outside the bundle's folder ${base}: keep a bundle's files under its entry's folder`)
      if (!existsSync(target) || !statSync(target).isFile()) throw new ArtifactSourceError(`${relative(process.cwd(), file)} imports '${spec}': no such file (write the extension, as Node's ESM needs)`)
      queue.push(target)
      return whole
    })
    const path = checkRelativePath(rel, 'bundle file')
    const data = Buffer.from(text, 'utf8')
    out.set(path, { path, type: 'file', bytes: data.byteLength, data })
  }
  const entryRel = relative(base, main).split(sep).join('/')
  const manifest = Buffer.from(JSON.stringify({ v: 1, entry: entryRel }) + '\n')
  out.set(BUNDLE_MANIFEST, { path: BUNDLE_MANIFEST, type: 'file', bytes: manifest.byteLength, data: manifest })
  // folders of nested files, so unpacking sees each one
  const dirs = new Set<string>()
  for (const p of out.keys()) for (let d = p.split('/').slice(0, -1); d.length > 0; d.pop()) dirs.add(d.join('/'))
  return [...out.values(), ...[...dirs].map((d) => ({ path: d, type: 'dir' as const, bytes: 0, data: new Uint8Array() }))]
}

/** The entry file of an unpacked bundle folder, from its manifest (checked: a plain file inside the folder). */
export function bundleEntryPath(folder: string): string {
  let m: { v?: unknown; entry?: unknown }
  try {
    m = JSON.parse(readFileSync(join(folder, BUNDLE_MANIFEST), 'utf8')) as { v?: unknown; entry?: unknown }
  } catch (err) {
    throw new UnsafeArchiveError(`the bundle has no readable ${BUNDLE_MANIFEST}: ${(err as Error).message}`)
  }
  if (m.v !== 1 || typeof m.entry !== 'string') throw new UnsafeArchiveError(`${BUNDLE_MANIFEST} must be {"v":1,"entry":"<relative path>"}`)
  const rel = checkRelativePath(m.entry, 'bundle entry')
  if (rel.includes('/')) throw new UnsafeArchiveError(`the bundle entry '${rel}' must sit at the bundle's top (its folder is what the sandbox may read)`)
  const path = join(folder, rel)
  if (!existsSync(path) || !statSync(path).isFile()) throw new UnsafeArchiveError(`the bundle entry '${rel}' is not a file of the bundle`)
  return path
}

// `npm run build` (and `npm pack`, through prepack): the JavaScript and .d.ts an installed package runs,
// into dist/ (spec/packaging.md). The repository itself keeps running its TypeScript sources; Node refuses
// to strip types under node_modules, so an installed copy cannot.
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createRequire, stripTypeScriptTypes } from 'node:module'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
/** Folders of browser code (excluded from tsconfig.build.json: they are type-checked with the DOM's types). */
const BROWSER_SOURCES = ['appliance/web/kit', 'appliance/console/web', 'gateway/dashboard/web']
const filesUnder = (dir: string): string[] => readdirSync(dir).flatMap((n) => (statSync(join(dir, n)).isDirectory() ? filesUnder(join(dir, n)) : [join(dir, n)]))
const dist = join(root, 'dist')
rmSync(dist, { recursive: true, force: true })
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' })
if (r.status !== 0) {
  process.stderr.write('build: tsc failed\n')
  process.exit(r.status ?? 1)
}
// files the built code reads beside itself
for (const f of ['spec/workload.schema.json']) {
  mkdirSync(dirname(join(dist, f)), { recursive: true })
  copyFileSync(join(root, f), join(dist, f))
}
// the browser sources the gateway and the daemon serve (spec/dashboard.md): types stripped, `.ts` imports
// made `.js`, the rest copied; the servers read them from beside their built code as they read the sources
for (const dir of BROWSER_SOURCES) {
  for (const file of filesUnder(join(root, dir))) {
    const out = join(dist, relative(root, file)).replace(/\.ts$/, '.js')
    mkdirSync(dirname(out), { recursive: true })
    if (file.endsWith('.ts')) writeFileSync(out, stripTypeScriptTypes(readFileSync(file, 'utf8'), { mode: 'strip' }).replace(/(\bfrom\s*|\bimport\s*\(?\s*)(['"])(\.{1,2}\/[^'"\n]+?)\.ts\2/g, '$1$2$3.js$2'))
    else copyFileSync(file, out)
  }
}
// the nearest package scope of every built module: ESM, and readable inside the actor sandbox, whose
// permission model lets it read dist/package.json (spec/actor-executor.md)
writeFileSync(join(dist, 'package.json'), JSON.stringify({ type: 'module', private: true }, null, 2) + '\n')
process.stdout.write(`built ${dist}\n`)

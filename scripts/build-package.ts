// `npm run build` (and `npm pack`, through prepack): the JavaScript and .d.ts an installed package runs,
// into dist/ (spec/packaging.md). The repository itself keeps running its TypeScript sources; Node refuses
// to strip types under node_modules, so an installed copy cannot.
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
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
// the nearest package scope of every built module: ESM, and readable inside the actor sandbox, whose
// permission model lets it read dist/package.json (spec/actor-executor.md)
writeFileSync(join(dist, 'package.json'), JSON.stringify({ type: 'module', private: true }, null, 2) + '\n')
process.stdout.write(`built ${dist}\n`)

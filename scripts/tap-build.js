#!/usr/bin/env node
// tap compiles its plugin list into node_modules at `tap build`. A fresh `npm install` ships it built with
// the TypeScript plugin (ts-node), which our .taprc turns off because Node runs our .ts files itself.
// This rebuilds tap's plugin set when it still names the TypeScript plugin. Runs on `npm install`
// (prepare) and before every `npm test`.
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)
export function ensureTapBuilt() {
  let testPkg
  try {
    testPkg = dirname(require.resolve('@tapjs/test/package.json', { paths: [dirname(require.resolve('tap/package.json'))] }))
  } catch {
    return // tap not installed (production install): nothing to do
  }
  const built = join(testPkg, 'test-built', 'dist', 'esm', 'index.js')
  if (existsSync(built) && !readFileSync(built, 'utf8').includes('@tapjs/typescript')) return
  const tapPkg = require.resolve('tap/package.json')
  const tapBin = join(dirname(tapPkg), JSON.parse(readFileSync(tapPkg, 'utf8')).bin.tap)
  const r = spawnSync(process.execPath, [tapBin, 'build'], { stdio: ['ignore', 'ignore', 'inherit'] })
  if (r.status !== 0) throw new Error(`tap build failed (exit ${r.status ?? r.signal})`)
}

if (import.meta.url === `file://${process.argv[1]}`) ensureTapBuilt()

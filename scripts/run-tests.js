#!/usr/bin/env node
// Runs the whole suite with tap and ends with the one line CI reads: `N passed, N failed, N skipped`.
// Extra arguments go to tap (e.g. `npm test -- core/test/ordering.test.ts`).
import { spawn } from 'node:child_process'
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { ensureTapBuilt } from './tap-build.js'

const require = createRequire(import.meta.url)
const tapPkg = require.resolve('tap/package.json')
const tapBin = join(dirname(tapPkg), JSON.parse(readFileSync(tapPkg, 'utf8')).bin.tap)
const args = process.argv.slice(2)
ensureTapBuilt()
const child = spawn(process.execPath, [tapBin, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
let tail = ''
// Every `not ok` line with the diagnostic lines after it, repeated just before the summary line, so the end of a
// long CI log says what failed (a CI reader often sees only the last page).
const failures = []
let partial = ''
let collecting = 0
const noteLine = (line) => {
  if (/^\s*not ok \d+/.test(line)) { failures.push(line); collecting = 20; return }
  if (collecting > 0) { collecting--; failures.push(line) }
}
child.stdout.on('data', (chunk) => {
  process.stdout.write(chunk)
  const text = chunk.toString('utf8')
  tail = (tail + text).slice(-4096)
  const lines = (partial + text).split('\n')
  partial = lines.pop() ?? ''
  for (const line of lines) noteLine(line)
})
child.on('close', (code, signal) => {
  const m = /# \{ total: (\d+), pass: (\d+)(?:, fail: (\d+))?(?:, skip: (\d+))?(?:, todo: (\d+))?/.exec(tail)
  if (!m) {
    console.log(`\n0 passed, 1 failed (tap printed no summary; exit ${code ?? signal})`)
    process.exit(code || 1)
  }
  const pass = Number(m[2]), fail = Number(m[3] ?? 0), skip = Number(m[4] ?? 0)
  const failed = fail + (code !== 0 && fail === 0 ? 1 : 0)
  if (failures.length > 0) {
    const shown = failures.slice(0, 240)
    console.log(`\n== what failed (${failures.filter((l) => /^\s*not ok/.test(l)).length} not-ok lines, with their diagnostics)`)
    console.log(shown.join('\n'))
    if (failures.length > shown.length) console.log(`... ${failures.length - shown.length} more lines above in the log`)
  }
  console.log(`\n${pass} passed, ${failed} failed, ${skip} skipped`)
  process.exit(failed > 0 ? 1 : 0)
})

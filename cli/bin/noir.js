#!/usr/bin/env node
// The `noir` command. In the repository Node >= 22.18 runs the TypeScript sources directly (type stripping);
// an installed package (under node_modules, where Node strips no types) runs the JavaScript that
// `npm run build` put in dist/ (spec/packaging.md).
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`noir: needs Node >= 22.18 (this is ${process.version}); run it as \`npx noir\` or through npm scripts, which use the project's own Node 24\n`)
  process.exit(1)
}
const installed = /[\\/]node_modules[\\/]/.test(fileURLToPath(import.meta.url))
const built = new URL('../../dist/cli/main.js', import.meta.url)
if (installed && !existsSync(built)) {
  process.stderr.write('noir: this installed copy has no dist/ (it was not packed with `npm pack`, which builds it); run `npm run build` in it\n')
  process.exit(1)
}
const { main } = await import(installed ? built.href : '../main.ts')
process.exitCode = await main(process.argv.slice(2))

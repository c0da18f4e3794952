#!/usr/bin/env node
// The `noir` command. Node >= 22.18 runs the TypeScript sources directly (type stripping).
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`noir: needs Node >= 22.18 (this is ${process.version}); run it as \`npx noir\` or through npm scripts, which use the project's own Node 24\n`)
  process.exit(1)
}
const { main } = await import('../main.ts')
process.exitCode = await main(process.argv.slice(2))

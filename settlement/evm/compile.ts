// Compiles Solidity sources with solc-js (the npm `solc` package, WebAssembly: no download). Used by the
// artifact build script and by tests; runtime code imports the committed artifacts, never solc.
import { createRequire } from 'node:module'
import { readFileSync } from 'node:fs'
import { basename } from 'node:path'

export interface CompiledContract {
  abi: unknown[]
  /** Creation bytecode, 0x-prefixed. */
  bytecode: `0x${string}`
}

interface SolcOutput {
  errors?: Array<{ severity: string; formattedMessage: string }>
  contracts?: Record<string, Record<string, { abi: unknown[]; evm: { bytecode: { object: string } } }>>
}

interface Solc {
  compile(input: string): string
  version(): string
}

const require = createRequire(import.meta.url)

/** The pinned compiler settings: the artifacts are reproducible only with these. */
export const SOLC_SETTINGS = { optimizer: { enabled: true, runs: 200 }, evmVersion: 'cancun', metadata: { bytecodeHash: 'none' } } as const

export function solcVersion(): string {
  return (require('solc') as Solc).version()
}

/** Compiles the files (read from disk) and returns every contract by name. Throws with solc's messages. */
export function compileSolidity(files: readonly string[]): Record<string, CompiledContract> {
  const solc = require('solc') as Solc
  const sources: Record<string, { content: string }> = {}
  for (const f of files) sources[basename(f)] = { content: readFileSync(f, 'utf8') }
  const input = {
    language: 'Solidity',
    sources,
    settings: { ...SOLC_SETTINGS, outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } },
  }
  const out = JSON.parse(solc.compile(JSON.stringify(input))) as SolcOutput
  const errors = (out.errors ?? []).filter((e) => e.severity === 'error')
  if (errors.length > 0) throw new Error(`solc: ${errors.map((e) => e.formattedMessage).join('\n')}`)
  const result: Record<string, CompiledContract> = {}
  for (const file of Object.values(out.contracts ?? {})) {
    for (const [name, c] of Object.entries(file)) result[name] = { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` }
  }
  return result
}

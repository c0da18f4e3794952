// config.json `settlement` (spec/settlement.md "The daemon's settlement service"): which chain this node
// settles on. Absent: no settlement (the routes answer SettlementNotConfiguredError). Every field is
// checked; a wrong one stops the daemon with a ConfigError naming it (never a silent default).
//   settlement.evm.rpcUrl           the chain's JSON-RPC endpoint (http or https)
//   settlement.evm.contract         the Settlement contract's address (0x + 40 hex)
//   settlement.evm.startHeight      the block the contract was created in (where deposits can start)
//   settlement.evm.depth            confirmations before a deposit is credited (default 12)
//   settlement.evm.decimals         the token's decimals, >= 6 (default 18): 10^(decimals-6) base units per µ unit
//   settlement.evm.pollMs           how often the chain is read (default 5,000)
//   settlement.evm.operatorKeyFile  a file holding the operator's private key (0x + 64 hex), readable by its
//                                   owner only; without it the node credits deposits but cannot pay out
import { readFileSync, statSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import { ConfigError } from '../daemon/errors.ts'

export interface EvmSettlementConfig {
  rpcUrl: string
  contract: `0x${string}`
  startHeight: bigint
  depth: number
  decimals: number
  pollMs: number
  /** The operator's private key, read from its file (never logged, never returned). */
  operatorKey?: `0x${string}`
}

const FIELDS = ['rpcUrl', 'contract', 'startHeight', 'depth', 'decimals', 'pollMs', 'operatorKeyFile'] as const

function fail(field: string, why: string): never {
  throw new ConfigError(`config.json settlement.evm.${field} ${why}`)
}

function int(v: unknown, field: string, min: number, max: number, dflt: number): number {
  if (v === undefined) return dflt
  if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) fail(field, `must be a whole number in [${min}, ${max}]`)
  return v as number
}

/** The settlement section, checked; undefined when the node does not settle. `home` resolves relative paths. */
export function settlementConfig(section: unknown, home: string): EvmSettlementConfig | undefined {
  if (section === undefined || section === null) return undefined
  if (typeof section !== 'object' || Array.isArray(section)) throw new ConfigError('config.json settlement must be an object')
  const keys = Object.keys(section)
  if (keys.some((k) => k !== 'evm')) throw new ConfigError(`config.json settlement: unknown field '${keys.find((k) => k !== 'evm')}' (chains: evm)`)
  const evm = (section as { evm?: unknown }).evm
  if (evm === undefined) return undefined
  if (typeof evm !== 'object' || evm === null || Array.isArray(evm)) throw new ConfigError('config.json settlement.evm must be an object')
  const c = evm as Record<string, unknown>
  for (const k of Object.keys(c)) if (!(FIELDS as readonly string[]).includes(k)) fail(k, 'is not a field of settlement.evm')
  const rpcUrl = c.rpcUrl
  if (typeof rpcUrl !== 'string' || !URL.canParse(rpcUrl) || !/^https?:$/.test(new URL(rpcUrl).protocol)) fail('rpcUrl', 'must be an http(s) URL')
  const contract = c.contract
  if (typeof contract !== 'string' || !/^0x[0-9a-fA-F]{40}$/.test(contract)) fail('contract', 'must be an address (0x and 40 hex digits)')
  const sh = c.startHeight
  if (!(Number.isSafeInteger(sh) && (sh as number) >= 0) && !(typeof sh === 'string' && /^(0|[1-9][0-9]{0,19})$/.test(sh))) fail('startHeight', 'must be a block number >= 0')
  const out: EvmSettlementConfig = {
    rpcUrl,
    contract: contract as `0x${string}`,
    startHeight: BigInt(sh as number | string),
    depth: int(c.depth, 'depth', 1, 10_000, 12),
    decimals: int(c.decimals, 'decimals', 6, 36, 18),
    pollMs: int(c.pollMs, 'pollMs', 50, 3_600_000, 5_000),
  }
  if (c.operatorKeyFile !== undefined) {
    if (typeof c.operatorKeyFile !== 'string' || c.operatorKeyFile === '') fail('operatorKeyFile', 'must be a path')
    const path = isAbsolute(c.operatorKeyFile) ? c.operatorKeyFile : join(home, c.operatorKeyFile)
    let mode: number
    let text: string
    try {
      mode = statSync(path).mode
      text = readFileSync(path, 'utf8').trim()
    } catch (err) {
      fail('operatorKeyFile', `cannot be read: ${(err as Error).message}`)
    }
    if ((mode & 0o077) !== 0) fail('operatorKeyFile', `is readable by others (mode ${(mode & 0o777).toString(8)}): chmod 600 it`)
    if (!/^0x[0-9a-fA-F]{64}$/.test(text)) fail('operatorKeyFile', 'must hold one private key: 0x and 64 hex digits')
    out.operatorKey = text as `0x${string}`
  }
  return out
}

// The external reference of a deposit: `chain:txhash:index`, in one canonical form, so the same on-chain
// deposit can never be spelled two ways (two spellings would be two top-ups). spec/settlement.md.
import { InvalidExternalRefError } from './errors.ts'

/** `chain:txhash:index`, canonical (see parseExternalRef). */
export type ExternalRef = string & { readonly __brand: 'ExternalRef' }

export interface ExternalRefParts {
  /** Chain name: lowercase letters, digits and `-`, e.g. `evm-31337`, `cardano-emulator`. */
  chain: string
  /** Transaction hash, lowercase hex: EVM `0x` + 64 digits, Cardano 64 digits. */
  txHash: string
  /** EVM: the log's index in its block; Cardano: the output's index in its transaction. */
  index: number
}

const CHAIN = /^[a-z][a-z0-9-]{0,31}$/
const TX_HASH = /^(?:0x)?[0-9a-f]{64}$/
const INDEX = /^(?:0|[1-9][0-9]{0,9})$/

export function isChainName(chain: string): boolean {
  return CHAIN.test(chain)
}

export function externalRef(parts: ExternalRefParts): ExternalRef {
  return asExternalRef(`${parts.chain}:${parts.txHash}:${parts.index}`)
}

/** Checks the canonical form; returns the parts. Throws InvalidExternalRefError (upper-case hex, leading zeros...). */
export function parseExternalRef(text: string): ExternalRefParts {
  const parts = text.split(':')
  if (parts.length !== 3) throw new InvalidExternalRefError(text, 'expected three parts chain:txhash:index')
  const [chain, txHash, index] = parts as [string, string, string]
  if (!CHAIN.test(chain)) throw new InvalidExternalRefError(text, 'chain must be lowercase letters, digits and -')
  if (!TX_HASH.test(txHash)) throw new InvalidExternalRefError(text, 'txhash must be 64 lowercase hex digits (0x-prefixed on EVM)')
  if (chain.startsWith('evm-') !== txHash.startsWith('0x')) throw new InvalidExternalRefError(text, 'EVM hashes carry 0x, other chains do not')
  if (!INDEX.test(index) || Number(index) > 0xffffffff) throw new InvalidExternalRefError(text, 'index must be a decimal integer without leading zeros')
  return { chain, txHash, index: Number(index) }
}

export function asExternalRef(text: string): ExternalRef {
  parseExternalRef(text)
  return text as ExternalRef
}

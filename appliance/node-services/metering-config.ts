// config.json `ledger` fields of metering (spec/ledger.md "Escrow", "Metering"), with their defaults:
//   usageIntervalMs  how often a provider issues a usage record per running contract (default 60,000)
//   escrowWindowMs   the prepaid window each escrow hold covers (default 120,000: two records' worth)
//   conversion       { nlrPerNlc, feeBps }: NLC -> NLR through the treasury (default 1 and 100 bps)
import type { ConversionPolicy } from '../../ledger/conversion.ts'
import { DEFAULT_CONVERSION } from './ledger-escrow.ts'

export interface MeteringConfig {
  usageIntervalMs: number
  escrowWindowMs: number
  conversion: ConversionPolicy
}

const posInt = (x: unknown, d: number, min = 1): number => (Number.isSafeInteger(x) && (x as number) >= min ? (x as number) : d)

export function meteringConfig(section: unknown): MeteringConfig {
  const c = (typeof section === 'object' && section !== null ? section : {}) as { usageIntervalMs?: unknown; escrowWindowMs?: unknown; conversion?: { nlrPerNlc?: unknown; feeBps?: unknown } }
  const rate = c.conversion?.nlrPerNlc
  const nlrPerNlc = typeof rate === 'string' && /^[1-9][0-9]{0,17}$/.test(rate) ? BigInt(rate) : Number.isSafeInteger(rate) && (rate as number) >= 1 ? BigInt(rate as number) : DEFAULT_CONVERSION.nlrPerNlc
  const fee = c.conversion?.feeBps
  const feeBps = Number.isSafeInteger(fee) && (fee as number) >= 0 && (fee as number) <= 10_000 ? (fee as number) : DEFAULT_CONVERSION.feeBps
  return { usageIntervalMs: posInt(c.usageIntervalMs, 60_000, 100), escrowWindowMs: posInt(c.escrowWindowMs, 120_000, 1000), conversion: { nlrPerNlc, feeBps } }
}

// config.json `ledger` fields of metering (spec/ledger.md "Escrow", "Metering"), with their defaults:
//   usageIntervalMs  how often a provider issues a usage record per running contract (default 60,000)
//   escrowWindowMs   the prepaid window each escrow hold covers (default 120,000: two records' worth)
//   conversion       { nlrPerNlc, feeBps }: NLC -> NLR through the treasury (default 1 and 100 bps)
//   checkpointIntervalMs  (read by the ledger service; checked here too)
// A wrong or unknown field is a ConfigError naming it: money settings are never silently defaulted.
import type { ConversionPolicy } from '../../ledger/conversion.ts'
import { DEFAULT_CONVERSION } from './ledger-escrow.ts'
import { ConfigError } from '../daemon/errors.ts'

export interface MeteringConfig {
  usageIntervalMs: number
  escrowWindowMs: number
  conversion: ConversionPolicy
}

const LEDGER_FIELDS = ['checkpointIntervalMs', 'usageIntervalMs', 'escrowWindowMs', 'conversion'] as const

function fail(field: string, why: string): never {
  throw new ConfigError(`config.json ledger.${field} ${why}`)
}

function int(v: unknown, field: string, min: number, dflt: number): number {
  if (v === undefined) return dflt
  if (!Number.isSafeInteger(v) || (v as number) < min) fail(field, `must be a whole number >= ${min}`)
  return v as number
}

/** The `ledger` section, checked: a wrong field stops the daemon with a ConfigError naming it (never a silent default). */
export function meteringConfig(section: unknown): MeteringConfig {
  if (section === undefined || section === null) section = {}
  if (typeof section !== 'object' || Array.isArray(section)) throw new ConfigError('config.json ledger must be an object')
  const c = section as Record<string, unknown>
  for (const k of Object.keys(c)) if (!(LEDGER_FIELDS as readonly string[]).includes(k)) fail(k, `is not a field of ledger (${LEDGER_FIELDS.join(', ')})`)
  int(c.checkpointIntervalMs, 'checkpointIntervalMs', 0, 1000)
  const conv = c.conversion ?? {}
  if (typeof conv !== 'object' || conv === null || Array.isArray(conv)) fail('conversion', 'must be an object { nlrPerNlc, feeBps }')
  const cv = conv as Record<string, unknown>
  for (const k of Object.keys(cv)) if (k !== 'nlrPerNlc' && k !== 'feeBps') fail(`conversion.${k}`, 'is not a field of ledger.conversion')
  const rate = cv.nlrPerNlc
  let nlrPerNlc = DEFAULT_CONVERSION.nlrPerNlc
  if (rate !== undefined) {
    if (typeof rate === 'string' && /^[1-9][0-9]{0,17}$/.test(rate)) nlrPerNlc = BigInt(rate)
    else if (Number.isSafeInteger(rate) && (rate as number) >= 1) nlrPerNlc = BigInt(rate as number)
    else fail('conversion.nlrPerNlc', 'must be a whole number >= 1 (NLR units per NLC unit)')
  }
  const fee = cv.feeBps
  if (fee !== undefined && !(Number.isSafeInteger(fee) && (fee as number) >= 0 && (fee as number) <= 10_000)) fail('conversion.feeBps', 'must be whole basis points in [0, 10000]')
  return {
    usageIntervalMs: int(c.usageIntervalMs, 'usageIntervalMs', 100, 60_000),
    escrowWindowMs: int(c.escrowWindowMs, 'escrowWindowMs', 1000, 120_000),
    conversion: { nlrPerNlc, feeBps: (fee as number | undefined) ?? DEFAULT_CONVERSION.feeBps },
  }
}

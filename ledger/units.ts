// NLC's smallest unit and the two text forms of an NLC amount (spec/ledger.md "Amounts"): 1 NLC = 1,000,000
// µNLC. Amounts are µNLC as bigint; people read and write NLC with up to 6 decimals. Pure integer and string
// arithmetic: no amount ever passes through a float.
import { InvalidAmountError } from './errors.ts'
import { U128_MAX } from './amount.ts'

/** Decimals of NLC: its smallest unit, the µNLC, is 10^-6 NLC. */
export const NLC_DECIMALS = 6
/** µNLC in one NLC. */
export const MICRO_NLC_PER_NLC = 1_000_000n

/** `386719n` -> `"0.386719 NLC"`, `1500000n` -> `"1.5 NLC"`, `0n` -> `"0 NLC"` (trailing zeros left out). */
export function formatNlc(micro: bigint): string {
  return `${nlcDecimal(micro)} NLC`
}

/** The number part of formatNlc: `386719n` -> `"0.386719"`. */
export function nlcDecimal(micro: bigint): string {
  const sign = micro < 0n ? '-' : ''
  const abs = micro < 0n ? -micro : micro
  const whole = abs / MICRO_NLC_PER_NLC
  const frac = (abs % MICRO_NLC_PER_NLC).toString().padStart(NLC_DECIMALS, '0').replace(/0+$/, '')
  return `${sign}${whole}${frac ? `.${frac}` : ''}`
}

const NLC_TEXT = /^(0|[1-9][0-9]*)(?:\.([0-9]+))?$/

/**
 * An NLC amount a person typed (`--max-price 0.5`) in µNLC: `"0.5"` -> `500000n`. Digits with at most one
 * point and at most 6 decimals; no sign, exponent or space. Anything else (and more than 2^128 - 1 µNLC) is
 * InvalidAmountError naming `field`: a 7th decimal would be a fraction of a µNLC, which nothing can pay.
 */
export function parseNlc(text: string, field = 'amount'): bigint {
  const m = NLC_TEXT.exec(text)
  if (!m) throw new InvalidAmountError(`'${field}' must be an amount of NLC such as 0.5 (digits, at most one point; no sign or exponent), got ${JSON.stringify(text.slice(0, 50))}`, { field })
  const frac = m[2] ?? ''
  if (frac.length > NLC_DECIMALS) throw new InvalidAmountError(`'${field}' has ${frac.length} decimals; NLC has ${NLC_DECIMALS} (1 µNLC = 0.000001 NLC)`, { field })
  const micro = BigInt(m[1]!) * MICRO_NLC_PER_NLC + BigInt(frac.padEnd(NLC_DECIMALS, '0'))
  if (micro > U128_MAX) throw new InvalidAmountError(`'${field}' exceeds 2^128 - 1 µNLC`, { field })
  return micro
}

const MICRO_TEXT = /^(0|[1-9][0-9]{0,38})$/

/**
 * Whether `x` is an amount of µNLC in its wire form: decimal digits, no sign, point, exponent or leading zero
 * ("0" is one), at most 2^128 - 1.
 */
export function isMicroNlcText(x: unknown): x is string {
  return typeof x === 'string' && MICRO_TEXT.test(x) && BigInt(x) <= U128_MAX
}

/** A µNLC amount in its wire form as formatNlc shows it, for display only: `"386719"` -> `"0.386719 NLC"`; anything else -> `"? NLC"`. */
export function formatNlcText(x: unknown): string {
  return isMicroNlcText(x) ? formatNlc(BigInt(x)) : '? NLC'
}

// Amounts are whole numbers of a currency's smallest unit, held as bigint, in [1, 2^128 - 1] for a
// transfer (TigerBeetle's u128) and [0, 2^128 - 1] for a balance field. On the wire an amount is a decimal
// string (JSON numbers cannot carry 128 bits); a JSON number is accepted only when it is a safe integer.
import { InvalidAmountError } from './errors.ts'

export const U128_MAX = (1n << 128n) - 1n

const DIGITS = /^(0|[1-9][0-9]{0,38})$/

/** An amount from untrusted input (a decimal string or a safe integer); InvalidAmountError naming `field`. */
export function parseAmount(value: unknown, field = 'amount'): bigint {
  let n: bigint
  if (typeof value === 'bigint') n = value
  else if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new InvalidAmountError(`'${field}' must be a whole number of the smallest unit (got ${String(value)})`, { field })
    n = BigInt(value)
  } else if (typeof value === 'string') {
    if (!DIGITS.test(value)) throw new InvalidAmountError(`'${field}' must be decimal digits with no sign, point or exponent (got ${JSON.stringify(value.slice(0, 50))})`, { field })
    n = BigInt(value)
  } else throw new InvalidAmountError(`'${field}' must be a decimal string or a whole number`, { field })
  checkAmount(n, field)
  return n
}

/** Throws InvalidAmountError unless `n` is a bigint in [1, U128_MAX]. */
export function checkAmount(n: unknown, field = 'amount'): asserts n is bigint {
  if (typeof n !== 'bigint') throw new InvalidAmountError(`'${field}' must be a bigint`, { field })
  if (n <= 0n) throw new InvalidAmountError(`'${field}' must be at least 1 (got ${n})`, { field })
  if (n > U128_MAX) throw new InvalidAmountError(`'${field}' exceeds 2^128 - 1`, { field })
}

export function isValidAmount(n: unknown): n is bigint {
  return typeof n === 'bigint' && n > 0n && n <= U128_MAX
}

// Amounts are integers in the token's base unit, carried as bigint and written as decimal strings in JSON.
import { InvalidAmountError } from './errors.ts'

/** 2^256 - 1: the largest amount an EVM word carries. */
export const MAX_AMOUNT = (1n << 256n) - 1n

/** Returns `amount` when it is a bigint in 1..2^256-1, else throws InvalidAmountError naming `what`. */
export function positiveAmount(what: string, amount: unknown): bigint {
  if (typeof amount !== 'bigint' || amount <= 0n || amount > MAX_AMOUNT) throw new InvalidAmountError(what, amount)
  return amount
}

/** Parses a decimal string written by `formatAmount` (no sign, no leading zeros, no exponent). */
export function parseAmount(what: string, text: string): bigint {
  if (!/^(?:0|[1-9][0-9]{0,77})$/.test(text)) throw new InvalidAmountError(what, text)
  return BigInt(text)
}

export const formatAmount = (amount: bigint): string => amount.toString(10)

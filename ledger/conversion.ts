// NLC -> NLR (spec/ledger.md "NLC and NLR"): customers spend NLC, workers earn NLR, and no transfer mixes
// the two. The treasury takes NLC and pays NLR at a published integer rate (NLR units per NLC unit), less a
// network fee in basis points rounded up (the network never pays out a fraction it did not take). A
// conversion is ONE linked chain, so it happens whole or not at all:
//   from      -> treasury:NLC   nlc         (NLC)
//   treasury:NLR -> to          gross - fee (NLR)
//   treasury:NLR -> fees:NLR    fee         (NLR, left out when 0)
import { checkAmount } from './amount.ts'
import { InvalidAmountError } from './errors.ts'
import type { TransferInit } from './types.ts'

export interface ConversionPolicy {
  /** Whole NLR units paid per NLC unit. */
  nlrPerNlc: bigint
  /** Network fee in basis points of the NLR paid, 0..10,000. */
  feeBps: number
}

export function conversionAmounts(nlc: bigint, policy: ConversionPolicy): { gross: bigint; fee: bigint; net: bigint } {
  checkAmount(nlc, 'nlc')
  checkAmount(policy.nlrPerNlc, 'nlrPerNlc')
  if (!Number.isInteger(policy.feeBps) || policy.feeBps < 0 || policy.feeBps > 10_000) throw new InvalidAmountError("'feeBps' is a whole number of basis points in [0, 10000]", { field: 'feeBps' })
  const gross = nlc * policy.nlrPerNlc
  const fee = (gross * BigInt(policy.feeBps) + 9_999n) / 10_000n
  const net = gross - fee
  if (net <= 0n) throw new InvalidAmountError('the fee takes the whole conversion', { field: 'nlc' })
  return { gross, fee, net }
}

/** The linked transfers of one conversion; `id` (at most 120 characters) prefixes their ids. */
export function conversionTransfers(o: { id: string; from: string; to: string; nlc: bigint; policy: ConversionPolicy }): TransferInit[] {
  const { fee, net } = conversionAmounts(o.nlc, o.policy)
  const out: TransferInit[] = [
    { id: `${o.id}:nlc`, debit: o.from, credit: 'treasury:NLC', amount: o.nlc, currency: 'NLC', flags: ['linked'] },
    { id: `${o.id}:nlr`, debit: 'treasury:NLR', credit: o.to, amount: net, currency: 'NLR', flags: fee > 0n ? ['linked'] : [] },
  ]
  if (fee > 0n) out.push({ id: `${o.id}:fee`, debit: 'treasury:NLR', credit: 'fees:NLR', amount: fee, currency: 'NLR' })
  return out
}

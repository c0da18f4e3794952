// NLC's two text forms: formatNlc (µNLC -> "0.386719 NLC") and parseNlc (what a person types -> µNLC).
import t from 'tap'
import * as fc from 'fast-check'
import { InvalidAmountError } from '../errors.ts'
import { U128_MAX } from '../amount.ts'
import { formatNlc, formatNlcText, isMicroNlcText, nlcDecimal, parseNlc } from '../units.ts'

t.test('formatNlc shows µNLC as NLC with up to 6 decimals, trailing zeros left out', async (t) => {
  t.equal(formatNlc(386_719n), '0.386719 NLC')
  t.equal(formatNlc(1_500_000n), '1.5 NLC')
  t.equal(formatNlc(1_000_000n), '1 NLC')
  t.equal(formatNlc(0n), '0 NLC')
  t.equal(formatNlc(1n), '0.000001 NLC')
  t.equal(formatNlc(-2_500_001n), '-2.500001 NLC')
  t.equal(formatNlc(U128_MAX), '340282366920938463463374607431768.211455 NLC', 'exact at 2^128 - 1')
  t.equal(formatNlcText('10000'), '0.01 NLC')
  t.equal(formatNlcText(0.5), '? NLC', 'a float is never shown as if it were an amount')
})

t.test('parseNlc reads what a person types into whole µNLC', async (t) => {
  t.equal(parseNlc('0.5'), 500_000n)
  t.equal(parseNlc('0.386719'), 386_719n)
  t.equal(parseNlc('12'), 12_000_000n)
  t.equal(parseNlc('0'), 0n)
  t.equal(parseNlc('0.000001'), 1n)
  t.equal(parseNlc('340282366920938463463374607431768.211455'), U128_MAX)
})

t.test('parseNlc refuses a 7th decimal, a sign, an exponent and anything but digits, naming the field', async (t) => {
  for (const bad of ['0.0000001', '1.1234567', '-1', '+1', '1e6', '1E-3', '.5', '5.', '01', ' 1', '1 ', '0x10', '', 'NaN', 'Infinity', '1,5', '1.2.3', '340282366920938463463374607431768.211456']) {
    const err = t.throws(() => parseNlc(bad, '--max-price'), InvalidAmountError, JSON.stringify(bad)) as InvalidAmountError | undefined
    t.equal(err?.data?.field, '--max-price', `${JSON.stringify(bad)}: names the field`)
  }
  t.match(t.throws(() => parseNlc('0.1234567', 'maxPrice')), /has 7 decimals; NLC has 6/)
})

t.test('formatting and parsing are each other\'s inverse, for any amount', async (t) => {
  fc.assert(fc.property(fc.bigInt({ min: 0n, max: U128_MAX }), (n) => parseNlc(nlcDecimal(n)) === n))
  t.pass('parseNlc(nlcDecimal(n)) === n for every n tried')
  fc.assert(fc.property(fc.bigInt({ min: 0n, max: 10n ** 30n }), fc.integer({ min: 0, max: 6 }), (whole, decimals) => {
    // text with 0..6 decimals, no trailing zeros: formatNlc gives back the very text
    const frac = decimals === 0 ? '' : String(Number(whole % 10n ** BigInt(decimals)) || 1).padStart(decimals, '0').replace(/0+$/, '')
    const text = frac ? `${whole}.${frac}` : `${whole}`
    return formatNlc(parseNlc(text)) === `${text} NLC`
  }))
  t.pass('formatNlc(parseNlc(text)) === text for every text tried')
})

t.test('the wire form of µNLC is digits only, up to 2^128 - 1', async (t) => {
  for (const ok of ['0', '1', '386719', U128_MAX.toString()]) t.ok(isMicroNlcText(ok), ok)
  for (const bad of ['-1', '1.5', '1e6', '01', '', ' 1', (U128_MAX + 1n).toString(), '9'.repeat(40)]) t.notOk(isMicroNlcText(bad), JSON.stringify(bad))
  for (const bad of [1, 1.5, null, undefined, 1n, {}]) t.notOk(isMicroNlcText(bad), String(bad))
})

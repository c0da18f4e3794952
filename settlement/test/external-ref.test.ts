// One deposit, one spelling: anything but the canonical `chain:txhash:index` is refused.
import t from 'tap'
import { InvalidExternalRefError } from '../errors.ts'
import { asExternalRef, externalRef, parseExternalRef } from '../external-ref.ts'

const h = 'ab'.repeat(32)

t.test('the canonical forms parse back into their parts', async (t) => {
  t.same(parseExternalRef(`evm-31337:0x${h}:7`), { chain: 'evm-31337', txHash: `0x${h}`, index: 7 })
  t.same(parseExternalRef(`cardano-emulator:${h}:0`), { chain: 'cardano-emulator', txHash: h, index: 0 })
  t.equal(externalRef({ chain: 'evm-1', txHash: `0x${h}`, index: 12 }), `evm-1:0x${h}:12`)
})

t.test('other spellings of the same deposit are refused with InvalidExternalRefError', async (t) => {
  for (const bad of [
    `evm-31337:0x${h.toUpperCase()}:7`, // upper-case hex
    `evm-31337:0x${h}:07`, // leading zero
    `evm-31337:${h}:7`, // EVM without 0x
    `cardano-emulator:0x${h}:0`, // Cardano with 0x
    `EVM-31337:0x${h}:7`, // upper-case chain
    `evm-31337:0x${h}:7:1`, // extra part
    `evm-31337:0x${h}:-1`,
    `evm-31337:0x${h.slice(2)}:1`, // short hash
    `evm-31337:0x${h}:4294967296`, // index past 32 bits
  ]) {
    t.throws(() => asExternalRef(bad), InvalidExternalRefError, bad)
  }
})

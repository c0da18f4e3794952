// config.json `ledger` is money: a wrong or unknown field stops the daemon with a ConfigError naming it,
// never a silent default (appliance/node-services/metering-config.ts).
import t from 'tap'
import { meteringConfig } from '../node-services/metering-config.ts'

t.test('defaults for what is left out', async (t) => {
  const c = meteringConfig(undefined)
  t.same([c.usageIntervalMs, c.escrowWindowMs, c.conversion.feeBps], [60_000, 120_000, 100])
  t.equal(meteringConfig({ conversion: { nlrPerNlc: '3', feeBps: 250 } }).conversion.nlrPerNlc, 3n)
})

t.test('every wrong field is refused, naming it', async (t) => {
  const bad: Array<[unknown, RegExp]> = [
    [{ usageIntervalMs: 0.5 }, /ledger\.usageIntervalMs/],
    [{ usageIntervalMs: 10 }, /ledger\.usageIntervalMs must be a whole number >= 100/],
    [{ escrowWindowMs: '120000' }, /ledger\.escrowWindowMs/],
    [{ checkpointIntervalMs: -1 }, /ledger\.checkpointIntervalMs/],
    [{ conversion: { nlrPerNlc: 1.5 } }, /ledger\.conversion\.nlrPerNlc/],
    [{ conversion: { nlrPerNlc: '0' } }, /ledger\.conversion\.nlrPerNlc/],
    [{ conversion: { feeBps: 10_001 } }, /ledger\.conversion\.feeBps/],
    [{ conversion: { fee: 1 } }, /ledger\.conversion\.fee is not a field/],
    [{ conversion: 3 }, /ledger\.conversion must be an object/],
    [{ usageInterval: 1000 }, /ledger\.usageInterval is not a field/],
    [[1], /ledger must be an object/],
  ]
  for (const [section, re] of bad) t.throws(() => meteringConfig(section), { name: 'ConfigError', message: re }, JSON.stringify(section))
})

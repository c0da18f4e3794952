// config.json `relayLimits` (spec/wire.md "Relays"): defaults fit for services; every wrong value stops the
// daemon with a ConfigError naming the field.
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultConfig, loadConfig } from '../daemon/config.ts'
import { RELAY_LIMITS } from '../../p2p/host.ts'

const home = mkdtempSync(join(tmpdir(), 'noir-relay-config-'))
t.teardown(() => rmSync(home, { recursive: true, force: true }))
const load = (cfg: unknown) => {
  writeFileSync(join(home, 'config.json'), JSON.stringify(cfg))
  return loadConfig(home)
}

t.test('defaults: an hour and 256 MiB per relayed connection, not libp2p\'s 2 minutes and 128 KiB', async (t) => {
  t.same(defaultConfig().relayLimits, { durationSeconds: 3600, dataBytes: 268_435_456 })
  t.equal(RELAY_LIMITS.durationMs, 3_600_000)
  t.same(load({ relayLimits: { dataBytes: 1_048_576 } }).relayLimits, { durationSeconds: 3600, dataBytes: 1_048_576 }, 'what is left out keeps its default')
  t.same(load({ relay: true, relayLimits: { durationSeconds: 60, dataBytes: 65_536 } }).relayLimits, { durationSeconds: 60, dataBytes: 65_536 })
})

t.test('every wrong value is refused, naming it', async (t) => {
  const bad: Array<[unknown, RegExp]> = [
    [{ durationSeconds: 0 }, /relayLimits\.durationSeconds/],
    [{ durationSeconds: 1.5 }, /relayLimits\.durationSeconds/],
    [{ durationSeconds: 86_401 }, /relayLimits\.durationSeconds/],
    [{ dataBytes: 1024 }, /relayLimits\.dataBytes/],
    [{ dataBytes: '1000000' }, /relayLimits\.dataBytes/],
    [{ dataBytes: 2 ** 60 }, /relayLimits\.dataBytes/],
    [{ bytes: 100_000 }, /'relayLimits\.bytes' is not a field/],
    [[], /'relayLimits' must be an object/],
    [null, /'relayLimits' must be an object/],
  ]
  for (const [v, re] of bad) t.throws(() => load({ relayLimits: v }), { name: 'ConfigError', message: re }, JSON.stringify(v))
})

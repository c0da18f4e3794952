// config.json: defaults for what is missing, typed ConfigError (naming the field) for what is wrong.
import t from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultConfig, loadConfig } from '../config.ts'
import { ConfigError } from '../errors.ts'

const home = mkdtempSync(join(tmpdir(), 'noir-config-'))
t.teardown(() => rmSync(home, { recursive: true, force: true }))
const write = (o: unknown): void => writeFileSync(join(home, 'config.json'), JSON.stringify(o))

t.test('a missing file gives the defaults; given fields override them', async (t) => {
  t.same(loadConfig(home), defaultConfig())
  t.equal(defaultConfig().sealedStreams, true, 'sealed streams are on by default')
  t.equal(defaultConfig().signatureCheck, 'concurrent')
  write({ sealedStreams: false, sealWindowMs: 20, signatureCheck: 'inline' })
  const c = loadConfig(home)
  t.equal(c.sealedStreams, false)
  t.equal(c.sealWindowMs, 20)
  t.equal(c.signatureCheck, 'inline')
  t.equal(c.quarantineMs, 60_000, 'the rest keep their defaults')
})

t.test('wrong values are refused with a ConfigError naming the field', async (t) => {
  const cases: [unknown, RegExp][] = [
    [{ sealedStreams: 'yes' }, /'sealedStreams' must be true or false/],
    [{ sealWindowMs: -1 }, /'sealWindowMs' must be an integer from 0 to 1000/],
    [{ sealWindowMs: 1.5 }, /'sealWindowMs'/],
    [{ sealWindowMs: 5000 }, /'sealWindowMs'/],
    [{ signatureCheck: 'never' }, /'signatureCheck' must be 'concurrent' or 'inline'/],
    [{ quarantineMs: -5 }, /'quarantineMs'/],
    [[1, 2], /must hold a JSON object/],
    // the owner's price policy is money: whole µNLC (and basis points), never a float, a negative or text
    [{ orchestration: { price: { cpuPerHour: 0.01 } } }, /'orchestration\.price\.cpuPerHour'.*whole number >= 0 of µNLC per CPU-hour/],
    [{ orchestration: { price: { memoryGiBPerHour: -1 } } }, /'orchestration\.price\.memoryGiBPerHour'.*µNLC per GiB-hour of memory/],
    [{ orchestration: { price: { minimumPerHour: '10000' } } }, /'orchestration\.price\.minimumPerHour'/],
    [{ orchestration: { price: { gpuPerHour: 1e300 } } }, /'orchestration\.price\.gpuPerHour'/],
    [{ orchestration: { price: { protectedMultiplierBps: 1.5 } } }, /'orchestration\.price\.protectedMultiplierBps'.*basis points/],
    [{ orchestration: { price: { protectedMultiplier: 1.5 } } }, /'orchestration\.price\.protectedMultiplier'.*protectedMultiplierBps/],
    [{ orchestration: { price: 3 } }, /'orchestration\.price'/],
  ]
  for (const [cfg, msg] of cases) {
    write(cfg)
    t.throws(() => loadConfig(home), ConfigError, JSON.stringify(cfg))
    t.throws(() => loadConfig(home), msg)
  }
  writeFileSync(join(home, 'config.json'), '{ not json')
  t.throws(() => loadConfig(home), /not valid JSON/)
})

t.test('a price policy in whole µNLC is taken as it is', async (t) => {
  write({ orchestration: { price: { cpuPerHour: 1_500_000, protectedMultiplierBps: 20_000, minimumPerHour: 0 } } })
  t.same((loadConfig(home).orchestration as { price: unknown }).price, { cpuPerHour: 1_500_000, protectedMultiplierBps: 20_000, minimumPerHour: 0 })
})

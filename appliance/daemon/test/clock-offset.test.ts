// NOIR_CLOCK_OFFSET_MS (fault injection, spec/chaos.md): unset changes nothing; a whole number within a day
// skews Date.now() of a process (and only its wall clock); anything else is refused.
import t from 'tap'
import { spawnSync } from 'node:child_process'
import { ClockOffsetError, clockOffsetFrom, MAX_CLOCK_OFFSET_MS } from '../clock-offset.ts'

t.test('the offset is read from the environment and bounded', async (t) => {
  t.equal(clockOffsetFrom({}), 0, 'unset: no skew')
  t.equal(clockOffsetFrom({ NOIR_CLOCK_OFFSET_MS: '' }), 0)
  t.equal(clockOffsetFrom({ NOIR_CLOCK_OFFSET_MS: '-1500' }), -1500)
  for (const bad of ['1.5', 'soon', 'NaN', 'Infinity', '-1e400', '0x10', String(MAX_CLOCK_OFFSET_MS + 1)]) t.throws(() => clockOffsetFrom({ NOIR_CLOCK_OFFSET_MS: bad }), ClockOffsetError, `refuses ${bad}`)
})

t.test('a process with an offset sees its wall clock skewed, its monotonic clock not', async (t) => {
  const script = `import { applyClockOffset } from ${JSON.stringify(new URL('../clock-offset.ts', import.meta.url).href)}
const real = Date.now(); const p = performance.now(); applyClockOffset(process.env)
console.log(JSON.stringify({ skew: Date.now() - real, mono: performance.now() - p }))`
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { env: { ...process.env, NOIR_CLOCK_OFFSET_MS: '-5000' }, encoding: 'utf8' })
  const out = JSON.parse(r.stdout) as { skew: number; mono: number }
  t.ok(out.skew <= -4_900 && out.skew > -5_100, `Date.now() runs 5 s behind (${out.skew} ms)`)
  t.ok(out.mono < 100, 'performance.now() is not moved')
})

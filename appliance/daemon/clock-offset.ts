// A skewed wall clock for fault injection (the chaos suite, spec/chaos.md): `NOIR_CLOCK_OFFSET_MS=N` makes
// this process's `Date.now()` run N ms ahead (negative: behind), as on a machine whose clock is wrong. Only
// the wall clock moves: monotonic time (`performance.now()`, timers) is untouched, as with a real skewed
// clock. Unset (every production default) it changes nothing. The daemon and its watchdog both apply it,
// since they share a machine's clock. Imports nothing: the watchdog loads it.

/** The most a test may skew a node (a day): beyond that it is a configuration mistake, refused. */
export const MAX_CLOCK_OFFSET_MS = 86_400_000

export class ClockOffsetError extends Error {
  override name = 'ClockOffsetError'
}

/** The offset `env` asks for, 0 when none; ClockOffsetError when the value is not a whole number within a day. */
export function clockOffsetFrom(env: Record<string, string | undefined>): number {
  const raw = env.NOIR_CLOCK_OFFSET_MS
  if (raw === undefined || raw.trim() === '') return 0
  const n = /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : Number.NaN // decimal digits only: no 0x10, 1e3, Infinity
  if (!Number.isInteger(n) || Math.abs(n) > MAX_CLOCK_OFFSET_MS) throw new ClockOffsetError(`NOIR_CLOCK_OFFSET_MS must be a whole number of ms within ±${MAX_CLOCK_OFFSET_MS}, not ${JSON.stringify(raw)}`)
  return n
}

let applied = 0

/** Skews `Date.now()` by the offset `env` asks for (once per process). Returns the offset in force. */
export function applyClockOffset(env: Record<string, string | undefined>): number {
  const offset = clockOffsetFrom(env)
  if (offset === 0 || applied !== 0) return applied
  const realNow = Date.now.bind(Date)
  Date.now = () => realNow() + offset
  applied = offset
  return offset
}

// Failpoints: named places in the code where a test can make the process die (kill -9 of itself) at an exact
// step boundary, the way fail-rs (TiKV) and FoundationDB's BUGGIFY let a crash test reach every step rather
// than a random moment. They are armed only from the process environment at start (`NOIR_FAILPOINTS`, see
// spec/failpoints.md): nothing over the network, the API or the config can arm one, and an unarmed failpoint
// costs one Map lookup.
//
//   NOIR_FAILPOINTS="orchestrator.commit.after"          dies the first time that point is reached
//   NOIR_FAILPOINTS="orchestrator.start.before@2,provider.reserve.after"   the second time; several points
//
// Every name the code passes through is recorded (`reached()`), so a test can enumerate the boundaries a run
// crossed and then crash at each one in turn.

export const FAILPOINTS_ENV = 'NOIR_FAILPOINTS'

/** A failpoint name: dotted lower-case words (`area.step.before|after`). */
const NAME = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$/

export class InvalidFailpointError extends Error {
  override name = 'InvalidFailpointError'
}

/** Parses `name[@n],name[@n]...` (n: which hit kills, from 1). Throws InvalidFailpointError on a bad entry. */
export function parseFailpoints(spec: string | undefined): Map<string, number> {
  const armed = new Map<string, number>()
  if (spec === undefined || spec.trim() === '') return armed
  for (const raw of spec.split(',')) {
    const entry = raw.trim()
    if (entry === '') continue
    const [name, nth, extra] = entry.split('@')
    if (extra !== undefined || name === undefined || !NAME.test(name)) throw new InvalidFailpointError(`failpoint '${entry}' is not name[@n] (name: dotted lower-case words)`)
    const n = nth === undefined ? 1 : Number(nth)
    if (!Number.isSafeInteger(n) || n < 1) throw new InvalidFailpointError(`failpoint '${entry}': @n must be a whole number >= 1`)
    armed.set(name, n)
  }
  return armed
}

export interface FailpointsOptions {
  /** What dying is (default: SIGKILL to this process, as kill -9 would). */
  die?: (name: string) => void
  /** Called just before dying (a test harness can record it; the daemon writes a line to stderr). */
  onTrigger?: (name: string) => void
}

export class Failpoints {
  readonly #armed: Map<string, number>
  readonly #hits = new Map<string, number>()
  readonly #die: (name: string) => void
  readonly #onTrigger: ((name: string) => void) | undefined

  constructor(armed: Map<string, number>, o: FailpointsOptions = {}) {
    this.#armed = armed
    this.#die = o.die ?? (() => process.kill(process.pid, 'SIGKILL'))
    this.#onTrigger = o.onTrigger
  }

  /** The names armed. */
  get armed(): string[] {
    return [...this.#armed.keys()]
  }

  /** Passing through `name`: dies here if it is armed for this hit. */
  hit(name: string): void {
    const n = (this.#hits.get(name) ?? 0) + 1
    this.#hits.set(name, n)
    if (this.#armed.get(name) === n) {
      this.#onTrigger?.(name)
      this.#die(name)
    }
  }

  /** Every failpoint passed through so far, with how often. */
  reached(): Record<string, number> {
    return Object.fromEntries(this.#hits)
  }
}

let current: Failpoints | undefined

/** The process's failpoints, armed from NOIR_FAILPOINTS at first use. */
export function failpoints(): Failpoints {
  current ??= new Failpoints(parseFailpoints(process.env[FAILPOINTS_ENV]), {
    onTrigger: (name) => process.stderr.write(`${JSON.stringify({ level: 'warn', msg: 'failpoint reached: dying (kill -9)', failpoint: name, at: Date.now() })}\n`),
  })
  return current
}

/** Shorthand for `failpoints().hit(name)`. */
export function failpoint(name: string): void {
  failpoints().hit(name)
}

/**
 * Wraps each async method of `target` named in `steps` with `<area>.<method>.before` (before it runs) and
 * `<area>.<method>.after` (after it settled, before the caller sees the result): a crash between a step's
 * effects and its record, and one before its effects, are both reachable.
 */
export function withFailpoints<T extends object>(target: T, area: string, steps: readonly (keyof T & string)[]): T {
  const fp = failpoints()
  const wrappers = new Map<PropertyKey, (...args: unknown[]) => Promise<unknown>>()
  for (const step of steps) {
    const fn = target[step]
    if (typeof fn !== 'function') throw new TypeError(`withFailpoints: ${step} is not a method`)
    const name = step.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
    wrappers.set(step, async (...args: unknown[]) => {
      fp.hit(`${area}.${name}.before`)
      try {
        return await (fn as (...a: unknown[]) => Promise<unknown>).apply(target, args)
      } finally {
        fp.hit(`${area}.${name}.after`)
      }
    })
  }
  // A proxy, not a subclass: the target's own methods and getters still run with `this` = the target (its
  // #private fields are only reachable from it).
  return new Proxy(target, {
    get(t, prop) {
      const w = wrappers.get(prop)
      if (w !== undefined) return w
      const v: unknown = Reflect.get(t, prop, t)
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v
    },
  })
}

// Small test helpers for identity tests.

interface T {
  ok(value: unknown, message: string): unknown
  fail(message: string): unknown
}

type ErrorClass = abstract new (...args: never[]) => Error

/** Passes when `fn` throws an instance of `Cls` (subclasses included). */
export function throwsA(t: T, fn: () => unknown, Cls: ErrorClass, message = ''): void {
  try {
    fn()
  } catch (err) {
    t.ok(err instanceof Cls, `${message} threw ${err instanceof Error ? err.name : String(err)}, expected ${Cls.name}`)
    return
  }
  t.fail(`${message} did not throw (expected ${Cls.name})`)
}

/** Async form of throwsA. */
export async function rejectsA(t: T, fn: () => Promise<unknown>, Cls: ErrorClass, message = ''): Promise<void> {
  try {
    await fn()
  } catch (err) {
    t.ok(err instanceof Cls, `${message} threw ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}, expected ${Cls.name}`)
    return
  }
  t.fail(`${message} did not throw (expected ${Cls.name})`)
}

// The one logger type of the code base: whatever logs (the mesh, the daemon and its services, the provider,
// the appliance runtime...) takes a `Log`. The daemon supplies one that prints JSON lines
// (appliance/daemon/log.ts); tests and libraries can pass `silentLog`. Fields are plain values; never pass
// key material.
export type LogFields = Record<string, unknown>

export interface Log {
  debug(msg: string, fields?: LogFields): void
  info(msg: string, fields?: LogFields): void
  warn(msg: string, fields?: LogFields): void
  error(msg: string, fields?: LogFields): void
}

const noop = (): void => {}
export const silentLog: Log = { debug: noop, info: noop, warn: noop, error: noop }

/** `{ name, code, message }` of an error, for a log line. */
export function errorFields(err: unknown): LogFields {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code
    return { error: err.name, ...(typeof code === 'string' ? { code } : {}), message: err.message }
  }
  return { error: 'Error', message: String(err) }
}

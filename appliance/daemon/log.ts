// Structured log lines: one JSON object per line, `{"t":ISO time,"level","msg","svc"?,...fields}`, to
// stderr or a file. NOIR_LOG_LEVEL (debug|info|warn|error, default info) filters them.
import { createWriteStream, type WriteStream } from 'node:fs'
import type { Log, LogFields } from '../../p2p/log.ts'

const LEVELS = { debug: 10, info: 20, warn: 30, error: 40 } as const
export type LogLevel = keyof typeof LEVELS

export interface JsonLog extends Log {
  child(fields: LogFields): JsonLog
  close(): Promise<void>
}

function safe(fields: LogFields | undefined): LogFields {
  if (!fields) return {}
  const out: LogFields = {}
  for (const [k, v] of Object.entries(fields)) {
    out[k] = typeof v === 'bigint' ? v.toString() : v instanceof Uint8Array ? `<${v.byteLength} bytes>` : v
  }
  return out
}

/**
 * `context`: fields of the moment added to every line (the daemon's: `trace` and `span` ids of the active span,
 * when tracing is on), so a line can be found from its trace and the other way round.
 */
export function createJsonLog(opts: { target?: string; level?: string; base?: LogFields; context?: () => LogFields | undefined } = {}): JsonLog {
  const context = opts.context
  const min = LEVELS[(opts.level ?? 'info') as LogLevel] ?? LEVELS.info
  let stream: WriteStream | undefined
  const write: (line: string) => void =
    opts.target && opts.target !== 'stderr'
      ? ((stream = createWriteStream(opts.target, { flags: 'a', mode: 0o600 })), (line) => stream!.write(line))
      : (line) => process.stderr.write(line)
  const make = (base: LogFields): JsonLog => {
    const emit = (level: LogLevel, msg: string, fields?: LogFields): void => {
      if (LEVELS[level] < min) return
      try {
        write(JSON.stringify({ t: new Date().toISOString(), level, msg, ...base, ...context?.(), ...safe(fields) }) + '\n')
      } catch {
        // a log line must never take the node down
      }
    }
    return {
      debug: (m, f) => emit('debug', m, f),
      info: (m, f) => emit('info', m, f),
      warn: (m, f) => emit('warn', m, f),
      error: (m, f) => emit('error', m, f),
      child: (fields) => make({ ...base, ...fields }),
      close: () => new Promise<void>((resolve) => (stream ? stream.end(resolve) : resolve())),
    }
  }
  return make(opts.base ?? {})
}

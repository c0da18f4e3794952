// Structured log lines: one JSON object per line, `{"t":ISO time,"level","msg","svc"?,...fields}`, to
// stderr or a file. NOIR_LOG_LEVEL (debug|info|warn|error, default info) filters them. A file is kept bounded
// (config.json `logs`: rotated at `maxBytes`, `files` old ones kept; spec/observability.md "Logs"); lines written
// inside a trace carry its `trace` and `span` ids.
import { createWriteStream, existsSync, openSync, renameSync, rmSync, statSync, type WriteStream } from 'node:fs'
import type { Log, LogFields } from '../../p2p/log.ts'

/** How much of its log a node keeps on disk: the file grows to `maxBytes`, then is renamed `.1` (`.1` to `.2` ...), `files` old ones kept. */
export interface LogRetention {
  maxBytes: number
  files: number
}

export const DEFAULT_LOG_RETENTION: LogRetention = { maxBytes: 64 * 1024 * 1024, files: 3 }

function rotate(target: string, files: number): void {
  try {
    rmSync(`${target}.${files}`, { force: true })
    for (let i = files - 1; i >= 1; i--) if (existsSync(`${target}.${i}`)) renameSync(`${target}.${i}`, `${target}.${i + 1}`)
    if (files >= 1) renameSync(target, `${target}.1`)
    else rmSync(target, { force: true })
  } catch {
    // a log that cannot rotate keeps writing: it must never take the node down
  }
}

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
export function createJsonLog(opts: { target?: string; level?: string; base?: LogFields; context?: () => LogFields | undefined; retention?: LogRetention } = {}): JsonLog {
  const context = opts.context
  const min = LEVELS[(opts.level ?? 'info') as LogLevel] ?? LEVELS.info
  let stream: WriteStream | undefined
  let write: (line: string) => void = (line) => process.stderr.write(line)
  const target = opts.target
  if (target && target !== 'stderr') {
    const keep = opts.retention ?? DEFAULT_LOG_RETENTION
    let size = existsSync(target) ? statSync(target).size : 0
    // opened now (not when the stream gets to it): a rotation renames the file this stream already holds
    const open = (): WriteStream => createWriteStream('', { fd: openSync(target, 'a', 0o600) })
    stream = open()
    write = (line) => {
      size += Buffer.byteLength(line)
      stream!.write(line)
      if (size >= keep.maxBytes) {
        // the open stream keeps writing what it buffered into the renamed file (same inode)
        stream!.end()
        rotate(target, keep.files)
        stream = open()
        size = 0
      }
    }
  }
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

// Docker's multiplexed stream format (attach/logs without a TTY): frames of
// [stream type: 1 byte (1 stdout, 2 stderr)][3 zero bytes][payload length: uint32 BE][payload].
// With `timestamps: true` each line starts with an RFC 3339 nano timestamp and a space.
// We parse frames ourselves (rather than modem.demuxStream) because `logs({follow:false})` returns one
// Buffer, not a stream, and because we split lines and stamp them in one place.
import type { LogLine } from '../executor.ts'

export class DockerLogParser {
  #pending: Buffer = Buffer.alloc(0)
  #partial: Record<'stdout' | 'stderr', string> = { stdout: '', stderr: '' }

  /** Feeds bytes; returns every complete line they finish. */
  push(chunk: Buffer): LogLine[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk])
    const out: LogLine[] = []
    while (this.#pending.length >= 8) {
      const type = this.#pending[0]
      const size = this.#pending.readUInt32BE(4)
      if (this.#pending.length < 8 + size) break
      const payload = this.#pending.subarray(8, 8 + size).toString('utf8')
      this.#pending = this.#pending.subarray(8 + size)
      const stream = type === 2 ? 'stderr' : 'stdout'
      const text = this.#partial[stream] + payload
      const parts = text.split('\n')
      this.#partial[stream] = parts.pop() ?? ''
      for (const p of parts) out.push(parseStampedLine(p, stream))
    }
    return out
  }

  /** Lines left without a final newline when the stream ends. */
  flush(): LogLine[] {
    const out: LogLine[] = []
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.#partial[stream].length > 0) out.push(parseStampedLine(this.#partial[stream], stream))
      this.#partial[stream] = ''
    }
    return out
  }
}

const stampRe = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?(Z|[+-]\d{2}:\d{2}) ?/

/** Splits Docker's `2026-11-21T23:30:00.123456789Z text` into a millisecond timestamp and the text. */
export function parseStampedLine(raw: string, stream: 'stdout' | 'stderr'): LogLine {
  const m = stampRe.exec(raw)
  if (!m) return { ts: Date.now(), stream, line: raw.replace(/\r$/, '') }
  const frac = (m[2] ?? '.0').slice(0, 4) // milliseconds precision
  const ts = Date.parse(`${m[1]}${frac}${m[3]}`)
  return { ts: Number.isNaN(ts) ? Date.now() : ts, stream, line: raw.slice(m[0].length).replace(/\r$/, '') }
}

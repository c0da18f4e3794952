// The log of one workload instance: timestamped lines kept in memory (bounded), read back from the start
// or followed until the instance ends. Used by the microvm (serial console) and actor (stdout/stderr)
// executors. A line is stamped when the executor reads it from the process, not when it ends.
import type { LogLine } from '../executor.ts'

export class LineLog {
  readonly #lines: LogLine[] = []
  /** Sequence number of lines[0]: lines dropped from the front (bounded memory) still count. */
  #first = 0
  #closed = false
  #wake: Array<() => void> = []
  readonly #max: number

  constructor(maxLines = 10_000) {
    this.#max = maxLines
  }

  push(line: LogLine): void {
    if (this.#closed) return
    this.#lines.push(line)
    if (this.#lines.length > this.#max) {
      this.#lines.shift()
      this.#first++
    }
    this.#notify()
  }

  /** No more lines will come: followers end after draining. */
  close(): void {
    this.#closed = true
    this.#notify()
  }

  get isClosed(): boolean {
    return this.#closed
  }

  snapshot(): LogLine[] {
    return [...this.#lines]
  }

  async *read(opts: { follow: boolean; since?: number }): AsyncGenerator<LogLine> {
    let seq = this.#first
    for (;;) {
      if (seq < this.#first) seq = this.#first
      while (seq - this.#first < this.#lines.length) {
        const l = this.#lines[seq - this.#first]!
        seq++
        if (opts.since === undefined || l.ts >= opts.since) yield l
      }
      if (!opts.follow || this.#closed) return
      await new Promise<void>((resolve) => this.#wake.push(resolve))
    }
  }

  #notify(): void {
    const w = this.#wake
    this.#wake = []
    for (const f of w) f()
  }
}

/** Splits a byte stream into lines (LF or CRLF), calling `onLine` for each complete one. */
export class LineSplitter {
  #rest = ''
  readonly #onLine: (line: string) => void
  readonly #decoder = new TextDecoder()

  constructor(onLine: (line: string) => void) {
    this.#onLine = onLine
  }

  write(chunk: Uint8Array): void {
    const text = this.#rest + this.#decoder.decode(chunk, { stream: true })
    const parts = text.split('\n')
    this.#rest = parts.pop() ?? ''
    for (const p of parts) this.#onLine(p.replace(/\r+$/, '').replace(/^\r+/, ''))
  }

  /** Emits a last line without a newline, if any. */
  end(): void {
    const tail = this.#rest + this.#decoder.decode()
    this.#rest = ''
    if (tail.replace(/\r/g, '').length > 0) this.#onLine(tail.replace(/\r+$/, ''))
  }
}

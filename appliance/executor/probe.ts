// Runs a short command to learn what this host can do (is qemu there, does node have a permission model),
// without blocking the event loop: a daemon re-checks its runtimes every few seconds, and a spawnSync there
// stalled every message the node was handling for the ~100 ms a `node -e 0` takes. Answers are kept for a
// while (a binary's abilities do not change between two heartbeats).
import { execFile } from 'node:child_process'

export interface ProbeResult {
  /** Exit code 0 within the time limit. */
  ok: boolean
  stdout: string
  /** Why not, when not ok: the spawn error, the exit code, or the signal. */
  reason?: string
}

/** Runs `cmd args`, stdin closed, output collected (at most 1 MiB), killed after `timeoutMs`. */
export function probeCommand(cmd: string, args: readonly string[], timeoutMs = 10_000): Promise<ProbeResult> {
  return new Promise((resolve) => {
    execFile(cmd, [...args], { timeout: timeoutMs, encoding: 'utf8', maxBuffer: 1 << 20, windowsHide: true }, (err, stdout) => {
      if (err === null) resolve({ ok: true, stdout })
      else {
        const why = typeof err.code === 'string' ? err.message : err.killed ? `timed out after ${timeoutMs} ms` : err.signal ? `killed by ${err.signal}` : `exit ${String(err.code)}`
        resolve({ ok: false, stdout: typeof stdout === 'string' ? stdout : '', reason: why })
      }
    })
  })
}

/** One probe's answer, remembered for `ttlMs`; concurrent askers share the probe in flight. */
export class CachedProbe<T> {
  readonly #run: () => Promise<T>
  readonly #ttlMs: number
  #value: Promise<T> | undefined
  #at = 0

  constructor(run: () => Promise<T>, ttlMs = 60_000) {
    this.#run = run
    this.#ttlMs = ttlMs
  }

  get(now = Date.now()): Promise<T> {
    if (this.#value === undefined || now - this.#at >= this.#ttlMs) {
      this.#at = now
      this.#value = this.#run()
    }
    return this.#value
  }
}

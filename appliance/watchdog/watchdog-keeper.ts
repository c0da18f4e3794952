// The daemon's side of the watchdog: starts the watchdog process (detached, so it outlives the daemon),
// renews the lease every RENEW_MS, and starts a new watchdog if the old one is lost while the daemon runs.
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, renameSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { join } from 'node:path'
import { RENEW_MS } from './lease.ts'
import { siblingModule } from '../../core/module-url.ts'

const MAIN = fileURLToPath(siblingModule(import.meta.url, './watchdog-main.ts'))

export interface WatchdogKeeperInit {
  home: string
  did: string
  /** Told when the watchdog was lost and started again. */
  onLost?: (code: number | null, signal: NodeJS.Signals | null) => void
}

export class WatchdogKeeper {
  readonly #i: WatchdogKeeperInit
  readonly #dir: string
  #child: ChildProcess | undefined
  #timer: NodeJS.Timeout | undefined
  #stopped = false
  /** How many times a lost watchdog was started again. */
  restarts = 0

  constructor(init: WatchdogKeeperInit) {
    this.#i = init
    this.#dir = join(init.home, 'watchdog')
  }

  get pid(): number | undefined {
    return this.#child?.pid
  }

  start(): void {
    mkdirSync(this.#dir, { recursive: true, mode: 0o700 })
    this.#renew()
    this.#spawn()
    this.#timer = setInterval(() => this.#renew(), RENEW_MS)
    this.#timer.unref()
  }

  /** Stops renewing. The watchdog stays: if this daemon does not come back within the grace, it acts. */
  stop(): void {
    this.#stopped = true
    if (this.#timer) clearInterval(this.#timer)
    this.#child?.removeAllListeners('exit')
  }

  #renew(): void {
    try {
      const tmp = join(this.#dir, `lease.${process.pid}.tmp`)
      writeFileSync(tmp, JSON.stringify({ pid: process.pid, at: Date.now() }))
      renameSync(tmp, join(this.#dir, 'lease.json'))
    } catch {
      // the home is going away (tests remove it): the watchdog then finds the daemon silent
    }
  }

  #spawn(): void {
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', MAIN, this.#i.home, this.#i.did, String(process.pid)], {
      detached: true,
      stdio: 'ignore',
      // a test's clock offset (spec/chaos.md) goes with it: the watchdog shares the daemon's machine clock
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...(process.env.NOIR_CLOCK_OFFSET_MS ? { NOIR_CLOCK_OFFSET_MS: process.env.NOIR_CLOCK_OFFSET_MS } : {}) },
    })
    child.unref()
    child.once('exit', (code, signal) => {
      if (this.#stopped) return
      this.restarts++
      this.#i.onLost?.(code, signal)
      this.#spawn()
    })
    this.#child = child
  }
}

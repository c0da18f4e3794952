// Real node daemons for tests: each one a separate `noir node start` process with its own temp home on
// 127.0.0.1, mDNS off. Start N, wait until ready (api.json with the child's pid), talk to them through the
// local API client, kill -9 / stop / restart them, and clean up every process and temp dir (also when the
// test fails: register `cluster.cleanup` with t.teardown).
//
//   const cluster = new DaemonCluster()
//   t.teardown(() => cluster.cleanup())
//   const a = await cluster.start()
//   const b = await cluster.start({ bootstrap: a.multiaddrs })
//   await b.api.post('/v1/actor/send', { to: `${a.did}/node`, behavior: '/noir/node/ping', ask: true })
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, existsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve, dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Keystore } from '../../identity/keystore.ts'
import { NodeKey } from '../../identity/keys.ts'
import { defaultConfig, saveConfig, type NodeConfig } from '../../appliance/daemon/config.ts'
import { readApiFile } from '../../appliance/daemon/api-file.ts'
import { ApiClient } from '../../cli/api-client.ts'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..')
export const NOIR_BIN = join(root, 'cli/bin/noir.js')
export const TEST_PASSPHRASE = 'noir-test-passphrase'
/** The cheapest scrypt the keystore accepts (its default is N=2^15). */
const TEST_KDF = { N: 2 ** 14, r: 8, p: 1 }

export interface DaemonStartOptions {
  /** Reuse this home (a restart); default a fresh temp home with a new identity. */
  home?: string
  /** Use this key for a fresh home (default: a new one). */
  key?: NodeKey
  listen?: string[]
  bootstrap?: string[]
  relay?: boolean
  /** Extra config.json fields for a fresh home (other layers' sections). */
  config?: Partial<NodeConfig>
  /** Extra `noir node start` arguments. */
  args?: string[]
  env?: Record<string, string>
  /** Wrap the command, e.g. ['ip', 'netns', 'exec', 'ns1'] to run the daemon inside a namespace. */
  prefix?: string[]
  readyTimeoutMs?: number
  /** Talk to the API over its unix socket (for daemons inside another network namespace). */
  apiViaSocket?: boolean
}

export interface DaemonHandle {
  readonly home: string
  readonly did: string
  readonly peerId: string
  /** Its libp2p addresses, each with /p2p/<peerId>. */
  readonly multiaddrs: string[]
  readonly api: ApiClient
  readonly proc: ChildProcess
  readonly pid: number
  /** Everything it printed on stderr (its JSON log lines) so far. */
  logs(): string
  /** Parsed JSON log lines so far. */
  logLines(): Array<Record<string, unknown>>
  /** Resolves with the exit code / signal when the process ends. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** SIGKILL (kill -9), then waits for the exit. */
  kill(): Promise<void>
  /** SIGTERM (clean shutdown), then waits for the exit. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  readonly running: boolean
}

export class DaemonCluster {
  readonly daemons: DaemonHandle[] = []
  private readonly homes: string[] = []
  private readonly exitHook = (): void => {
    for (const d of this.daemons) if (d.running) d.proc.kill('SIGKILL')
  }

  constructor() {
    process.on('exit', this.exitHook)
  }

  /** A fresh home with an identity and config.json (no daemon). */
  async makeHome(opts: { key?: NodeKey; config?: Partial<NodeConfig> } = {}): Promise<{ home: string; key: NodeKey }> {
    const home = mkdtempSync(join(tmpdir(), 'noir-daemon-'))
    this.homes.push(home)
    const key = await Keystore.create(home, TEST_PASSPHRASE, opts.key ?? NodeKey.generate(), { kdf: TEST_KDF })
    saveConfig(home, { ...defaultConfig(), mdns: false, ...opts.config })
    return { home, key }
  }

  async start(opts: DaemonStartOptions = {}): Promise<DaemonHandle> {
    const home = opts.home ?? (await this.makeHome({ key: opts.key, config: opts.config })).home
    const args = [NOIR_BIN, '--home', home, 'node', 'start', '--no-mdns']
    for (const l of opts.listen ?? []) args.push('--listen', l)
    for (const b of opts.bootstrap ?? []) args.push('--bootstrap', b)
    if (opts.relay) args.push('--relay')
    args.push(...(opts.args ?? []))
    const cmd = opts.prefix && opts.prefix.length > 0 ? opts.prefix[0]! : process.execPath
    const cmdArgs = opts.prefix && opts.prefix.length > 0 ? [...opts.prefix.slice(1), process.execPath, ...args] : args
    const proc = spawn(cmd, cmdArgs, {
      env: { ...process.env, NOIR_PASSPHRASE: TEST_PASSPHRASE, NOIR_LOG_LEVEL: process.env.NOIR_LOG_LEVEL ?? 'info', NOIR_PARENT_PID: String(process.pid), ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stderr = ''
    let stdout = ''
    proc.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString('utf8')
      if (stderr.length > 4_000_000) stderr = stderr.slice(-2_000_000)
    })
    proc.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString('utf8')
    })
    let running = true
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
      proc.once('exit', (code, signal) => {
        running = false
        res({ code, signal })
      })
    })
    const pid = proc.pid!
    const info = await waitReady(home, proc, () => running, opts.readyTimeoutMs ?? 30_000, () => stderr + stdout)
    const api = new ApiClient({ url: info.url, token: info.token, info, ...(opts.apiViaSocket ? { socket: info.socket } : {}) })
    const handle: DaemonHandle = {
      home,
      did: info.did,
      peerId: info.peerId,
      multiaddrs: info.multiaddrs,
      api,
      proc,
      pid,
      exited,
      logs: () => stderr,
      logLines: () =>
        stderr
          .split('\n')
          .filter((l) => l.startsWith('{'))
          .map((l) => {
            try {
              return JSON.parse(l) as Record<string, unknown>
            } catch {
              return {}
            }
          }),
      kill: async () => {
        if (running) proc.kill('SIGKILL')
        await exited
      },
      stop: async () => {
        if (running) proc.kill('SIGTERM')
        const timer = setTimeout(() => running && proc.kill('SIGKILL'), 10_000)
        const r = await exited
        clearTimeout(timer)
        return r
      },
      get running() {
        return running
      },
    }
    this.daemons.push(handle)
    return handle
  }

  /** Starts n daemons; each after the first bootstraps from the first. */
  async startMany(n: number, opts: DaemonStartOptions = {}): Promise<DaemonHandle[]> {
    const first = await this.start(opts)
    const rest = await Promise.all(Array.from({ length: n - 1 }, () => this.start({ ...opts, bootstrap: [...(opts.bootstrap ?? []), ...first.multiaddrs] })))
    return [first, ...rest]
  }

  /** Kills every daemon still running (SIGKILL) and removes every temp home. */
  async cleanup(): Promise<void> {
    await Promise.all(this.daemons.map((d) => d.kill().catch(() => {})))
    for (const h of this.homes) rmSync(h, { recursive: true, force: true })
    this.homes.length = 0
    process.off('exit', this.exitHook)
  }
}

async function waitReady(home: string, proc: ChildProcess, alive: () => boolean, timeoutMs: number, output: () => string) {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const info = existsSync(join(home, 'api.json')) ? readApiFile(home) : undefined
    if (info && info.pid === proc.pid) return info
    // under a prefix (ip netns exec) the daemon is a child of the wrapper: accept any live pid but a stale one
    if (info && proc.spawnargs[0] !== process.execPath && info.pid !== proc.pid) {
      try {
        process.kill(info.pid, 0)
        return info
      } catch {
        // stale file from an earlier run
      }
    }
    if (!alive()) throw new Error(`daemon for ${home} exited before it was ready:\n${output().slice(-4000)}`)
    if (Date.now() > deadline) {
      proc.kill('SIGKILL')
      throw new Error(`daemon for ${home} not ready after ${timeoutMs} ms:\n${output().slice(-4000)}`)
    }
    await new Promise((r) => setTimeout(r, 25))
  }
}

/** Polls `fn` until it returns a truthy value (or throws after `timeoutMs`, with the last error). */
export async function eventually<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 15_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`condition not met in ${timeoutMs} ms${last ? `: ${(last as Error).message}` : ''}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

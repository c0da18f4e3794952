// A local mesh of real node daemons on this machine: each one a separate `noir node start` process with its
// own temp home (identity + config.json) on 127.0.0.1, mDNS off. The keys are encrypted with a passphrase
// made for this run (random unless one is given) and handed to the daemons in their environment only. Start
// nodes, wait until each is ready (its api.json names the child's pid), talk to them through the local API
// client, kill -9 / stop / restart them, and clean up every process, temp home and container they left.
// `noir demo` uses it; so does the test harness (scripts/testing/daemons.ts).
//
//   const mesh = new LocalMesh()
//   try {
//     const a = await mesh.start()
//     const b = await mesh.start({ bootstrap: a.multiaddrs })
//   } finally {
//     await mesh.cleanup()
//   }
import { spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import Docker from 'dockerode'
import { Keystore } from '../identity/keystore.ts'
import { NodeKey } from '../identity/keys.ts'
import { defaultConfig, saveConfig, type NodeConfig } from '../appliance/daemon/config.ts'
import { readApiFile } from '../appliance/daemon/api-file.ts'
import { ApiClient } from './api-client.ts'
import { runsBuilt } from '../core/module-url.ts'

/** The `noir` executable (a Node script). */
/** The `noir` command: beside this file in the sources; the package's cli/bin when this runs built from dist/cli (spec/packaging.md). */
export const NOIR_BIN = join(dirname(fileURLToPath(import.meta.url)), runsBuilt(import.meta.url) ? '../../cli/bin/noir.js' : 'bin/noir.js')
/** The cheapest scrypt the keystore accepts (its default is N=2^15): these keys live as long as the mesh. */
const THROWAWAY_KDF = { N: 2 ** 14, r: 8, p: 1 }

export interface LocalMeshOptions {
  /** Encrypts every node key of this mesh. Default: random, made for this mesh (never written anywhere). */
  passphrase?: string
  /** Prefix of the temp homes (default `noir-node-`). */
  homePrefix?: string
  /** Log level of the daemons (NOIR_LOG_LEVEL; default `info`). */
  logLevel?: string
}

export interface LocalNodeOptions {
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

export interface LocalNode {
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
  /** SIGTERM (clean shutdown), then waits for the exit (SIGKILL after 10 s). */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  readonly running: boolean
}

export class LocalMesh {
  readonly nodes: LocalNode[] = []
  readonly #passphrase: string
  readonly #homePrefix: string
  readonly #logLevel: string
  readonly #homes: string[] = []
  readonly #exitHook = (): void => {
    for (const d of this.nodes) if (d.running) d.proc.kill('SIGKILL')
  }

  constructor(opts: LocalMeshOptions = {}) {
    this.#passphrase = opts.passphrase ?? randomBytes(24).toString('base64url')
    this.#homePrefix = opts.homePrefix ?? 'noir-node-'
    this.#logLevel = opts.logLevel ?? 'info'
    process.on('exit', this.#exitHook)
  }

  /** A fresh temp home with an identity and config.json (no daemon). */
  async makeHome(opts: { key?: NodeKey; config?: Partial<NodeConfig> } = {}): Promise<{ home: string; key: NodeKey }> {
    const home = mkdtempSync(join(tmpdir(), this.#homePrefix))
    this.#homes.push(home)
    const key = await Keystore.create(home, this.#passphrase, opts.key ?? NodeKey.generate(), { kdf: THROWAWAY_KDF })
    saveConfig(home, { ...defaultConfig(), mdns: false, ...opts.config })
    return { home, key }
  }

  /** Starts one daemon and resolves once its local API is up. */
  async start(opts: LocalNodeOptions = {}): Promise<LocalNode> {
    const home = opts.home ?? (await this.makeHome({ ...(opts.key ? { key: opts.key } : {}), ...(opts.config ? { config: opts.config } : {}) })).home
    const args = [NOIR_BIN, '--home', home, 'node', 'start', '--no-mdns']
    for (const l of opts.listen ?? []) args.push('--listen', l)
    for (const b of opts.bootstrap ?? []) args.push('--bootstrap', b)
    if (opts.relay) args.push('--relay')
    args.push(...(opts.args ?? []))
    const prefixed = opts.prefix !== undefined && opts.prefix.length > 0
    const cmd = prefixed ? opts.prefix![0]! : process.execPath
    const cmdArgs = prefixed ? [...opts.prefix!.slice(1), process.execPath, ...args] : args
    const proc = spawn(cmd, cmdArgs, {
      // NOIR_PARENT_PID: the daemons stop by themselves if this process dies without cleaning up.
      // The passphrase reaches the daemon through a pipe on fd 3, never its environment (which any process of
      // the same user can read in /proc/PID/environ for as long as the daemon runs).
      env: { ...withoutPassphrase(process.env), NOIR_PASSPHRASE_FD: '3', NOIR_LOG_LEVEL: process.env.NOIR_LOG_LEVEL ?? this.#logLevel, NOIR_PARENT_PID: String(process.pid), ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'],
    })
    const secret = proc.stdio[3] as import('node:stream').Writable
    secret.on('error', () => undefined) // a daemon that died at once: its exit is reported below
    secret.end(this.#passphrase)
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
    let expected = false
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => {
      proc.once('exit', (code, signal) => {
        running = false
        // a daemon that died by itself (not killed or stopped from here, not a failpoint): say why, or a test
        // only sees its API's connection reset
        if (!expected && !/failpoint reached/.test(stderr)) {
          process.stderr.write(`\n[local-mesh] daemon ${home} exited by itself (code ${code}, signal ${signal}); its last output:\n${stderr.split('\n').slice(-40).join('\n')}\n`)
        }
        res({ code, signal })
      })
    })
    const info = await waitReady(home, proc, () => running, opts.readyTimeoutMs ?? 30_000, () => stderr + stdout)
    const api = new ApiClient({ url: info.url, token: info.token, info, ...(opts.apiViaSocket ? { socket: info.socket } : {}) })
    const node: LocalNode = {
      home,
      did: info.did,
      peerId: info.peerId,
      multiaddrs: info.multiaddrs,
      api,
      proc,
      pid: proc.pid!,
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
        expected = true
        if (running) proc.kill('SIGKILL')
        await exited
      },
      stop: async () => {
        expected = true
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
    this.nodes.push(node)
    return node
  }

  /** Starts n daemons; each after the first bootstraps from the first. */
  async startMany(n: number, opts: LocalNodeOptions = {}): Promise<LocalNode[]> {
    const first = await this.start(opts)
    const rest = await Promise.all(Array.from({ length: n - 1 }, () => this.start({ ...opts, bootstrap: [...(opts.bootstrap ?? []), ...first.multiaddrs] })))
    return [first, ...rest]
  }

  /**
   * Stops every daemon still running (SIGTERM, so each stops its own work; SIGKILL after 10 s), removes the
   * containers any of them left (a killed daemon cannot stop its own) and every temp home. Returns how many
   * containers were left.
   */
  async shutdown(): Promise<{ containersRemoved: number }> {
    try {
      await Promise.all(this.nodes.map((d) => d.stop()))
      return { containersRemoved: await removeNodeContainers(this.nodes.map((d) => d.did)) }
    } finally {
      await this.cleanup()
    }
  }

  /** Kills every daemon still running (SIGKILL) and removes every temp home. */
  async cleanup(): Promise<void> {
    await Promise.all(this.nodes.map((d) => d.kill()))
    for (const h of this.#homes) rmSync(h, { recursive: true, force: true })
    this.#homes.length = 0
    process.off('exit', this.#exitHook)
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

/** Removes every container the given nodes created (labelled `noir.node=<did>`). Returns how many. */
export async function removeNodeContainers(dids: string[]): Promise<number> {
  const docker = new Docker()
  let n = 0
  try {
    await docker.ping()
  } catch {
    return 0 // no Docker here: no container either
  }
  for (const did of dids) {
    const list = await docker.listContainers({ all: true, filters: { label: [`noir.node=${did}`] } })
    for (const c of list) {
      try {
        await docker.getContainer(c.Id).remove({ force: true })
        n++
      } catch (err) {
        // Already gone (removed by its node meanwhile) is what we wanted; anything else is a leftover to report.
        if ((err as { statusCode?: number }).statusCode !== 404) throw err
      }
    }
  }
  return n
}

/** The environment without any passphrase variable (a daemon gets its passphrase on a descriptor). */
function withoutPassphrase(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const out = { ...env }
  delete out.NOIR_PASSPHRASE
  delete out.NOIR_PASSPHRASE_FILE
  delete out.NOIR_PASSPHRASE_FD
  return out
}

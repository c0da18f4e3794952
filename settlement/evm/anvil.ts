// Runs a local Anvil (Foundry's EVM node) for tests and benchmarks. The binary comes from npm:
// `@foundry-rs/anvil` installs it through a platform package (`@foundry-rs/anvil-linux-amd64`, ...); no
// network is needed once installed. Anvil listens on 127.0.0.1 on a port the kernel picks.
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'

const require = createRequire(import.meta.url)

const PLATFORM_PACKAGES: Record<string, string> = {
  'linux-x64': '@foundry-rs/anvil-linux-amd64',
  'linux-arm64': '@foundry-rs/anvil-linux-arm64',
  'darwin-x64': '@foundry-rs/anvil-darwin-amd64',
  'darwin-arm64': '@foundry-rs/anvil-darwin-arm64',
  'win32-x64': '@foundry-rs/anvil-win32-amd64',
}

/** The anvil binary's path, or why there is none. `ANVIL_BIN` overrides the npm package. */
export function findAnvil(): { path: string } | { missing: string } {
  const override = process.env.ANVIL_BIN
  if (override) return existsSync(override) ? { path: override } : { missing: `ANVIL_BIN=${override} does not exist` }
  const pkg = PLATFORM_PACKAGES[`${process.platform}-${process.arch}`]
  if (!pkg) return { missing: `@foundry-rs/anvil ships no binary for ${process.platform}-${process.arch}` }
  let dir: string
  try {
    dir = dirname(require.resolve(`${pkg}/package.json`))
  } catch {
    return { missing: `${pkg} is not installed (npm install; it is an optional dependency of @foundry-rs/anvil)` }
  }
  const path = join(dir, 'bin', process.platform === 'win32' ? 'anvil.exe' : 'anvil')
  return existsSync(path) ? { path } : { missing: `${path} is missing` }
}

export interface AnvilProcess {
  url: string
  port: number
  pid: number
  /** Kills this anvil (SIGTERM, then SIGKILL after 2 s) and waits for it to exit. */
  stop(): Promise<void>
}

export interface AnvilOptions {
  /** Seconds between blocks; default: a block per transaction (automine). */
  blockTime?: number
  /** Extra command-line arguments. */
  args?: string[]
  /** How long to wait for it to listen. */
  timeoutMs?: number
}

export async function startAnvil(options: AnvilOptions = {}): Promise<AnvilProcess> {
  const found = findAnvil()
  if ('missing' in found) throw new Error(`no anvil: ${found.missing}`)
  const args = ['--host', '127.0.0.1', '--port', '0', '--chain-id', '31337', ...(options.blockTime ? ['--block-time', String(options.blockTime)] : []), ...(options.args ?? [])]
  const child = spawn(found.path, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const port = await new Promise<number>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => fail(new Error(`anvil did not listen within ${options.timeoutMs ?? 15_000} ms: ${out.slice(-500)}`)), options.timeoutMs ?? 15_000)
    const fail = (err: Error): void => {
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(err)
    }
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8')
      const m = /Listening on 127\.0\.0\.1:(\d+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        child.stdout.removeAllListeners('data')
        child.stdout.resume()
        resolve(Number(m[1]))
      }
    })
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8')
    })
    child.once('error', fail)
    child.once('exit', (code, signal) => fail(new Error(`anvil exited (${code ?? signal}) before listening: ${out.slice(-500)}`)))
  })
  child.removeAllListeners('exit')
  if (child.pid === undefined) throw new Error('anvil has no pid')
  return { url: `http://127.0.0.1:${port}`, port, pid: child.pid, stop: () => stopChild(child) }
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 2_000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    child.kill('SIGTERM')
  })
}

/** Anvil's fixed test mnemonic: its prefunded accounts, well known, for local chains only. */
export const ANVIL_MNEMONIC = 'test test test test test test test test test test test junk'

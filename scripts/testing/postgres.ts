// A real PostgreSQL for tests (Debian's package `postgresql`, installed by scripts/ci/setup-system.sh): a
// fresh cluster in a temporary folder, password authentication (SCRAM) only, listening on a free loopback
// port and a socket in that folder, stopped and removed at the test's end. Run as the `postgres` user when
// the test runs as root (PostgreSQL refuses root).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Requirement } from './requirements.ts'
import { freePort } from './browser.ts'
import { Client } from 'pg'

/** The newest installed server's bin folder (/usr/lib/postgresql/N/bin), or undefined. */
export function postgresBin(): string | undefined {
  const root = '/usr/lib/postgresql'
  if (!existsSync(root)) return undefined
  const versions = readdirSync(root).filter((v) => /^\d+$/.test(v)).sort((a, b) => Number(b) - Number(a))
  for (const v of versions) {
    const bin = join(root, v, 'bin')
    if (existsSync(join(bin, 'postgres')) && existsSync(join(bin, 'initdb'))) return bin
  }
  return undefined
}

const asRoot = (): boolean => process.getuid?.() === 0
const postgresUser = (): { uid: number; gid: number } | undefined => {
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' })
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' })
  return r.status === 0 && g.status === 0 ? { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) } : undefined
}

export const postgresql: Requirement = {
  name: 'postgresql',
  missing: () => {
    if (!postgresBin()) return 'PostgreSQL is not installed (Debian package postgresql; see scripts/ci/setup-system.sh)'
    if (asRoot() && !postgresUser()) return 'running as root, and there is no `postgres` user to run the server as'
    return undefined
  },
}

export interface PostgresRig {
  /** postgres://noir:PASSWORD@127.0.0.1:PORT/noir */
  url: string
  /** The same URL without the password (which is `password`). */
  urlWithoutPassword: string
  password: string
  port: number
  /** Stops the server at once (SIGKILL), as a crash would. */
  kill(): void
}

/** Starts a fresh PostgreSQL cluster on loopback for the test; stopped and removed at its end. */
/** `durable`: fsync on (benchmarks); tests run with fsync off (a crash of the test's server is not what they test). */
export async function postgresOnLoopback(t: { teardown(fn: () => Promise<void> | void): void }, o: { durable?: boolean } = {}): Promise<PostgresRig> {
  const bin = postgresBin()
  if (!bin) throw new Error('PostgreSQL is not installed')
  const dir = mkdtempSync(join(tmpdir(), 'noir-pg-'))
  const data = join(dir, 'data')
  const password = randomBytes(18).toString('base64url')
  const pwfile = join(dir, 'pw')
  writeFileSync(pwfile, `${password}\n`, { mode: 0o600 })
  const user = asRoot() ? postgresUser() : undefined
  if (user) {
    chownSync(dir, user.uid, user.gid)
    chownSync(pwfile, user.uid, user.gid)
  }
  chmodSync(dir, 0o700)
  const as = (cmd: string, args: string[]): [string, string[]] => (user ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args])
  const [initCmd, initArgs] = as(join(bin, 'initdb'), ['-D', data, '-U', 'noir', '--auth=scram-sha-256', `--pwfile=${pwfile}`, '-E', 'UTF8', '--no-sync'])
  const init = spawnSync(initCmd, initArgs, { encoding: 'utf8' })
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.stdout}`)
  rmSync(pwfile, { force: true })
  const port = await freePort()
  const [pgCmd, pgArgs] = as(join(bin, 'postgres'), ['-D', data, '-k', dir, '-p', String(port), '-c', 'listen_addresses=127.0.0.1', '-c', 'max_connections=60', '-c', `fsync=${o.durable === true ? 'on' : 'off'}`])
  const server: ChildProcess = spawn(pgCmd, pgArgs, { stdio: ['ignore', 'ignore', 'pipe'], detached: false })
  let log = ''
  server.stderr?.on('data', (c: Buffer) => (log = (log + c.toString('utf8')).slice(-4000)))
  let exited = false
  server.once('exit', () => (exited = true))
  t.teardown(async () => {
    if (!exited) {
      const gone = new Promise<void>((resolve) => server.once('exit', () => resolve()))
      server.kill('SIGINT') // fast shutdown
      await Promise.race([gone, new Promise((resolve) => setTimeout(resolve, 10_000))])
      if (!exited) server.kill('SIGKILL')
    }
    rmSync(dir, { recursive: true, force: true })
  })
  const ready = join(bin, 'pg_isready')
  for (let i = 0; ; i++) {
    if (exited) throw new Error(`postgres exited: ${log}`)
    if (spawnSync(ready, ['-h', '127.0.0.1', '-p', String(port), '-U', 'noir', '-d', 'postgres'], { stdio: 'ignore' }).status === 0) break
    if (i > 300) throw new Error(`postgres did not become ready: ${log}`)
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  // the database the gateways use
  const admin = new Client({ host: '127.0.0.1', port, user: 'noir', password, database: 'postgres' })
  await admin.connect()
  try {
    await admin.query('CREATE DATABASE noir')
  } finally {
    await admin.end()
  }
  return {
    url: `postgres://noir:${encodeURIComponent(password)}@127.0.0.1:${port}/noir`,
    urlWithoutPassword: `postgres://noir@127.0.0.1:${port}/noir`,
    password,
    port,
    kill: () => server.kill('SIGKILL'),
  }
}

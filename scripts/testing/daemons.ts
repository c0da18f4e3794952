// Real node daemons for tests: the product's LocalMesh (cli/local-mesh.ts: separate `noir node start`
// processes with temp homes on 127.0.0.1, mDNS off) with the fixed test passphrase, so a test can also run
// `noir` commands against a daemon's home. Register `cluster.cleanup` with t.teardown (also when the test
// fails):
//
//   const cluster = new DaemonCluster()
//   t.teardown(() => cluster.cleanup())
//   const a = await cluster.start()
//   const b = await cluster.start({ bootstrap: a.multiaddrs })
//   await b.api.post('/v1/actor/send', { to: `${a.did}/node`, behavior: '/noir/node/ping', ask: true })
import { spawnSync } from 'node:child_process'
import { request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LocalMesh, type LocalNode, type LocalNodeOptions } from '../../cli/local-mesh.ts'

export { NOIR_BIN } from '../../cli/local-mesh.ts'
export const TEST_PASSPHRASE = 'noir-test-passphrase'

export interface DaemonStartOptions extends LocalNodeOptions {
  /**
   * Start with an empty wallet. By default a daemon with a fresh home is funded with a development top-up of
   * TEST_FUNDING µNLC (once per node: the reference names its DID), since every contract holds escrow
   * (spec/ledger.md "Escrow"); a restart with `home` funds nothing more.
   */
  emptyWallet?: boolean
}
export type DaemonHandle = LocalNode

/** Where test daemons keep Node's module compile cache (under the temp dir, as Node advises). */
export const TEST_COMPILE_CACHE = join(tmpdir(), 'noir-test-compile-cache')

/** µNLC each test daemon is funded with: 1,000 NLC. */
export const TEST_FUNDING = 1_000_000_000n

export class DaemonCluster extends LocalMesh {
  constructor() {
    super({ passphrase: TEST_PASSPHRASE, homePrefix: 'noir-daemon-' })
  }

  override async start(opts: DaemonStartOptions = {}): Promise<DaemonHandle> {
    const { emptyWallet, ...rest } = opts
    // Node's module compile cache, shared by every test daemon of this machine: a daemon compiles the sources
    // it loads (type stripping, then V8) once, not at every start (`noir node start` writes the cache once ready)
    const env = { NODE_COMPILE_CACHE: process.env.NODE_COMPILE_CACHE ?? TEST_COMPILE_CACHE, ...rest.env }
    // a shared machine can take long to start a daemon (its enrollment benchmark): tests wait, they do not time out
    const node = await super.start({ readyTimeoutMs: 180_000, ...rest, env })
    if (!emptyWallet && opts.home === undefined) await topup(node, TEST_FUNDING, `test-funding-${node.did}`)
    return node
  }

  /** Every daemon started so far (running or not). */
  get daemons(): DaemonHandle[] {
    return this.nodes
  }
}

/**
 * A development top-up on a connection of its own (`agent: false`): the shared keep-alive pool of `node.api`
 * stays empty, so a test that blocks its event loop afterwards (spawnSync) never reuses a socket the daemon
 * closed meanwhile.
 */
function topup(node: DaemonHandle, amount: bigint, ref: string): Promise<void> {
  const info = node.api.info
  if (!info) throw new Error(`no api.json read for ${node.home}`)
  const body = JSON.stringify({ amount: String(amount), ref })
  const url = new URL('/v1/wallet/topup', info.url)
  return new Promise((resolve, reject) => {
    const req = request({
      ...(node.api.socket ? { socketPath: node.api.socket } : { host: url.hostname, port: url.port }),
      path: url.pathname, method: 'POST', agent: false,
      headers: { authorization: `Bearer ${info.token}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      let text = ''
      res.on('data', (c: Buffer) => (text += c.toString('utf8')))
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`top-up of ${node.home} answered ${res.statusCode}: ${text}`))))
    })
    req.on('error', reject)
    req.end(body)
  })
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

/**
 * A cluster whose daemons the test's teardown stops, then removes the containers they left (a daemon killed
 * with SIGKILL leaves its containers by design).
 */
export function clusterFor(t: { teardown(fn: () => Promise<void>): void }): DaemonCluster {
  const cluster = new DaemonCluster()
  t.teardown(async () => {
    const dids = cluster.daemons.map((d) => d.did)
    await cluster.cleanup()
    const { removeNodeContainers } = await import('../../cli/commands/demo.ts')
    await removeNodeContainers(dids)
  })
  return cluster
}

/**
 * `n` daemons with the same config, all bootstrapped from the first, connected and with their pubsub meshes
 * formed. The test's teardown stops them and removes the containers they left (a daemon killed with SIGKILL
 * leaves its containers by design).
 */
export async function startConnectedMesh(t: { teardown(fn: () => Promise<void>): void }, n: number, config: Record<string, unknown>, env?: Record<string, string>): Promise<{ cluster: DaemonCluster; nodes: DaemonHandle[] }> {
  const cluster = clusterFor(t)
  const first = await cluster.start({ config: config as never, ...(env ? { env } : {}) })
  const rest = await Promise.all(Array.from({ length: n - 1 }, () => cluster.start({ bootstrap: first.multiaddrs, config: config as never, ...(env ? { env } : {}) })))
  await eventually(async () => (await first.api.get<{ peers: unknown[] }>('/v1/peers')).peers.length >= n - 1, 20_000)
  await new Promise((r) => setTimeout(r, 1500)) // pubsub meshes
  return { cluster, nodes: [first, ...rest] }
}

/** Running Docker containers of one contract slot (label `noir.slot`), on any node of this machine. */
export function runningCopies(slot: string): number {
  const r = spawnSync('docker', ['ps', '-q', '--filter', `label=noir.slot=${slot}`, '--filter', 'status=running'], { encoding: 'utf8' })
  return r.stdout.split('\n').filter((l) => l.trim().length > 0).length
}

// The network CLI as real processes: noir init (safe to re-run), noir node start, node status, peers,
// join, ping, actor send (tell and --ask, --json outputs of spec/cli.md), and a clear error without a daemon.
import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NOIR_BIN, DaemonCluster, eventually } from '../../scripts/testing/daemons.ts'
import { readApiFile } from '../../appliance/daemon/api-file.ts'

const env = { ...process.env, NOIR_PASSPHRASE: 'cli-test-passphrase' }
const noir = (home: string, ...args: string[]) => {
  const r = spawnSync(process.execPath, [NOIR_BIN, '--home', home, ...args], { env, encoding: 'utf8', timeout: 60_000 })
  return { code: r.status, out: r.stdout, err: r.stderr }
}
const json = <T>(r: { code: number | null; out: string; err: string }): T => {
  if (r.code !== 0) throw new Error(`exit ${r.code}: ${r.err}`)
  return JSON.parse(r.out) as T
}

const cluster = new DaemonCluster()
t.teardown(() => cluster.cleanup())

t.test('noir init creates an identity and config once, and keeps them when run again', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'noir-cli-init-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const first = json<{ did: string; peerId: string; created: { identity: boolean; config: boolean } }>(noir(home, 'init', '--no-mdns', '--json'))
  t.same(first.created, { identity: true, config: true })
  t.match(first.did, /^did:key:z6Mk/)
  t.equal(JSON.parse(readFileSync(join(home, 'config.json'), 'utf8')).mdns, false, '--no-mdns is written to config.json')
  const second = json<{ did: string; created: { identity: boolean; config: boolean } }>(noir(home, 'init', '--json'))
  t.same(second.created, { identity: false, config: false }, 'a second run changes nothing')
  t.equal(second.did, first.did, 'and keeps the same identity')
})

t.test('without a running daemon the CLI says so clearly', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'noir-cli-none-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  const r = noir(home, 'peers')
  t.equal(r.code, 1)
  t.match(r.err, /^noir: NoDaemonError: no daemon is running for /)
})

t.test('noir node start runs a node in the foreground; the CLI drives it; SIGINT stops it', async (t) => {
  const home = mkdtempSync(join(tmpdir(), 'noir-cli-node-'))
  t.teardown(() => rmSync(home, { recursive: true, force: true }))
  json(noir(home, 'init', '--no-mdns', '--json'))
  const other = await cluster.start()

  const proc = spawn(process.execPath, [NOIR_BIN, '--home', home, 'node', 'start', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { if (proc.exitCode === null) proc.kill('SIGKILL') })
  let stdout = ''
  proc.stdout.on('data', (c: Buffer) => (stdout += c.toString()))
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)))
  const ready = await eventually(() => (stdout.trim().endsWith('}') ? (JSON.parse(stdout) as { did: string; api: string; multiaddrs: string[] }) : undefined), 30_000)
  t.equal(readApiFile(home)?.url, ready.api, 'the ready document names the API that api.json records')

  const status = json<{ did: string; peers: number; protocols: string[] }>(noir(home, 'node', 'status', '--json'))
  t.equal(status.did, ready.did)
  t.ok(status.protocols.includes('/noir/actor/1.0.0'))

  const joined = json<{ did: string; peerId: string }>(noir(home, 'join', other.multiaddrs[0]!, '--json'))
  t.equal(joined.did, other.did, 'noir join connects to the given peer')
  const peers = json<{ peers: Array<{ did: string; addresses: string[]; latencyMs: number | null }> }>(noir(home, 'peers', '--json'))
  t.ok(peers.peers.some((p) => p.did === other.did), 'noir peers lists it')

  const ping = json<{ did: string; rttMs: number }>(noir(home, 'ping', other.did, '--json'))
  t.equal(ping.did, other.did)
  t.ok(ping.rttMs >= 0, 'noir ping measures a round trip')

  const asked = json<{ reply: { pong: boolean; did: string } }>(noir(home, 'actor', 'send', `${other.did}/node`, '/noir/node/ping', '{}', '--ask', '--json'))
  t.same(asked.reply.pong, true)
  t.equal(asked.reply.did, other.did, 'noir actor send --ask prints the remote actor\'s answer')
  const told = json<{ sent: boolean }>(noir(home, 'actor', 'send', `${other.did}/node`, '/noir/node/ping', '{}', '--json'))
  t.same(told, { sent: true }, 'a tell prints { sent: true }')

  const refused = noir(home, 'actor', 'send', `${other.did}/nobody`, '/noir/node/ping', '{}', '--ask')
  t.equal(refused.code, 1)
  t.match(refused.err, /^noir: ActorNotFoundError: /, 'a refusal exits 1 with its typed name')

  const badJson = noir(home, 'actor', 'send', `${other.did}/node`, '/noir/node/ping', '{nope', '--ask')
  t.equal(badJson.code, 2, 'a malformed body is a usage error')

  proc.kill('SIGINT')
  t.equal(await exited, 0, 'SIGINT stops the node cleanly')
  t.notOk(existsSync(join(home, 'api.json')), 'and removes api.json')
})

t.test('noir node start writes Node\'s module compile cache once ready, so a node killed later still leaves it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'noir-compile-cache-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const cached = () => readdirSync(dir, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && statSync(join(e.parentPath, e.name)).size > 0).length
  const node = await cluster.start({ env: { NODE_COMPILE_CACHE: dir } })
  // Node itself writes the cache only at exit: what is there while the node runs was flushed by the command
  const entries = await eventually(() => cached() > 0 && cached(), 20_000, 100)
  t.ok(entries > 0, `${entries} compiled modules cached while the node runs`)
  await node.kill()
  t.ok(cached() >= entries, 'the cache stays after a kill -9 (the exit Node would write it at never came)')
})

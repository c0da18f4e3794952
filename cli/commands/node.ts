// `noir node start` (the daemon, in the foreground), `noir node status` and `noir node actors`.
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util'
import { Keystore, passphraseFrom } from '../../identity/index.ts'
import type { NodeConfig } from '../../appliance/daemon/config.ts'
import type { ActorTreeNode, HostedActorNode } from '../../core/index.ts'
import { ApiClient } from '../api-client.ts'
import { parseCommandArgs, printJson, printLine, UsageError, type Command } from '../command.ts'

function parse(argv: string[], options: ParseArgsOptionsConfig, positionals = false): { values: Record<string, unknown>; positionals: string[] } {
  try {
    const r = parseArgs({ args: argv, options, allowPositionals: positionals, strict: true })
    return { values: r.values as Record<string, unknown>, positionals: r.positionals }
  } catch (err) {
    throw new UsageError((err as Error).message)
  }
}

export const nodeStart: Command = {
  path: ['node', 'start'],
  summary: 'run this node (the daemon) in the foreground',
  usage: `Usage: noir node start [--listen MULTIADDR]... [--bootstrap MULTIADDR]... [--announce MULTIADDR]...
                       [--no-mdns] [--relay] [--api-port N] [--log stderr|FILE] [--json]
                       [--share cpu=2,memory=4GiB,disk=20GiB,gpu=0]

Runs the node until SIGINT/SIGTERM: loads the key from the home's keystore (passphrase from
NOIR_PASSPHRASE or the terminal), joins the mesh, serves the local API on 127.0.0.1 and writes
$HOME/api.json (url + token, mode 0600) once ready. Flags override config.json for this run.

  --listen      listen address (repeatable). Default /ip4/127.0.0.1/tcp/0: private to this machine
                until you open it, e.g. --listen /ip4/0.0.0.0/tcp/4001; add /p2p-circuit to be
                reachable through relays
  --bootstrap   a peer to join, /ip4/.../tcp/N/p2p/<peer id> (repeatable)
  --no-mdns     no LAN discovery
  --relay       act as a circuit relay for nodes that cannot be dialled directly
  --share       what this node offers the network (config.json 'share'); a resource left out is not
                shared; default cpu=1,memory=1GiB,disk=4GiB,gpu=0 (cut to the machine)
Log lines are JSON (stderr by default). Once ready it prints one line (with --json: the ready document).`,
  async run(ctx, argv) {
    const { values } = parse(argv, {
      listen: { type: 'string', multiple: true },
      bootstrap: { type: 'string', multiple: true },
      announce: { type: 'string', multiple: true },
      'no-mdns': { type: 'boolean' },
      relay: { type: 'boolean' },
      'api-port': { type: 'string' },
      log: { type: 'string' },
      share: { type: 'string' },
    })
    const overrides: Partial<NodeConfig> = {}
    if (values.listen) overrides.listen = values.listen as string[]
    if (values.bootstrap) overrides.bootstrap = values.bootstrap as string[]
    if (values.announce) overrides.announce = values.announce as string[]
    if (values['no-mdns']) overrides.mdns = false
    if (values.relay) overrides.relay = true
    if (values.log) overrides.log = values.log as string
    if (values.share !== undefined) overrides.share = values.share as string // parsed (typed errors) by the appliance service
    if (values['api-port'] !== undefined) {
      const p = Number(values['api-port'])
      if (!Number.isInteger(p) || p < 0 || p > 65535) throw new UsageError('--api-port must be a port number')
      overrides.apiPort = p
    }
    const passphrase = await passphraseFrom(ctx.env, true)
    // Nothing this node starts inherits it (executors build their children's environments, but a library
    // that spawns with process.env would pass it on).
    for (const v of ['NOIR_PASSPHRASE', 'NOIR_PASSPHRASE_FD', 'NOIR_PASSPHRASE_FILE']) {
      delete ctx.env[v]
      delete process.env[v]
    }
    const key = await Keystore.load(ctx.home, passphrase)
    // NOIR_CLOCK_OFFSET_MS (fault injection only, spec/chaos.md): this node's wall clock runs skewed
    const { applyClockOffset } = await import('../../appliance/daemon/clock-offset.ts')
    const skew = applyClockOffset(ctx.env)
    if (skew !== 0) process.stderr.write(`${JSON.stringify({ level: 'warn', msg: 'wall clock skewed for testing (NOIR_CLOCK_OFFSET_MS)', offsetMs: skew })}\n`)
    // before the daemon allocates: buffers count by what they hold, not by what passed through them
    const { countBuffersInHeapLimit } = await import('../../appliance/daemon/heap-limits.ts')
    countBuffersInHeapLimit()
    // loaded here, not at the top: every other command stays quick to start (no libp2p / xstate / level)
    const { Daemon } = await import('../../appliance/daemon/daemon.ts')
    const daemon = await Daemon.start({ home: ctx.home, key, overrides })
    // A module compile cache (NODE_COMPILE_CACHE, Node's own) is written when the process exits, which a node
    // that is killed never does: written now that the modules are loaded, so the next start finds them compiled
    // (a no-op without the variable; write errors are ignored by Node, the cache being only a speed-up)
    const { flushCompileCache } = await import('node:module')
    flushCompileCache()
    const ready = { did: daemon.did, peerId: daemon.mesh.peerId, multiaddrs: daemon.mesh.multiaddrs(), api: daemon.apiUrl, pid: process.pid }
    if (ctx.json) printJson(ctx, ready)
    else printLine(ctx, `node ${daemon.did} ready; api ${daemon.apiUrl}; listening on ${ready.multiaddrs.join(' ') || '(no addresses)'}`)
    const onAbort = (): void => void daemon.stop()
    ctx.signal.addEventListener('abort', onAbort, { once: true })
    // NOIR_PARENT_PID (set by test harnesses): stop when that process is gone, so a killed test run
    // leaves no daemon behind
    const parent = Number(ctx.env.NOIR_PARENT_PID)
    const watch = Number.isInteger(parent) && parent > 0
      ? setInterval(() => {
        try {
          process.kill(parent, 0)
        } catch {
          onAbort()
        }
      }, 1_000)
      : undefined
    watch?.unref()
    // SIGINT/SIGTERM (ctx.signal) or POST /v1/node/stop
    await daemon.stopped
    clearInterval(watch)
    ctx.signal.removeEventListener('abort', onAbort)
    return 0
  },
}

interface Status {
  did: string
  peerId: string
  multiaddrs: string[]
  pid: number
  version: string
  uptimeMs: number
  peers: number
  relay: boolean
  protocols: string[]
  services: Record<string, unknown>
  admission?: { maxNewIdentitiesPerMinute: number; allow: string[]; quarantinedAddresses: number; refused: Record<string, number> }
  broadcast?: { scores?: { peers: number; graylisted: number; belowGossip: number; lowest: number | null; graylistThreshold: number } }
}

export const nodeStatus: Command = {
  path: ['node', 'status'],
  summary: 'show the running node: DID, addresses, peers, services',
  usage: `Usage: noir node status [--json]

Asks the running daemon (found through $HOME/api.json). --json prints the daemon's status document
(GET /v1/status, spec/api.md).`,
  async run(ctx, argv) {
    parse(argv, {})
    const s = await ApiClient.forHome(ctx.home).get<Status>('/v1/status')
    if (ctx.json) return printJson(ctx, s)
    printLine(ctx, `did:       ${s.did}`)
    printLine(ctx, `peer id:   ${s.peerId}`)
    printLine(ctx, `pid:       ${s.pid}   uptime ${(s.uptimeMs / 1000).toFixed(1)} s   version ${s.version}`)
    printLine(ctx, `peers:     ${s.peers}${s.relay ? '   (relay server)' : ''}`)
    printLine(ctx, `addresses:`)
    for (const a of s.multiaddrs) printLine(ctx, `  ${a}`)
    if (s.admission) {
      const a = s.admission
      printLine(ctx, `admission: ${a.maxNewIdentitiesPerMinute} new peer ids per address per minute; exempt ${a.allow.join(', ') || 'none'}; ${a.quarantinedAddresses} address(es) quarantined; refused ${a.refused.quarantined} quarantined, ${a.refused['new-identities']} new identities`)
    }
    const sc = s.broadcast?.scores
    if (sc) {
      printLine(ctx, `pubsub:    ${sc.peers} peer(s) scored, lowest ${sc.lowest ?? '-'}; ${sc.belowGossip} without gossip, ${sc.graylisted} graylisted (below ${sc.graylistThreshold})`)
    }
    const svc = Object.keys(s.services)
    if (svc.length > 0) printLine(ctx, `services:  ${svc.join(', ')}`)
  },
}

export const nodeActors: Command = {
  path: ['node', 'actors'],
  summary: "the node's live actor tree: logic, state, mailbox depth, messages handled, restarts",
  usage: `Usage: noir node actors [--json]

Shows every actor the running daemon hosts, nested under its supervisor, and under each the XState
children its machine invoked or spawned (xstate:<id>): its logic (definition name or machine id), state
(a machine's state value, else its status), mailbox depth (messages waiting), messages handled and
restarts (by its supervisor). --json prints the document of GET /v1/node/actors (spec/cli.md).`,
  async run(ctx, argv) {
    parseCommandArgs(argv, {}, { min: 0, max: 0, usage: 'usage: noir node actors [--json]' })
    const doc = await ApiClient.forHome(ctx.home).get<{ did: string; actors: HostedActorNode[] }>('/v1/node/actors')
    if (ctx.json) return printJson(ctx, doc)
    if (doc.actors.length === 0) return printLine(ctx, 'no actors')
    for (const line of actorTreeLines(doc.actors)) printLine(ctx, line)
  },
}

/** The tree as aligned columns, one line per actor, children indented under their parent. */
function actorTreeLines(actors: readonly ActorTreeNode[]): string[] {
  const rows: string[][] = [['ACTOR', 'LOGIC', 'STATE', 'STATUS', 'MAILBOX', 'HANDLED', 'RESTARTS']]
  const walk = (nodes: readonly ActorTreeNode[], depth: number): void => {
    for (const n of nodes) {
      const indent = '  '.repeat(depth)
      const state = typeof n.state === 'string' ? n.state : JSON.stringify(n.state)
      if (n.kind === 'actor') rows.push([indent + n.address, n.logic, state, n.status, String(n.mailbox), String(n.handled), String(n.restarts)])
      else rows.push([`${indent}xstate:${n.id}`, n.logic, state, n.status, '-', '-', '-'])
      walk(n.children, depth + 1)
    }
  }
  walk(actors, 0)
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd())
}

export const nodeCommands: Command[] = [nodeStart, nodeStatus, nodeActors]

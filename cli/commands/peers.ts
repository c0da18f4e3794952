// `noir peers`: the running node's connected peers, their addresses and latency.
import { ApiClient } from '../api-client.ts'
import { printJson, printLine, UsageError, type Command } from '../command.ts'
import type { PeerSummary } from '../../p2p/peers.ts'

export const peersCommand: Command = {
  path: ['peers'],
  summary: 'list connected peers with their addresses and round-trip latency',
  usage: `Usage: noir peers [--json]

--json prints { peers: [{ peerId, did, addresses, connection, latencyMs, measuredAt, protocols }] }.`,
  async run(ctx, argv) {
    if (argv.length > 0) throw new UsageError(`unexpected argument '${argv[0]}'`)
    const r = await ApiClient.forHome(ctx.home).get<{ peers: PeerSummary[] }>('/v1/peers')
    if (ctx.json) return printJson(ctx, r)
    if (r.peers.length === 0) return printLine(ctx, 'no peers connected')
    for (const p of r.peers) {
      const lat = p.latencyMs === null ? '   ? ms' : `${String(p.latencyMs).padStart(4)} ms`
      printLine(ctx, `${lat}  ${p.connection.padEnd(7)}  ${p.did ?? p.peerId}`)
      for (const a of p.addresses) printLine(ctx, `                  ${a}`)
    }
  },
}

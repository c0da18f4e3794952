// `noir ping DID|PEERID|MULTIADDR`: round trip through the running node (libp2p ping).
import { ApiClient } from '../api-client.ts'
import { intOption, parseCommandArgs, printJson, printLine, type Command } from '../command.ts'

export const pingCommand: Command = {
  path: ['ping'],
  summary: 'ping a node by DID, peer id or multiaddr',
  usage: `Usage: noir ping DID|PEERID|MULTIADDR [--timeout MS] [--json]

Connects when needed (peer store, then the DHT) and measures one libp2p ping round trip.
--json prints { peerId, did, rttMs }.`,
  async run(ctx, argv) {
    const { values, positionals } = parseCommandArgs(argv, { timeout: { type: 'string' } }, { min: 1, max: 1, usage: 'noir ping needs one DID, peer id or multiaddr' })
    const target = positionals[0]!
    const timeoutMs = intOption(values.timeout, '--timeout')
    const r = await ApiClient.forHome(ctx.home).post<{ peerId: string; did: string | null; rttMs: number }>('/v1/peers/ping', { target, ...(timeoutMs ? { timeoutMs } : {}) })
    if (ctx.json) return printJson(ctx, r)
    printLine(ctx, `${r.did ?? r.peerId}: ${r.rttMs} ms`)
  },
}

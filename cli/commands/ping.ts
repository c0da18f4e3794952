// `noir ping DID|PEERID|MULTIADDR`: round trip through the running node (libp2p ping).
import { ApiClient } from '../api-client.ts'
import { printJson, printLine, UsageError, type Command } from '../command.ts'

export const pingCommand: Command = {
  path: ['ping'],
  summary: 'ping a node by DID, peer id or multiaddr',
  usage: `Usage: noir ping DID|PEERID|MULTIADDR [--timeout MS] [--json]

Connects when needed (peer store, then the DHT) and measures one libp2p ping round trip.
--json prints { peerId, did, rttMs }.`,
  async run(ctx, argv) {
    const [target, ...rest] = argv
    let timeoutMs: number | undefined
    for (let i = 0; i < rest.length; i++) {
      if (rest[i] === '--timeout') timeoutMs = Number(rest[++i])
      else throw new UsageError(`unexpected argument '${rest[i]}'`)
    }
    if (!target) throw new UsageError('noir ping needs a DID, peer id or multiaddr')
    const r = await ApiClient.forHome(ctx.home).post<{ peerId: string; did: string | null; rttMs: number }>('/v1/peers/ping', { target, ...(timeoutMs ? { timeoutMs } : {}) })
    if (ctx.json) return printJson(ctx, r)
    printLine(ctx, `${r.did ?? r.peerId}: ${r.rttMs} ms`)
  },
}

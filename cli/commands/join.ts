// `noir join MULTIADDR`: tell the running daemon to connect to a peer.
import { ApiClient } from '../api-client.ts'
import { printJson, printLine, UsageError, type Command } from '../command.ts'

export const joinCommand: Command = {
  path: ['join'],
  summary: 'connect the running node to a peer (MULTIADDR ending in /p2p/<peer id>)',
  usage: `Usage: noir join MULTIADDR [--timeout MS] [--json]

Asks the running daemon to dial MULTIADDR (e.g. /ip4/192.0.2.7/tcp/4001/p2p/12D3Koo...). A DID or a
peer id also works when the node can find the peer (peer store or DHT).
--json prints { peerId, did, address }.`,
  async run(ctx, argv) {
    const [address, ...rest] = argv
    let timeoutMs: number | undefined
    for (let i = 0; i < rest.length; i++) {
      if (rest[i] === '--timeout') timeoutMs = Number(rest[++i])
      else throw new UsageError(`unexpected argument '${rest[i]}'`)
    }
    if (!address) throw new UsageError('noir join needs a MULTIADDR')
    const r = await ApiClient.forHome(ctx.home).post<{ peerId: string; did: string | null; address: string }>('/v1/peers/join', { address, ...(timeoutMs ? { timeoutMs } : {}) })
    if (ctx.json) return printJson(ctx, r)
    printLine(ctx, `connected to ${r.did ?? r.peerId} at ${r.address}`)
  },
}

// `noir join MULTIADDR`: tell the running daemon to connect to a peer.
import { ApiClient } from '../api-client.ts'
import { intOption, parseCommandArgs, printJson, printLine, type Command } from '../command.ts'

export const joinCommand: Command = {
  path: ['join'],
  summary: 'connect the running node to a peer (MULTIADDR ending in /p2p/<peer id>)',
  usage: `Usage: noir join MULTIADDR [--timeout MS] [--json]

Asks the running daemon to dial MULTIADDR (e.g. /ip4/192.0.2.7/tcp/4001/p2p/12D3Koo...). A DID or a
peer id also works when the node can find the peer (peer store or DHT).
--json prints { peerId, did, address }.`,
  async run(ctx, argv) {
    const { values, positionals } = parseCommandArgs(argv, { timeout: { type: 'string' } }, { min: 1, max: 1, usage: 'noir join needs one MULTIADDR' })
    const address = positionals[0]!
    const timeoutMs = intOption(values.timeout, '--timeout')
    const r = await ApiClient.forHome(ctx.home).post<{ peerId: string; did: string | null; address: string }>('/v1/peers/join', { address, ...(timeoutMs ? { timeoutMs } : {}) })
    if (ctx.json) return printJson(ctx, r)
    printLine(ctx, `connected to ${r.did ?? r.peerId} at ${r.address}`)
  },
}

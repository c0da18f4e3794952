// `noir contracts [--json]`: the contracts this node holds, as consumer (it orchestrates) or provider (it
// runs the work), each signed by both sides.
import { ApiClient } from '../api-client.ts'
import { printJson, printLine, UsageError, type Command } from '../command.ts'
import { formatNlcText } from '../../ledger/units.ts'

interface Summary {
  id: string
  side: string
  status: string
  workload: string
  slot: string
  epoch: number
  role: string
  lane: string
  consumer: string
  provider: string
  /** µNLC per replica-hour, decimal digits */
  pricePerHour: string
  signedByConsumer: boolean
  signedByProvider: boolean
  note: string | null
}

export const contractsCommand: Command = {
  path: ['contracts'],
  summary: 'list the signed contracts this node holds (as consumer or provider)',
  usage: `Usage: noir contracts [--json]

--json prints { contracts: [{ id, side, status, deploymentId, workload, slot, epoch, role, lane, consumer,
provider, pricePerHour, resources, startsAt, endsAt, instanceState, note, signedByConsumer, signedByProvider }] }.`,
  async run(ctx, argv) {
    if (argv.length > 0) throw new UsageError(`unexpected argument '${argv[0]}'`)
    const r = await ApiClient.forHome(ctx.home).get<{ contracts: Summary[] }>('/v1/contracts')
    if (ctx.json) return printJson(ctx, r)
    if (r.contracts.length === 0) return printLine(ctx, 'no contracts')
    for (const c of r.contracts) {
      const other = c.side === 'consumer' ? `provider ${c.provider}` : `consumer ${c.consumer}`
      const sigs = c.signedByConsumer && c.signedByProvider ? 'signed by both' : 'NOT countersigned'
      printLine(ctx, `${c.id.slice(0, 8)}  ${c.side.padEnd(8)} ${c.status.padEnd(10)} ${c.role.padEnd(7)} ${c.slot} e${c.epoch}  ${formatNlcText(c.pricePerHour)}/h  ${other}  ${sigs}${c.note ? `  (${c.note})` : ''}`)
    }
  },
}

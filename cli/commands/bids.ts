// `noir bids FILE --dry-run`: which nodes would bid for a workload (with their quotes), why the others would
// not, and which nodes would be chosen. Nothing is reserved or started.
import { parseArgs } from 'node:util'
import { ApiClient } from '../api-client.ts'
import { printJson, printLine, UsageError, type Command } from '../command.ts'
import type { DryRunResult } from '../../actors/orchestrator/orchestrator.ts'
import { readWorkload } from './deploy.ts'
import { formatNlcText } from '../../ledger/units.ts'

export const bidsCommand: Command = {
  path: ['bids'],
  summary: 'dry run: which nodes would bid for a workload, and why the others would not',
  usage: `Usage: noir bids FILE --dry-run [--json]

--json prints { round: { requestId, asked, bids, declines, silent, rttMs }, placement } (spec/cli.md).`,
  async run(ctx, argv) {
    const { values, positionals } = parseArgs({ args: argv, options: { 'dry-run': { type: 'boolean' } }, allowPositionals: true })
    if (positionals.length !== 1 || !values['dry-run']) throw new UsageError('noir bids FILE --dry-run (only dry runs exist: a real deploy is `noir deploy`)')
    const w = readWorkload(positionals[0])
    const r = await ApiClient.forHome(ctx.home).post<DryRunResult>('/v1/bids/dry-run', { workload: w })
    if (ctx.json) return printJson(ctx, r)
    printLine(ctx, `asked ${r.round.asked.length} node(s): ${r.round.bids.length} would bid, ${r.round.declines.length} would not, ${r.round.silent.length} did not answer`)
    for (const b of r.round.bids) {
      const rtt = r.round.rttMs[b.node]
      printLine(ctx, `  bid      ${b.node}  ${formatNlcText(b.pricePerHour)}/h  ${b.arch}/${b.region}  free cpu ${b.free.cpu}${rtt !== undefined ? `  rtt ${rtt.toFixed(1)} ms` : ''}`)
    }
    for (const d of r.round.declines) printLine(ctx, `  declines ${d.node}: ${d.reasons.join('; ')}`)
    for (const s of r.round.silent) printLine(ctx, `  silent   ${s.node}: ${s.reason}`)
    if (r.placement.ok) printLine(ctx, `would place on: ${r.placement.nodes.join(', ')}${r.placement.standby ? ` (standby ${r.placement.standby})` : ''}`)
    else printLine(ctx, `infeasible: ${r.placement.infeasible.reason}`)
    return r.placement.ok ? 0 : 1
  },
}

// `noir status ID [--json]`: one deployment: phase (and its history), replicas and where they run, standby,
// failovers with their timing, and the event log.
import { deploymentsTarget } from '../gateway-login.ts'
import { printJson, printLine, UsageError, type Command } from '../command.ts'
import { formatNlcText } from '../../ledger/units.ts'

export const statusCommand: Command = {
  path: ['status'],
  summary: 'show one deployment: phase, replicas, contracts, failovers, events',
  usage: `Usage: noir status ID [--json]

--json prints the DeploymentView (spec/cli.md).`,
  async run(ctx, argv) {
    if (argv.length !== 1) throw new UsageError('noir status ID')
    const v = await deploymentsTarget(ctx.home).status(argv[0]!)
    if (ctx.json) return printJson(ctx, v)
    printLine(ctx, `${v.id}  ${v.kind} ${v.name}, lane ${v.lane}`)
    printLine(ctx, `phase: ${v.phase}${v.reason ? ` (${v.reason})` : ''}`)
    printLine(ctx, `history: ${v.history.map((h) => h.phase).join(' -> ')}`)
    if (v.kind === 'job') printLine(ctx, `runs: ${v.succeeded} succeeded, ${v.failures} failed`)
    for (const r of v.replicas) {
      printLine(ctx, `  replica ${r.index}: ${r.state.padEnd(9)} epoch ${r.epoch}  ${r.node ?? '-'}${r.pricePerHour !== null ? `  ${formatNlcText(r.pricePerHour)}/h` : ''}${r.failedOn.length ? `  (failed on ${r.failedOn.length} node(s))` : ''}`)
    }
    if (v.standby) printLine(ctx, `  standby: ${v.standby.node}`)
    for (const f of v.failovers) printLine(ctx, `  failover of ${f.slot}: ${f.from} -> ${f.to ?? '(pending)'}${f.ms !== null ? ` in ${f.ms} ms after detection` : ''}`)
    if (v.infeasible?.nearest) printLine(ctx, `nearest candidate: ${v.infeasible.nearest.nodeDid}: ${v.infeasible.nearest.failures.map((f) => `${f.constraint} ${f.detail}`).join(', ')}`)
    printLine(ctx, 'events:')
    for (const e of v.events.slice(-20)) printLine(ctx, `  ${new Date(e.at).toISOString().slice(11, 23)}  ${e.msg}`)
  },
}

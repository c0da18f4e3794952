// `noir logs ID [-f] [--replica N]`: a replica's log lines, read over the mesh from the node that runs it
// (after a failover, from the new node).
import { parseArgs } from 'node:util'
import { deploymentsTarget, type LogDoc } from '../gateway-login.ts'
import { printJson, printLine, UsageError, type Command } from '../command.ts'

export const logsCommand: Command = {
  path: ['logs'],
  summary: "print a deployment replica's logs (-f follows, across failovers)",
  usage: `Usage: noir logs ID [-f|--follow] [--replica N] [--json]

--json prints one JSON document per line: { ts, stream, line, node } or { event: "moved", from, to }.`,
  async run(ctx, argv) {
    const { values, positionals } = parseArgs({ args: argv, options: { follow: { type: 'boolean', short: 'f' }, replica: { type: 'string' } }, allowPositionals: true })
    if (positionals.length !== 1) throw new UsageError('noir logs ID [-f] [--replica N]')
    const replica = values.replica === undefined ? 0 : Number(values.replica)
    if (!Number.isInteger(replica) || replica < 0) throw new UsageError('--replica must be a replica index (0, 1, ...)')
    const lines: AsyncIterable<LogDoc> = deploymentsTarget(ctx.home).logs(positionals[0]!, { replica, follow: values.follow === true, signal: ctx.signal })
    for await (const d of lines) {
      if (ctx.json) printJson(ctx, d)
      else if (d.event === 'moved') printLine(ctx, `--- replica ${replica} moved: ${d.from} -> ${d.to}`)
      else printLine(ctx, `${d.node ? `[${d.node.slice(-6)}] ` : ''}${d.line ?? ''}`)
    }
  },
}

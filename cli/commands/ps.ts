// `noir ps [--json]`: this node's deployments (or, after `noir login`, the account's at the gateway), one line each.
import { deploymentsTarget } from '../gateway-login.ts'
import { printJson, printLine, UsageError, type Command } from '../command.ts'

export const psCommand: Command = {
  path: ['ps'],
  summary: 'list the deployments this node orchestrates',
  usage: `Usage: noir ps [--json]

--json prints { deployments: [DeploymentView] } (spec/cli.md).`,
  async run(ctx, argv) {
    if (argv.length > 0) throw new UsageError(`unexpected argument '${argv[0]}'`)
    const r = { deployments: await deploymentsTarget(ctx.home).list() }
    if (ctx.json) return printJson(ctx, r)
    if (r.deployments.length === 0) return printLine(ctx, 'no deployments')
    printLine(ctx, `${'ID'.padEnd(28)} ${'KIND'.padEnd(8)} ${'LANE'.padEnd(12)} ${'PHASE'.padEnd(13)} RUNNING`)
    for (const d of r.deployments) {
      const running = d.replicas.filter((x) => x.state === 'running').length
      const extra = d.kind === 'job' ? ` done ${d.succeeded}, failed ${d.failures}` : ''
      printLine(ctx, `${d.id.padEnd(28)} ${d.kind.padEnd(8)} ${d.lane.padEnd(12)} ${d.phase.padEnd(13)} ${running}/${d.desired}${extra}`)
    }
  },
}

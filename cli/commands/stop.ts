// `noir stop ID`: stops a deployment: its replicas stop, its contracts end (on both sides).
import { ApiClient } from '../api-client.ts'
import { printJson, printLine, UsageError, type Command } from '../command.ts'
import type { DeploymentView } from '../../actors/orchestrator/orchestrator.ts'

export const stopCommand: Command = {
  path: ['stop'],
  summary: 'stop a deployment (replicas stop, contracts end)',
  usage: 'Usage: noir stop ID [--json]',
  async run(ctx, argv) {
    if (argv.length !== 1) throw new UsageError('noir stop ID')
    const v = await ApiClient.forHome(ctx.home).post<DeploymentView>(`/v1/deployments/${encodeURIComponent(argv[0]!)}/stop`)
    if (ctx.json) return printJson(ctx, v)
    printLine(ctx, `${v.id}: ${v.phase}`)
  },
}

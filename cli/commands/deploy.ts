// `noir deploy FILE [--wait] [--json]`: validates the workload here (errors name the JSON path), hands it to
// this node's orchestrator, and shows the deployment's progress (bidding, contracts, starting).
import { readFileSync } from 'node:fs'
import { ApiClient } from '../api-client.ts'
import { parseArgs } from 'node:util'
import { printJson, printLine, UsageError, type Command, type CommandContext } from '../command.ts'
import { parseWorkload, type Workload } from '../../actors/workload/workload.ts'
import type { DeploymentView } from '../../actors/orchestrator/orchestrator.ts'

export function readWorkload(file: string | undefined): Workload {
  if (!file) throw new UsageError('a workload file is needed (YAML or JSON, see spec/workload.schema.json)')
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new UsageError(`cannot read ${file}: ${(err as Error).message}`)
  }
  return parseWorkload(text, file)
}

const short = (did: string | null): string => (did ? `${did.slice(0, 12)}…${did.slice(-6)}` : '-')
export { short as shortDid }

const time = (at: number): string => new Date(at).toISOString().slice(11, 23)

/** Prints events not printed yet; returns how many were printed in all. */
export function printEvents(ctx: CommandContext, v: DeploymentView, seen: number): number {
  for (const e of v.events.slice(seen)) printLine(ctx, `${time(e.at)}  ${e.msg}`)
  return v.events.length
}

const settled = (v: DeploymentView, wait: boolean): boolean =>
  ['running', 'completed', 'failed', 'stopped'].includes(v.phase) || (!wait && ['provisioning', 'degraded'].includes(v.phase))

/** Polls a deployment until `done`, printing its events (text mode). */
export async function follow(ctx: CommandContext, api: ApiClient, id: string, done: (v: DeploymentView) => boolean, quiet = ctx.json): Promise<DeploymentView> {
  let seen = 0
  for (;;) {
    const v = await api.get<DeploymentView>(`/v1/deployments/${encodeURIComponent(id)}`)
    if (!quiet) seen = printEvents(ctx, v, seen)
    if (done(v) || ctx.signal.aborted) return v
    await new Promise((r) => setTimeout(r, 150))
  }
}

export const deployCommand: Command = {
  path: ['deploy'],
  summary: 'deploy a workload (service or job) to the network and show its progress',
  usage: `Usage: noir deploy FILE [--wait] [--json]

Validates FILE (YAML or JSON, spec/workload.schema.json) and asks this node's orchestrator to place it:
signed bid request, signed bids, contracts, start. Progress is printed while bidding and starting.
  --wait   wait until the deployment is running (a job: completed) or has failed; exit 1 if it failed
  --json   print the deployment (as \`noir status --json\`) once settled`,
  async run(ctx, argv) {
    const { values, positionals } = parseArgs({ args: argv, options: { wait: { type: 'boolean' } }, allowPositionals: true })
    if (positionals.length !== 1) throw new UsageError('noir deploy FILE [--wait]')
    const w = readWorkload(positionals[0])
    const api = ApiClient.forHome(ctx.home)
    const started = await api.post<DeploymentView>('/v1/deployments', { workload: w })
    if (!ctx.json) printLine(ctx, `deployment ${started.id}`)
    const wait = values.wait === true
    const v = await follow(ctx, api, started.id, (x) => settled(x, wait) && (!wait || x.kind === 'service' || x.phase !== 'running'))
    if (ctx.json) printJson(ctx, v)
    else {
      printLine(ctx, `${v.id}: ${v.phase}${v.reason ? ` (${v.reason})` : ''}`)
      if (v.infeasible?.nearest) printLine(ctx, `nearest candidate: ${v.infeasible.nearest.nodeDid}: ${v.infeasible.nearest.failures.map((f) => `${f.constraint} ${f.detail}`).join(', ')}`)
    }
    return v.phase === 'failed' ? 1 : 0
  },
}

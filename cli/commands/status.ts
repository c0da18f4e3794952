// `noir status ID [--json]`: one deployment: phase (and its history), replicas and where they run, standby,
// failovers with their timing, and the event log.
import { ApiClient } from '../api-client.ts'
import { deploymentsTarget } from '../gateway-login.ts'
import { printJson, printLine, UsageError, type Command } from '../command.ts'
import { formatNlcText } from '../../ledger/units.ts'

interface IngressView {
  ports: { port: number; exposure: string }[]
  endpoints: { url: string; port: number }[]
  replicas?: { index: number; ready: boolean | null; detail: string }[]
}

export const statusCommand: Command = {
  path: ['status'],
  summary: 'show one deployment: phase, replicas, contracts, failovers, events',
  usage: `Usage: noir status ID [--json]

--json prints the DeploymentView (spec/cli.md), with \`ingress: { deploymentId, ports: [{ port, exposure }],
endpoints }\` when the node runs the ingress service (spec/ingress.md).`,
  async run(ctx, argv) {
    if (argv.length !== 1) throw new UsageError('noir status ID')
    const target = deploymentsTarget(ctx.home)
    const v = await target.status(argv[0]!)
    // the ports and where this node's ingress serves them (spec/ingress.md); absent on a daemon without the
    // ingress service, and not asked through a gateway (its customers' endpoints are not served there yet)
    const ingress = target.remote ? undefined : await ApiClient.forHome(ctx.home).get<IngressView>(`/v1/ingress/deployments/${encodeURIComponent(argv[0]!)}`).catch(() => undefined)
    if (ctx.json) return printJson(ctx, ingress ? { ...v, ingress } : v)
    printLine(ctx, `${v.id}  ${v.kind} ${v.name}, lane ${v.lane}`)
    printLine(ctx, `phase: ${v.phase}${v.reason ? ` (${v.reason})` : ''}`)
    printLine(ctx, `history: ${v.history.map((h) => h.phase).join(' -> ')}`)
    if (v.kind === 'job') printLine(ctx, `runs: ${v.succeeded} succeeded, ${v.failures} failed`)
    for (const r of v.replicas) {
      const h = ingress?.replicas?.find((x) => x.index === r.index && r.state === 'running')
      const health = h ? `  ${h.ready === null ? 'health unknown' : h.ready ? 'ready' : 'not ready'} (${h.detail})` : ''
      printLine(ctx, `  replica ${r.index}: ${r.state.padEnd(9)} epoch ${r.epoch}  ${r.node ?? '-'}${r.pricePerHour !== null ? `  ${formatNlcText(r.pricePerHour)}/h` : ''}${r.failedOn.length ? `  (failed on ${r.failedOn.length} node(s))` : ''}${health}`)
    }
    if (v.standby) printLine(ctx, `  standby: ${v.standby.node}`)
    for (const p of ingress?.ports ?? []) printLine(ctx, `  port ${p.port}: ${p.exposure}`)
    for (const e of ingress?.endpoints ?? []) printLine(ctx, `  endpoint: ${e.url} (port ${e.port})`)
    for (const f of v.failovers) printLine(ctx, `  failover of ${f.slot}: ${f.from} -> ${f.to ?? '(pending)'}${f.ms !== null ? ` in ${f.ms} ms after detection` : ''}`)
    for (const m of v.migrations ?? []) {
      const how = m.ok === null ? 'in progress' : m.ok ? `done${m.gapMs !== null ? `, gap ${m.gapMs} ms` : ''}${m.warm ? ' (warm handover)' : ''}${m.checkpoint ? `, state ${m.checkpoint.bytes} bytes` : ''}` : `not done: ${m.error}`
      printLine(ctx, `  migration of ${m.slot}: ${m.from} -> ${m.to ?? '?'} (${m.why}): ${how}`)
    }
    if (v.infeasible?.nearest) printLine(ctx, `nearest candidate: ${v.infeasible.nearest.nodeDid}: ${v.infeasible.nearest.failures.map((f) => `${f.constraint} ${f.detail}`).join(', ')}`)
    printLine(ctx, 'events:')
    for (const e of v.events.slice(-20)) printLine(ctx, `  ${new Date(e.at).toISOString().slice(11, 23)}  ${e.msg}`)
  },
}

// `noir expose DEPLOYMENT PORT [--public|--private] [--name NAME]` and `noir endpoints [--json]`: what a
// deployment's owner opens to the outside, and where this node's ingress serves it (spec/ingress.md, spec/cli.md).
import { ApiClient } from '../api-client.ts'
import { intOption, parseCommandArgs, printJson, printLine, UsageError, type Command } from '../command.ts'

interface Endpoint {
  name: string
  deploymentId: string
  port: number
  host: string
  url: string
  listen: string
  replicas: { contractId: string; node: string; index: number; connections: number; lastRefusal: string | null; downUntil: number }[]
  traffic: { active: number; lastTrafficAt: string | null; idleMs: number | null }
}

interface ExposeAnswer {
  deploymentId: string
  port: number
  exposure: 'public' | 'opened' | 'private'
  endpoint: Endpoint | null
}

export const exposeCommand: Command = {
  path: ['expose'],
  summary: "open (or close) a deployment's port to ingresses, and serve it on this node's ingress",
  usage: `Usage: noir expose DEPLOYMENT PORT [--public | --private] [--name NAME] [--json]

The port must be one the workload declares. Ports are private unless the workload marks them \`public: true\`;
--public opens a private port (this node, the deployment's orchestrator, signs short-lived grants the
providers check), --private closes it again (a port the workload declares public stays public).
When this node runs an ingress (config.json \`ingress\`), the port is served there under Host
NAME.<domain> (default NAME: <workload name>-<port>).
--json prints { deploymentId, port, exposure: public|opened|private, endpoint: { name, host, url, listen, replicas } | null }.`,
  async run(ctx, argv) {
    const { positionals, values } = parseCommandArgs(argv, { public: { type: 'boolean' }, private: { type: 'boolean' }, name: { type: 'string' } }, { min: 2, max: 2, usage: 'usage: noir expose DEPLOYMENT PORT [--public | --private] [--name NAME]' })
    if (values.public && values.private) throw new UsageError('--public and --private exclude each other')
    const port = intOption(positionals[1], 'PORT', 1, 65535)!
    const body = {
      deploymentId: positionals[0]!, port,
      ...(values.public ? { public: true } : values.private ? { public: false } : {}),
      ...(typeof values.name === 'string' ? { name: values.name } : {}),
    }
    const r = await ApiClient.forHome(ctx.home).post<ExposeAnswer>('/v1/ingress/expose', body)
    if (ctx.json) return printJson(ctx, r)
    printLine(ctx, `port ${r.port} of ${r.deploymentId}: ${r.exposure}`)
    if (r.endpoint) printLine(ctx, `served at ${r.endpoint.url} (Host ${r.endpoint.host} on ${r.endpoint.listen})`)
    else printLine(ctx, 'this node opens no ingress (config.json "ingress"): another node\'s ingress can serve it with a route naming this deployment')
  },
}

export const endpointsCommand: Command = {
  path: ['endpoints'],
  summary: "list the services this node's ingress serves, with their replicas as the ingress sees them",
  usage: `Usage: noir endpoints [--json]

--json prints { open, listen, tlsFingerprint, protocols, endpoints: [{ name, deploymentId, port, host, url, listen, replicas: [{ contractId,
node, index, connections, lastRefusal, downUntil }], traffic: { active, lastTrafficAt, idleMs } }] }.`,
  async run(ctx, argv) {
    parseCommandArgs(argv, {}, { min: 0, max: 0, usage: 'usage: noir endpoints [--json]' })
    const r = await ApiClient.forHome(ctx.home).get<{ open: boolean; listen: string | null; tlsFingerprint?: string | null; protocols?: string[]; endpoints: Endpoint[] }>('/v1/endpoints')
    if (ctx.json) return printJson(ctx, r)
    if (!r.open) return printLine(ctx, 'this node opens no ingress (add an "ingress" section to config.json)')
    printLine(ctx, `ingress on ${r.listen}${r.protocols?.length ? ` speaking ${r.protocols.join(', ')}` : ''}${r.tlsFingerprint ? ` (HTTPS; certificate SHA-256 ${r.tlsFingerprint})` : ''}`)
    if (r.endpoints.length === 0) printLine(ctx, '  no services yet (noir expose DEPLOYMENT PORT)')
    for (const e of r.endpoints) {
      const idle = e.traffic.active > 0 ? `${e.traffic.active} open` : e.traffic.idleMs === null ? 'no traffic yet' : `idle ${Math.round(e.traffic.idleMs / 1000)} s`
      printLine(ctx, `  ${e.url}  -> ${e.deploymentId} port ${e.port}  (${idle})`)
      for (const x of e.replicas) printLine(ctx, `    replica ${x.index} on ${x.node.slice(0, 24)}...  ${x.connections} connection(s)${x.lastRefusal ? `  skipped: ${x.lastRefusal}` : ''}`)
    }
  },
}

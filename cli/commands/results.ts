// `noir provenance ID [--json]` and `noir results ID -o DIR [--json]` (spec/artifacts.md): for each replica of
// a deployment, this node fetches the provider's signed provenance record, checks it and countersigns it;
// `results` then fetches the job's output artifact the record names, checks its digest, and unpacks it.
import { existsSync, readdirSync, rmdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { ApiClient } from '../api-client.ts'
import { printJson, printLine, UsageError, type Command, type CommandContext } from '../command.ts'
import type { DeploymentView } from '../../actors/orchestrator/orchestrator.ts'
import { verifyProvenance, type ProvenanceRecord } from '../../artifacts/provenance.ts'
import { ArtifactStore } from '../../artifacts/store.ts'
import { unpackArchive } from '../../artifacts/archive.ts'
import { ArtifactNotFoundError } from '../../artifacts/errors.ts'

/** Every replica's provenance record, countersigned by this node (verified here again, with the DIDs alone). */
async function records(ctx: CommandContext, id: string): Promise<{ slot: string; record: ProvenanceRecord }[]> {
  const api = ApiClient.forHome(ctx.home)
  const v = await api.get<DeploymentView>(`/v1/deployments/${encodeURIComponent(id)}`)
  const out: { slot: string; record: ProvenanceRecord }[] = []
  for (const r of v.replicas) {
    if (!r.contractId || !r.node) continue
    const rec = await api.post<ProvenanceRecord>('/v1/provenance/collect', { contractId: r.contractId, provider: r.node })
    out.push({ slot: r.slot, record: verifyProvenance(rec) })
  }
  if (out.length === 0) throw new ArtifactNotFoundError(`deployment ${id} has no replica with a contract (nothing ran yet?)`)
  return out
}

const time = (ms: number): string => new Date(ms).toISOString()

export const provenanceCommand: Command = {
  path: ['provenance'],
  summary: "show a deployment's signed provenance records (what ran where, on which artifacts, with what result)",
  usage: `Usage: noir provenance ID [--json]

For each replica: the provider's record (workload digest, artifact digests, node DID, contract, start, end,
exit, output digest), signed by the node and countersigned by this node. Both signatures are checked here
with the DIDs alone. --json prints [{ slot, record: { body, nodeSig, consumerSig } }].`,
  async run(ctx, argv) {
    if (argv.length !== 1) throw new UsageError('noir provenance ID [--json]')
    const recs = await records(ctx, argv[0]!)
    if (ctx.json) return printJson(ctx, recs)
    for (const { slot, record: { body: b } } of recs) {
      printLine(ctx, `${slot}: contract ${b.contractId}`)
      printLine(ctx, `  node      ${b.node}`)
      printLine(ctx, `  workload  ${b.workload}`)
      for (const a of b.artifacts) printLine(ctx, `  artifact  ${a}`)
      printLine(ctx, `  ran       ${time(b.startedAt)} .. ${time(b.endedAt)}: ${b.exit.state}${b.exit.code !== null ? ` (exit ${b.exit.code})` : ''}`)
      printLine(ctx, `  output    ${b.output ?? '-'}`)
      printLine(ctx, '  signed by the node and countersigned by this node: both verify')
    }
  },
}

export const resultsCommand: Command = {
  path: ['results'],
  summary: "fetch a job's output folder (an artifact named by its signed provenance), check it and unpack it",
  usage: `Usage: noir results ID -o DIR [--json]

Fetches the output artifact of each replica of job ID from the node that ran it, checks its digest against
the provider's signed provenance record, and unpacks it into DIR (one replica), or DIR/<slot> (several).
DIR must not exist or be empty. --json prints [{ slot, digest, dir }].`,
  async run(ctx, argv) {
    const { values, positionals } = parseArgs({ args: argv, options: { output: { type: 'string', short: 'o' } }, allowPositionals: true })
    if (positionals.length !== 1 || !values.output) throw new UsageError('noir results ID -o DIR')
    const target = resolve(values.output)
    if (existsSync(target)) {
      if (readdirSync(target).length > 0) throw new UsageError(`${target} is not empty`)
      rmdirSync(target)
    }
    const recs = (await records(ctx, positionals[0]!)).filter((r) => r.record.body.output !== null)
    if (recs.length === 0) throw new ArtifactNotFoundError(`no replica of ${positionals[0]} left an output`)
    const api = ApiClient.forHome(ctx.home)
    const store = new ArtifactStore({ dir: join(ctx.home, 'artifacts') })
    const out: { slot: string; digest: string; dir: string }[] = []
    for (const r of recs) {
      const digest = r.record.body.output!
      await api.post('/v1/artifacts/fetch', { digest, from: [r.record.body.node] })
      const dir = recs.length === 1 ? target : join(target, r.slot.replace(/[^A-Za-z0-9_.-]/g, '_'))
      await unpackArchive(await store.verifiedPath(digest), dir)
      out.push({ slot: r.slot, digest, dir })
      if (!ctx.json) printLine(ctx, `${r.slot}: ${digest} -> ${dir}`)
    }
    if (ctx.json) printJson(ctx, out)
  },
}

// `noir node contracts [--json]`: the live contracts this node holds as a provider, with their leases: who the
// consumer is, how long ago it last renewed, how much of the lease is left, and whether it has gone silent
// (GET /v1/node/contracts; spec/contracts.md "Leases").
import type { ContractLeaseView } from '../../actors/provider/leases.ts'
import { ApiClient } from '../api-client.ts'
import { parseCommandArgs, printJson, printLine, type Command } from '../command.ts'

const seconds = (ms: number | null): string => (ms === null ? '-' : `${(ms / 1000).toFixed(1)}s`)

export const nodeContracts: Command = {
  path: ['node', 'contracts'],
  summary: 'the live contracts this node runs or holds for others, with their leases (late renewals flagged)',
  usage: `Usage: noir node contracts [--json]

One line per live contract this node holds as a provider: contract id, consumer, state, the age of the last
lease renewal and the lease left. LATE marks a consumer that missed renewals (more than half the lease
passed): its work stops when the lease runs out. --json prints the document of GET /v1/node/contracts:
{ contracts: [{ contractId, consumer, deploymentId, slot, epoch, role, status, instanceState, leaseMs,
lastRenewalAgeMs, leaseRemainingMs, late }] }.`,
  async run(ctx, argv) {
    parseCommandArgs(argv, {}, { min: 0, max: 0, usage: 'usage: noir node contracts [--json]' })
    const doc = await ApiClient.forHome(ctx.home).get<{ contracts: ContractLeaseView[] }>('/v1/node/contracts')
    if (ctx.json) return printJson(ctx, doc)
    if (doc.contracts.length === 0) return printLine(ctx, 'no live contracts')
    const rows = [['CONTRACT', 'CONSUMER', 'STATE', 'SLOT', 'RENEWED', 'LEASE LEFT', '']]
    for (const c of doc.contracts) {
      rows.push([c.contractId, c.consumer, `${c.status}${c.instanceState ? `/${c.instanceState}` : ''}`, c.slot, `${seconds(c.lastRenewalAgeMs)} ago`, `${seconds(c.leaseRemainingMs)} of ${seconds(c.leaseMs)}`, c.late ? 'LATE' : ''])
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
    for (const r of rows) printLine(ctx, r.map((x, i) => x.padEnd(widths[i]!)).join('  ').trimEnd())
  },
}

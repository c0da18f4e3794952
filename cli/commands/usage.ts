// `noir usage DEPLOYMENT [--json]`: the usage records of a deployment this node orchestrates (or, after
// `noir login`, one of the account's at the gateway), each signed by
// the provider and answered by this node (countersigned, or disputed with the amount it accepts), and what
// was paid for them (spec/ledger.md "Metering", spec/cli.md).
import { deploymentsTarget } from '../gateway-login.ts'
import { parseCommandArgs, printJson, printLine, type Command } from '../command.ts'

interface UsageDoc {
  deployment: string
  totals: { records: number; claimed: string; accepted: string; disputed: number; unanswered: number }
  records: Array<{
    side: string
    status: string
    settled: string | null
    record: {
      body: { contractId: string; seq: number; from: number; to: number; replicaMs: number; provider: string; amount: string; final?: boolean; cpuMs?: number }
      providerSig: string
      answer?: { verdict: string; acceptedAmount: string; reason?: string }
      consumerSig?: string
    }
  }>
}

export const usageCommand: Command = {
  path: ['usage'],
  summary: 'list the signed usage records of a deployment and what was paid for them',
  usage: `Usage: noir usage DEPLOYMENT [--json]

Amounts are µNLC (1 NLC = 1,000,000 µNLC). Each record is signed by the provider and answered by this node:
accepted (countersigned) or disputed (with the reason and the amount accepted).
--json prints { deployment, totals: { records, claimed, accepted, disputed, unanswered }, records: [{ side,
status, settled, note, updatedAt, record: { body, providerSig, answer?, consumerSig? } }] }.`,
  async run(ctx, argv) {
    const { positionals } = parseCommandArgs(argv, {}, { min: 1, max: 1, usage: 'usage: noir usage DEPLOYMENT [--json]' })
    const r = (await deploymentsTarget(ctx.home).usage(positionals[0]!)) as UsageDoc
    if (ctx.json) return printJson(ctx, r)
    if (r.records.length === 0) return printLine(ctx, `no usage records for ${r.deployment} yet`)
    for (const u of r.records) {
      const b = u.record.body
      const a = u.record.answer
      const sigs = u.record.consumerSig ? 'signed by both' : 'provider only'
      printLine(ctx, `${b.contractId.slice(0, 8)} #${b.seq}${b.final ? ' (final)' : ''}  ${b.replicaMs} ms  claimed ${b.amount}  ${u.status}${a ? `, accepted ${a.acceptedAmount}` : ''}  ${u.settled ?? 'not settled'}  ${sigs}${a?.reason ? `  (${a.reason})` : ''}`)
    }
    const t = r.totals
    printLine(ctx, `${t.records} record(s): claimed ${t.claimed} µNLC, accepted ${t.accepted} µNLC, ${t.disputed} disputed, ${t.unanswered} unanswered`)
  },
}

// The local API routes of metering (spec/api.md "Usage"): a deployment's usage records as its consumer,
// and every record this node holds (either side), behind `noir usage`.
import { InvalidRequestError } from '../daemon/errors.ts'
import type { ApiRoute, JsonValue } from '../daemon/service.ts'
import type { Orchestrator } from '../../actors/orchestrator/orchestrator.ts'
import type { KvUsageStore, StoredUsage } from '../../actors/usage/store.ts'

/** A stored record as the API shows it: the signed record (both signatures when answered) and its state. */
export function usageView(u: StoredUsage): JsonValue {
  return { side: u.side, status: u.status, settled: u.settled ?? null, note: u.note ?? null, updatedAt: u.updatedAt, record: u.record as unknown as JsonValue }
}

/** Totals of a list of records, in µNLC (decimal strings). */
export function usageTotals(list: StoredUsage[]): JsonValue {
  let claimed = 0n
  let accepted = 0n
  for (const u of list) {
    claimed += BigInt(u.record.body.amount)
    if (u.record.answer) accepted += BigInt(u.record.answer.acceptedAmount)
  }
  return { records: list.length, claimed: String(claimed), accepted: String(accepted), disputed: list.filter((u) => u.status === 'disputed').length, unanswered: list.filter((u) => u.status === 'unanswered' || u.status === 'pending').length }
}

export function usageRoutes(o: Pick<Orchestrator, 'usage'>, store: () => KvUsageStore): ApiRoute[] {
  return [
    {
      method: 'GET',
      path: '/v1/deployments/:id/usage',
      handler: async (req) => {
        const list = await o.usage(req.params.id!)
        return { deployment: req.params.id!, totals: usageTotals(list), records: list.map(usageView) }
      },
    },
    {
      method: 'GET',
      path: '/v1/usage',
      handler: async (req) => {
        const side = req.query.get('side')
        if (side !== null && side !== 'consumer' && side !== 'provider') throw new InvalidRequestError("'side' is consumer or provider")
        const deployment = req.query.get('deployment')
        const list = (await store().all(side ?? undefined)).filter((u) => deployment === null || u.record.body.deploymentId === deployment)
        return { totals: usageTotals(list), records: list.map(usageView) }
      },
    },
  ]
}

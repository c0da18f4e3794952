// `noir migrate ID [--replica N] [--to DID]`: moves a running replica to another node (spec/migration.md).
// A stateful replica (an SDK actor, a workload with a `stateDir`) is quiesced, its state archived and
// started from that archive on the new node; a stateless one is started there before the old one stops.
// Answers once the replica runs on its new node; `noir status ID` shows the move and why.
import { ApiClient } from '../api-client.ts'
import { intOption, parseCommandArgs, printJson, printLine, UsageError, type Command } from '../command.ts'
import type { MigrationRecord } from '../../actors/deployment/model.ts'

export const migrateCommand: Command = {
  path: ['migrate'],
  summary: 'move a running replica to another node, with its state',
  usage: `Usage: noir migrate ID [--replica N] [--to DID] [--json]

Moves replica N (default 0) of deployment ID to another node chosen by the same placement rules (or to the
node DID names). An SDK actor keeps its XState snapshot and a workload with a stateDir keeps that folder:
the old replica is stopped, its state archived (a digest-checked artifact) and the new one started from it;
the gap is printed. A stateless replica is started on the new node before the old one stops.
Exits 1 when nothing fits elsewhere, the replica is not running, or a migration is in progress.`,
  async run(ctx, argv) {
    const { values, positionals } = parseCommandArgs(argv, { replica: { type: 'string' }, to: { type: 'string' } }, { min: 1, max: 1, usage: 'noir migrate ID [--replica N] [--to DID]' })
    const replica = intOption(values.replica, '--replica', 0)
    const to = values.to
    if (to !== undefined && (typeof to !== 'string' || !to.startsWith('did:key:z'))) throw new UsageError('--to must be a node DID (did:key:z...)')
    const body = { ...(replica !== undefined ? { replica } : {}), ...(typeof to === 'string' ? { to } : {}) }
    const m = await ApiClient.forHome(ctx.home).post<MigrationRecord>(`/v1/deployments/${encodeURIComponent(positionals[0]!)}/migrate`, body)
    if (ctx.json) printJson(ctx, m)
    else {
      const state = m.checkpoint ? `state ${m.checkpoint.bytes} bytes (${m.checkpoint.digest}), gap ${m.gapMs ?? '?'} ms` : 'stateless: started before the old one stopped'
      printLine(ctx, `${m.slot}: ${m.from} -> ${m.to} (${m.why}); ${state}`)
    }
    return 0
  },
}
